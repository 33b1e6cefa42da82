// Package watch fans the replicated store's changes out to watchers: the
// runtime side of watches, kept out of the store's core (package kv), which
// only reports changes as kv.Changed outputs. A [Hub] is fed by the runtime
// that owns a kv.Store (the store's records once at start, then the record
// of every Changed output, after the Persist output before it) and read by
// any number of goroutines: each Watch gets a snapshot of a prefix, a Synced
// event, then every change, without a gap between the two; a watcher that
// falls its buffer behind is dropped with [ErrTooSlow], and never slows the
// store.
package watch
