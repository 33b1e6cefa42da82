// Package kademlia implements the Kademlia distributed hash table
// (Maymounkov and Mazières, "Kademlia: A Peer-to-peer Information System
// Based on the XOR Metric", IPTPS 2002) as an I/O-free state machine, plus a
// broadcast over its routing tables (El-Ansary, Alima, Brand and Haridi,
// "Efficient Broadcast in Structured P2P Networks", IPTPS 2003). The
// package is the protocol only: the root package's p2p.DHT drives a [Core]
// over a transport with the node package's runtime, as p2p.Broadcaster
// drives its cores.
//
// # Routing
//
// Node IDs and keys are 256-bit (peer.ID, the SHA-256 of a node's ed25519
// key), and the distance between two IDs is their XOR read as a number. The
// routing table keeps one k-bucket per common prefix length with the node's
// own ID (K = 20 contacts each), least recently seen first. Any message from
// a peer moves it to the tail of its bucket; a newcomer to a full bucket
// waits in a small replacement cache while the least recently seen contact
// is PINGed, and replaces it only if that PING fails (paper section 2.2:
// old, live contacts are kept). A contact that fails StaleAfter requests in
// a row is stale: replaced by a cached newcomer at once, preferred last, and
// never handed to other peers (section 4.1). A bucket that no lookup
// touched for RefreshInterval (1 h) is refreshed with a lookup of a random
// ID in its range.
//
// # Lookups
//
// A lookup (section 2.3) keeps Alpha = 3 FIND_NODE (or FIND_VALUE) requests
// in flight to the closest candidates not yet asked, merging the contacts
// each reply brings, and ends when the K closest candidates that did not fail
// have all answered. A candidate unanswered after RPCTimeout (1 s) is late:
// the lookup asks the next one in its place, so a dead node never stalls
// it, but a late reply still counts until LateReplyTimeout (5 s), and the
// lookup does not end while a late candidate that would be among the K
// closest may still answer: a node slowed by load is not left out of the
// result. A request whose link goes down is sent once more (the peer may
// have closed an idle connection as the request crossed it, and answers on
// a new one); it fails, and its candidate is dropped, when the link goes
// down again or LateReplyTimeout passes.
// Lookups are state machines inside the core, named by a request ID the
// caller supplies ([Lookup], [Get], [Put], [Bootstrap]); their answers come
// back as outputs ([LookupResult], [GetResult], [PutResult],
// [BootstrapResult]). Joining (Bootstrap) asks the given addresses for the
// node's own neighbourhood, looks up the node's own ID, then refreshes every
// bucket farther than its closest neighbour.
//
// # Records
//
// A mutable record's key is SHA-256(writer public key || name); its
// signature by the writer covers the key, a sequence number and the value,
// and a holder replaces its copy only with a higher sequence number. An
// immutable record's key is the SHA-256 of its value. Forged, stale,
// mismatched and oversized records are refused with [ErrForged],
// [ErrStale], [ErrHashMismatch] / [ErrKeyMismatch] and [ErrTooLarge];
// holders also bound the records stored in total, per writer and per peer
// ([ErrStoreFull]) and rate-limit each peer's STOREs with a token bucket
// driven by the time passed in ([ErrRateLimited]).
//
// Put stores a record at the K closest nodes to its key. Records expire
// RecordTTL (24 h) after publication; the writer republishes its records
// every RepublishInterval (12 h, half the TTL so one missed republication is
// harmless, where the paper uses 24 h for both), and every holder among the
// K closest re-stores each record at the K closest it finds every
// ReplicateInterval (1 h), unless it received a STORE of it in that interval
// (section 2.5). Copies carry their remaining lifetime, so replication never
// extends a record beyond its publication's TTL. Get is the FIND_VALUE
// lookup: it stops at the first valid record and then caches it at the
// closest node seen that did not have it, with a lifetime of at most
// CacheTTL halved for every node between that node and the key.
//
// # Broadcast
//
// A broadcast (El-Ansary et al.) walks the routing tables as a tree. The
// originator is responsible for the whole ID space: it sends the message to
// one contact of each of its buckets, telling the contact of bucket i that it
// is now responsible for the IDs sharing i+1 leading bits with it (the
// message's Depth). Each receiver delivers the message and forwards it to one
// contact of each of its buckets numbered Depth or more. Every node with a
// contact in each non-empty subtree is reached exactly once: N - 1 messages
// for N nodes, in about log2 N hops. Receivers drop duplicates by (origin,
// ID); when the link to a chosen contact goes down, the node picks another
// contact of the same bucket.
//
// # Shape
//
// [Core] implements overlay.Core: it owns no goroutine, socket or clock and
// takes its randomness from Config.Seed, so a simulation of thousands of
// cores on a virtual clock is deterministic. Nothing the package links runs
// a network, a runtime or a database (internal/archtest checks its
// dependencies): p2p.DHT steps a Core on the node package's runtime, and
// package sim on a virtual clock.
package kademlia
