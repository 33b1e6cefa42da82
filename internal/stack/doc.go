// Package stack composes the Broadcaster overlay's core (package gossip) with
// the replicated store's core (package kv) into the one overlay.Core that a
// node of the framework runs, in the real runtime and in the simulator alike.
// The two cores are parts of one internal/compose Composer.
//
// The store's kv.Persist outputs of one step leave the composition merged
// into one, placed before every output that depends on them (a local
// write's Result, and the sends of its broadcast, which the gossip core
// makes within the same step). The runtime thus writes a step's changes in
// one backend transaction, with at most one fsync, before it releases the
// rest.
package stack
