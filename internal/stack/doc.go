// Package stack composes the Broadcaster overlay's core (package gossip) with
// the replicated store's core (package kv) into the one overlay.Core that a
// node of the framework runs, in the real runtime and in the simulator alike.
package stack
