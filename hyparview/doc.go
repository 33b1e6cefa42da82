// Package hyparview implements the HyParView membership protocol as a state
// machine without I/O (an [overlay.Core]).
//
// HyParView (J. Leitão, J. Pereira, L. Rodrigues, "HyParView: a membership
// protocol for reliable gossip-based broadcast", DSN 2007; extended as
// technical report DI-FCUL TR-07-13) gives every node two partial views of
// the overlay:
//
//   - the active view, small (ActiveViewSize, 5 by default) and symmetric:
//     if A has B active, B has A. Its members are the node's neighbours, the
//     peers it keeps an open link to ([overlay.Connect]) and over which a
//     broadcast layer such as Plumtree floods messages;
//   - the passive view, larger (PassiveViewSize, 30), a list of backup peers
//     kept fresh by a periodic shuffle and used to replace failed neighbours.
//
// Join. A new node sends JOIN to a contact, known only by its address. The
// contact adds the joiner to its active view (evicting a random member with
// DISCONNECT when full), sends it a high-priority NEIGHBOR so the joiner
// adds the contact back, and sends FORWARDJOIN with TTL ARWL (6) to each of
// its other active peers. Each hop decrements the TTL and forwards to a
// random active peer other than the sender; the hop where the TTL equals
// PRWL (3) adds the joiner to its passive view; the hop where it reaches 0,
// or a node whose only active peer is the sender, adds the joiner to its
// active view and sends it a high-priority NEIGHBOR.
//
// Repair. When an active peer fails (its link breaks, a message to it cannot
// be delivered, or it is silent too long) or disconnects, the node sends
// NEIGHBOR to random passive peers, one per free slot: the first request of
// a node whose active view is less than half full has high priority and is
// always accepted (the receiver evicts a random neighbour if it must); the
// others have low priority and are accepted only by a node with room. (The
// paper gives high priority only to a node with no neighbour at all; with
// that rule, fast joins occasionally cut a small group off the overlay, and
// the group, whose members ask only full nodes with low priority, never
// reconnects.) A rejection makes the
// node try another passive peer (the one that refused is not asked again for
// a ShuffleInterval); a failure or a request unanswered for FailureTimeout
// removes the peer from the passive view. Every NeighborRetry a node with a
// short active view tries again, and a node whose two views are both empty,
// or which has not joined yet, sends JOIN to its original contacts in turn,
// so an isolated or partitioned node finds its way back. Every change of the
// active view is announced with [NeighborUp] and [NeighborDown]; [Joined]
// marks the first link to the network (a node given contacts is not joined
// by newcomers that join through it while its own JOIN is unanswered, nor by
// the ends of their join walks; it sends JOIN again every NeighborRetry
// until its contacts answer, however full its active view).
//
// Shuffle. Every ShuffleInterval (10 s, the paper's cycle) a node sends
// SHUFFLE to a random active peer, carrying itself, ka (3) active and kp (4)
// passive peers, as a random walk of ShuffleTTL (ARWL) hops. The node where
// the walk ends answers the origin directly with as many of its passive
// peers, and both merge what they received into their passive views,
// evicting first the entries they handed over.
//
// Failure detection. The paper relies on TCP to detect failures; a crashed
// machine may leave a TCP connection silent for minutes, so this core also
// runs a keepalive round every KeepaliveInterval (1 s): an active peer heard
// from less than a KeepaliveInterval ago (any message, including traffic of
// other layers reported through [Core.Heard]) is left alone, a quieter one
// is pinged, and one silent for FailureTimeout (4 s) is declared failed and
// dropped. A crashed node therefore stays in an active view at most
// FailureTimeout + KeepaliveInterval after it was last heard from: 5 s with
// the defaults. A ping from a peer outside the active view (a one-sided link
// left by a lost message) is answered with DISCONNECT, which restores
// symmetry.
//
// Messages from peers are validated before use: IDs must be non-zero and not
// this node's where that matters, addresses at most [MaxAddrLen] bytes,
// lists no longer than the configured shuffle sizes, TTLs no larger than the
// configured walk lengths; FORWARDJOIN and SHUFFLE are accepted only from
// active peers and SHUFFLEREPLY only while a shuffle is outstanding. All
// state is bounded by the configured view sizes.
//
// Driver contract. Besides [overlay.Connect] for every active peer, the core
// emits [overlay.Disconnect] when a peer leaves the active view and after a
// one-off exchange with a peer outside it (a rejected NEIGHBOR, a shuffle
// reply), so a runtime may close those links. The first JOIN goes to an
// address with the zero ID; a failed delivery of it comes back as an
// [overlay.LinkDown] with the zero ID and that address.
//
// Cost. In a settled 1,000-node simulation with the defaults and no other
// traffic, a node sends about 4 messages and 320 bytes (CBOR plus the 4-byte
// frame, before encryption) per second: mostly SHUFFLE walks (about 350
// bytes, forwarded up to ShuffleTTL times, every ShuffleInterval) and pings
// on idle links. Longer intervals or a shorter ShuffleTTL reduce it.
//
// The core takes time as input and draws randomness from a generator seeded
// by Config.Seed, so a run with the same inputs is repeatable.
package hyparview
