// Package stack composes the Broadcaster overlay's core (package gossip) with
// the replicated store's core (package kv) into the one overlay.Core that a
// node of the framework runs, in the real runtime and in the simulator alike.
// The two cores are parts of one internal/compose Composer.
//
// The store's kv.Persist outputs of one step leave the composition merged
// into one, placed before every output that depends on them (a local
// write's Result, and the sends of its broadcast). The runtime thus writes
// a step's changes in one backend transaction, with at most one fsync, and
// then steps
// kv.Persisted with the write's outcome: the store's Result, Changed and
// Broadcast outputs after a Persist are held in the composition until then,
// so the broadcast reaches the gossip core only once the write is durable,
// and a failed write (rolled back by the store) answers its Result with the
// error and sends nothing. The store's messages to peers wait too while a
// durable Persist is unwritten, so that a runtime may write Persist outputs
// off its loop (the root package's disk writer merges those that arrive
// during a write) without an anti-entropy answer carrying a write that then
// fails.
package stack
