package kv

import "fmt"

// Persist is the output asking the runtime to store Put and remove the keys
// in Remove in the [Backend], in the style of the entries of etcd-io/raft's
// Ready: the core decides what to write, the runtime writes it.
//
// Durable asks for the change to be on disk before any output that follows
// the Persist in the drained list is carried out: the [Result] of a local
// [Put], [Delete] or [Revoke] (which promises "durable here when it
// returns"), its [Changed] and its [Broadcast], and whatever a composition
// of cores derived from them (the Broadcaster's sends). A runtime may gather
// the Persist outputs of several steps into one backend write and one fsync,
// as long as it holds back the outputs that follow each until that write is
// durable. A Persist that is not Durable (records learnt from peers, purged
// tombstones, withdrawn records) need only be visible to the backend's Get
// and Scan before the runtime calls [Store.Advance]; a crash may lose it to
// the next anti-entropy round ([LazyWriter]). When a write fails, the
// runtime reports it (Advance with the error, or [Persisted]) and the store
// rolls its changes back; the runtime then drops the Changed and Broadcast
// outputs after the Persist and fails its Results (internal/stack does so).
//
// Seq numbers Persist outputs in order; [Store.Advance] takes the Seq of the
// last one written.
type Persist struct {
	Seq     uint64
	Put     []Record
	Remove  []string
	Durable bool
}

// Persisted is the input telling the store (or a composition of cores
// holding the outputs that follow a Persist, see internal/stack) that the
// runtime has carried out the Persist outputs up to Seq; Err is the write's
// error. Stepping it is the same as calling [Store.Advance].
type Persisted struct {
	Seq uint64
	Err error
}

// Merge returns p followed by q as one Persist: a key that q writes or
// removes takes q's change. The result is durable if either is, and carries
// the later Seq.
func (p Persist) Merge(q Persist) Persist {
	if len(p.Put) == 0 && len(p.Remove) == 0 {
		q.Durable = q.Durable || p.Durable
		q.Seq = max(p.Seq, q.Seq)
		return q
	}
	changed := make(map[string]struct{}, len(q.Put)+len(q.Remove))
	for _, rec := range q.Put {
		changed[rec.Key] = struct{}{}
	}
	for _, key := range q.Remove {
		changed[key] = struct{}{}
	}
	merged := Persist{Seq: max(p.Seq, q.Seq), Durable: p.Durable || q.Durable}
	for _, rec := range p.Put {
		if _, ok := changed[rec.Key]; !ok {
			merged.Put = append(merged.Put, rec)
		}
	}
	for _, key := range p.Remove {
		if _, ok := changed[key]; !ok {
			merged.Remove = append(merged.Remove, key)
		}
	}
	merged.Put = append(merged.Put, q.Put...)
	merged.Remove = append(merged.Remove, q.Remove...)
	return merged
}

// Empty reports whether p changes nothing.
func (p Persist) Empty() bool { return len(p.Put) == 0 && len(p.Remove) == 0 }

// WriteTo carries out p on b: one [Backend.Write] (durable when it returns)
// if p is Durable, else [LazyWriter.WriteLazy] where b has it. It is the
// runtime's half of the contract; the caller then calls [Store.Advance].
func (p Persist) WriteTo(b Backend) error {
	if p.Empty() {
		return nil
	}
	var err error
	if lazy, ok := b.(LazyWriter); ok && !p.Durable {
		err = lazy.WriteLazy(p.Put, p.Remove)
	} else {
		err = b.Write(p.Put, p.Remove)
	}
	if err != nil {
		return fmt.Errorf("kv: persist %d records, %d removals: %w", len(p.Put), len(p.Remove), err)
	}
	return nil
}
