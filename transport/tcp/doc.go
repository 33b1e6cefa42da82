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
// one system call.
package tcp
