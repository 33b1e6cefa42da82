// Package boltstore is the replicated store's default backend: a kv.Backend
// kept in one go.etcd.io/bbolt file (File, kv.db, in a node's data
// directory), one bucket mapping each key to its CBOR-encoded, signed
// record.
//
// It is the runtime half of the store's persistence. The core (package kv)
// never writes: it emits kv.Persist outputs, and the runtime carries each out
// with kv.Persist.WriteTo before it releases the outputs that depend on it.
// A durable Persist (a local write) is one bbolt transaction committed with
// fsync ([Bolt.Write]); one that need not be (records learnt from peers,
// purges) is queued by [Bolt.WriteLazy], visible to Get and Scan at once, and
// committed without fsync by the Bolt's own goroutine about 20 ms later, or
// with the next Write, Scan or Close. A file written before records were
// signed is refused with [ErrOldFormat].
package boltstore
