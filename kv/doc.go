// Package kv is the replicated configuration store: every node holds a full
// copy of a small key-value store, writes are pushed to every member through
// the Broadcaster, and periodic anti-entropy repairs whatever a broadcast
// missed, so that all replicas converge without a central service.
//
// # Data model and merge
//
// A key is non-empty UTF-8 without NUL, at most [MaxKeyLen] bytes; a value is
// up to [MaxValueLen] bytes; a store holds at most Config.MaxKeys live keys.
// Every write carries a [Version]: a hybrid logical clock timestamp ([HLC],
// Kulkarni, Demirbas, Madappa, Avva, Leone: "Logical Physical Clocks and
// Consistent Snapshots in Globally Distributed Databases", OPODIS 2014) and
// the writer's node ID. The merge is last-writer-wins per key: the greater
// version wins, ties on the timestamp are broken by writer ID, so every
// replica picks the same winner whatever order and however many times
// records arrive. The merge is a join (commutative, associative, idempotent):
// replicas that received the same set of writes hold the same state. A
// delete is a tombstone record (Deleted set) that wins like any write.
//
// HLC timestamps stay within the clocks' offset of physical time while
// ordering causally related writes correctly: a node that has seen a write
// always gives its own later write to the same key a greater timestamp, even
// if its physical clock lags. A remote timestamp more than
// Config.MaxClockOffset ahead of local time is deferred, not applied, so a
// node with a clock set in the future cannot drag every clock with it; the
// record is applied by a later anti-entropy round once local time catches up.
//
// # Signed writers
//
// Every record carries its writer's ed25519 public key (whose SHA-256 is the
// writer ID) and its signature over the key, the value, the version and the
// tombstone flag ([Record.Sign], [Record.Verify]). A node applies a record
// from a peer, by broadcast or anti-entropy, only once the signature
// verifies, and anti-entropy only hands on records the node applied: a
// member holding the cluster secret ("insider") can relay records but
// cannot write in another member's name, alter a value, or turn a write
// into a delete. Refusals are counted (Stats.RecordsForged). Only records
// that would win the merge are verified, so a stale or duplicate record
// costs no verification. The file on disk holds only records the node wrote
// or verified; loading checks that each names its signer (a hash), not the
// signature itself, which would take seconds for a large store. Signing a
// write costs about 20 µs and verifying one about 40–70 µs (BENCHMARKS.md).
//
// # Revocation
//
// The deny list lives in the store itself, under [RevokedPrefix]: the
// revocation of node X is the record RevokedPrefix+X, written ([Revoke]) and
// signed by the node that revoked, replicated, repaired and persisted like
// any other record. It can be neither deleted nor overwritten by a later
// revocation: under RevokedPrefix the earlier version wins the merge. Every
// node that holds X's revocation refuses X's records dated after it
// (Stats.RecordsRevoked) and removes those it applied before the revocation
// reached it (Stats.RecordsWithdrawn: the key loses its record, and a
// replica still holding the earlier one gives it back by anti-entropy). The
// store reports the deny list ([DenyList]) so that the runtime closes X's
// links and refuses its connections. Any member may revoke any other unless
// Config.Admins is set, in which case revocations by other nodes are refused
// (Stats.RecordsUnauthorized). A revoked node keeps the records it wrote
// before its revocation; it can still backdate a write to before it, which
// only wins over keys nobody has written since.
//
// # What concurrent writers see
//
// There are no transactions and no read-your-writes across nodes: each node
// reads its own replica. Two nodes writing the same key at about the same
// time both see their Put succeed; once the writes have crossed, every node
// holds the one with the greater version (the later timestamp, or the
// greater writer ID on a tie) and the other is lost. Writes to different keys
// never interfere. Use distinct keys (for instance one per writer) when no
// write may be lost.
//
// # Durability
//
// The core never writes to disk: each change comes out as a [Persist]
// output, which the runtime writes to the [Backend] before it carries out
// the outputs that follow it. A local write's Persist is Durable: its
// [Result], [Changed] and [Broadcast] come after it, so with boltstore.Bolt
// (go.etcd.io/bbolt, one transaction committed with fsync) a Put whose
// Result has no error survives a crash of the node. It survives the loss of
// the node's disk once the broadcast or an anti-entropy round has carried it
// to another node. Records learnt from peers are written behind (see
// [LazyWriter]): their Persist is not Durable, Bolt queues them, visible at
// once, and commits them from its own goroutine without waiting for the disk
// flush; what a crash loses of them, the next anti-entropy round fetches
// again. Writing, let alone flushing, on every node a broadcast crosses would
// delay its forwarding by one disk write per hop: on a 100-node loopback
// cluster that made the p50 time until every node has a write 17 ms instead
// of 6 ms, and its p99 90 ms.
//
// # Push and anti-entropy
//
// A local write is persisted, then emitted as a [Broadcast] output whose
// payload (an [Update] message) the runtime hands to the Broadcaster, which
// delivers it to every member as a [FromBroadcast] input. Broadcasts can be
// missed (a node down or partitioned, a message lost), so replicas also run
// anti-entropy, as in Demers et al., "Epidemic Algorithms for Replicated
// Database Maintenance" (PODC 1987): every Config.AntiEntropyInterval a node
// reconciles with a random neighbour, and it reconciles at once with every
// new neighbour ([NeighborUp]: a node that joined, restarted or healed).
// Reconciliation compares Merkle trees, as Dynamo does (DeCandia et al.,
// SOSP 2007), so only the differences cross the network. Each replica keeps
// a fixed tree of 65,536 leaves (buckets of the keys' SHA-256) under three
// levels of 16-way inner nodes; a leaf hashes the XOR of its records' hashes,
// an inner node the SHA-256 of its children. A round is a ping-pong of
// stateless messages:
//
//	A → B  SyncRoot     A's root hash (32 bytes); B stops if it is its own
//	B → A  SyncNodes    B's 16 level-1 hashes (8 bytes each)
//	A → B  SyncNodes    A's hashes of the children of the level-1 nodes that differ
//	…                   and so on down the tree, until the differing nodes
//	                    are leaves or hold at most 4 records each on average
//	X → Y  SyncSummary  X's records under the differing nodes: 32 bytes each
//	                    (key hash, version, record hash)
//	Y → X  SyncRecords  Y's records that are newer or that X lacks, and
//	                    WantKeys: the keys whose record is newer on X
//	X → Y  SyncRecords  X's records of the wanted keys
//
// Each differing record thus crosses once, in the direction it is needed.
// An in-sync round costs one 43-byte message; between two stores of 100,000
// keys of which 1% differ, a round costs about 480 bytes per differing key
// (about 240 of them the signed record itself), 2% of a full copy. Node hashes
// travel truncated to 64 bits and keys are named by 64-bit hashes: a
// collision, which would hide a difference, has a probability near 2^-64.
// Each message is bounded (MaxSyncParents, MaxSummaryEntries,
// MaxSyncRecords, MaxSyncBytes) and every field a peer sends is validated.
// Rounds repair in both directions, so when writes stop
// and the network is connected, every replica holds the same records, and
// [Store.Digest] the same root, after a few rounds: each round at least
// doubles, in expectation, the number of nodes that hold a given record.
//
// # Partitions
//
// During a partition each side keeps accepting writes (the store favours
// availability). When the partition heals, the neighbour events trigger
// anti-entropy and both sides converge to the per-key winners of the union
// of their writes: a key written on both sides keeps the write with the
// greater version, which may be the older one in real time if the clocks of
// the two sides disagreed.
//
// # Tombstones and retention
//
// Tombstones are purged Config.TombstoneRetention (default 24 h) after the
// delete's timestamp; a tombstone that old received from a peer is not
// stored again. A node that was partitioned or down for longer than the
// retention and still holds a value deleted meanwhile brings that value back
// to life when it reconnects: the other replicas have forgotten the delete,
// see a record they lack and accept it. Wipe such a node's store file before
// it rejoins (it then learns the current state by anti-entropy), or raise the
// retention above the longest expected outage.
//
// # Core and runtime
//
// [Store] is a state machine in the style of [overlay.Core] and of
// etcd-io/raft's Ready: no goroutines, sockets, clocks or disk writes. The
// runtime feeds it inputs with the current time and drains its outputs:
// [Persist], [Result], [Changed], [Broadcast], [DenyList] and overlay.Send.
// It carries out the Persist first ([Persist.WriteTo]: one backend write,
// one fsync when Durable), reports it with [Store.Advance], and only then
// releases the outputs after it. Until Advance, the store serves the changes
// from its own memory, so reads never see the backend behind; a runtime may
// merge the Persist outputs of several steps ([Persist.Merge]) into one
// write and one fsync. The root package's runtime does so: internal/stack
// merges those of one step, and its disk writer, off the node's loop, merges
// those that arrive while it writes (group commit); the simulator (package
// sim) writes a kv.Memory per node at each step.
//
// A failed write changes nothing: Advance with an error (or the [Persisted]
// input) rolls the store back to what the backend holds for the keys of the
// failed Persist, and counts it in Stats.BackendErrors. The composition in
// internal/stack holds the store's Result, Changed and Broadcast outputs
// that follow a Persist until the runtime steps [Persisted]: on success they
// come out then (the broadcast is handed to the Broadcaster only after the
// write); on failure the write's Result carries the error and nothing is
// reported changed or broadcast. A bare Store does not hold its outputs: a
// runtime driving it directly must hold them itself.
//
// The runtime side lives beside the core, not in it: package kv/boltstore
// is the bbolt backend, package kv/watch the goroutine-safe hub that fans
// the [Changed] outputs out to watchers, package kv/kvtest the contract
// every backend passes. `go list -deps` of package kv holds no node,
// transport or bbolt package, which a test checks.
package kv
