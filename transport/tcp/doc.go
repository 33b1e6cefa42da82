// Package tcp is the real transport: TCP connections secured by a Noise
// handshake and authenticated by the peers' ed25519 identities.
//
// # Handshake
//
// Every connection starts with the Noise XX pattern (Perrin, "The Noise
// Protocol Framework", revision 34, 2018) over Curve25519, ChaCha20-Poly1305
// and SHA-256, with the prologue "p2p-go/p2p tcp transport v1":
//
//	-> e                      (message 1, empty payload)
//	<- e, ee, s, es           (message 2, responder's identity proof)
//	-> s, se                  (message 3, initiator's identity proof)
//
// Each transport draws a fresh Curve25519 static key at Listen. An identity
// proof binds it to the node's long-term ed25519 key: the ed25519 public
// key, its signature over "p2p-go/p2p noise static key v1\x00" followed by
// the Noise static public key, and the address the node advertises. The
// receiver checks every field and derives the peer's ID with
// peer.IDFromPublicKey, so [Conn.Remote] is authenticated.
//
// With a cluster secret (Config.Secret, 32 bytes) the pattern becomes
// XXpsk0: the secret is mixed in before message 1, whose payload is then
// authenticated by it. A responder refuses a peer without the right secret
// on message 1, before it reveals its identity or reads any application
// data; the refusal is logged (keys remote_addr and reason) and counted in
// [Stats]. Without a secret the connections are still encrypted and
// authenticated, but anyone may join; Listen logs a warning.
//
// # Keyring
//
// The secrets come from a [Keyring] (Config.Keyring, or one made of
// Config.Secret), which may hold several at once so that a cluster rotates
// its secret without downtime, as Serf's keyring does: the initiator uses the
// primary key; the responder tries each installed key on message 1 (a fresh
// handshake state per key; message 1 carries no Diffie-Hellman, so a try
// costs one AEAD check, and at most MaxKeys are installed) and continues with
// the first that authenticates it. A rotation installs the new key
// everywhere, makes it primary everywhere, then removes the old one; after
// that a peer holding only the old key is refused as "bad secret".
// Connections already open keep their session keys.
//
// # Handshake slots and refusals
//
// An inbound connection first waits for message 1, which, with a cluster
// secret, proves that its sender holds the secret: until then it is idle
// and holds no handshake slot. At most 4 × MaxPendingHandshakes (1,024)
// connections wait so; when they are all taken, a new connection closes the
// oldest idle one (counted as "overload"), so that an outsider, however
// many idle sockets it opens and from whichever address (even the one real
// peers dial from), cannot keep a peer that sends message 1 at once from
// being read. Message 1 then takes a handshake slot until the handshake
// ends. Message 1 carries no time, so a copy of one (captured on a shared
// network) would also authenticate: a message 1 whose ephemeral key is
// among the last 4,096 seen is refused (counted as "protocol"). Slots are bounded so that peers stalling their handshakes cannot
// lock members out:
//
//   - at most MaxPendingHandshakes (256) in progress at once, of which
//     MemberHandshakeReserve (64) only addresses that completed a handshake
//     within the last hour (members) may take;
//   - at most MaxHandshakesPerAddr (32) in progress from one source IP
//     address;
//   - message 1 must arrive within FirstMessageTimeout (2 s) of the
//     connection, the whole handshake within HandshakeTimeout (5 s).
//
// A connection beyond a limit is closed at once (after its message 1). Every failed handshake is
// counted in [Stats] by reason (bad secret, bad identity, timeout, closed by
// peer, protocol, overload, per address), and logged at a bounded rate: the
// first refusal after a quiet interval on its own line, the others as one
// summary line per RefusalLogInterval (10 s) with their counts by reason.
// Dial returns an error wrapping transport.ErrRefused only when the peer
// refused us (another secret: it hangs up after message 1; a bad identity;
// another protocol); a reset or a timeout during the handshake, as a crashed
// peer causes, is reported as what it is.
//
// # Connection and memory limits
//
// Each limit bounds what a peer, or many, can make a node hold:
//
//   - MaxConns (256) open connections in all, inbound and outbound:
//     beyond it, inbound connections are closed before their handshake and
//     Dial fails with [ErrConnLimit];
//   - MaxConnsPerPeer (4) open connections to one peer ID, checked once the
//     handshake has identified it;
//   - per connection, one message of at most MaxFrameSize (1 MiB) is
//     buffered, and memory follows the bytes that arrive, not the length the
//     peer announces: the first chunk (64 KiB) is always accepted, the rest
//     of a longer message is reserved from a budget of MaxBufferedBytes
//     (16 MiB) shared by all connections once that chunk is authenticated. A
//     message that does not fit waits unread, which pushes back on its
//     sender through TCP, until other messages release room; if its
//     FrameTimeout passes first, its connection is closed. An insider
//     sending messages short of their last byte on hundreds of connections
//     thus cannot make the node buffer hundreds of megabytes, and a
//     legitimate large message is delayed, not refused. A message keeps its
//     share of the budget after Recv returns it, until the next Recv or
//     Close, so that messages received but not yet consumed count too;
//   - a message must arrive whole within FrameTimeout (20 s) of its length;
//   - a connection's read buffer is 16 KiB.
//
// Each closure is counted in [Stats] (ConnsOverLimit, ConnsOverPeerLimit,
// ConnsOverBufferLimit, FrameTimeouts, MalformedFrames) and logged at the
// refusals' bounded rate. With the defaults, one node needs at most about
// 512 file descriptors for its sockets (256 connections and 256 handshakes),
// under the common default limit of 1,024. Which idle connections to close
// before these limits bind is the node package's connection manager's
// choice.
//
// # Messages
//
// After the handshake each message travels as a 4-byte big-endian length
// followed by the message encrypted in chunks of at most 65535 bytes of
// ciphertext (the Noise limit), each with its 16-byte tag and the length as
// associated data. A message under 64 KiB thus costs 20 bytes of framing.
// Send refuses messages over Config.MaxFrameSize with transport.ErrTooLarge;
// Recv closes the connection on an announced length over it, a failed
// authentication or a truncated frame, and the transport serves everyone
// else. A per-connection writer goroutine coalesces queued messages into
// one system call. A runtime that queues with TrySendDeferred and then calls
// Flush (transport.DeferredSender) writes the messages of a burst in one
// write from its own goroutine, as far as the socket takes them without
// waiting, the writer writing the rest; Recv reads ahead into a 16 KiB
// buffer, and Buffered (transport.BufferedReceiver) tells whether the next
// message is already in it. Stats.Writes and Stats.Reads count the system
// calls, so FramesOut / Writes shows how much was coalesced.
package tcp
