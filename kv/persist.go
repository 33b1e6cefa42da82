package kv

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/p2p-go/p2p/peer"
)

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

// unstableOp is a change of one key not yet reported written.
type unstableOp struct {
	seq     uint64
	rec     Record
	removed bool
}

// Advance tells the store that the runtime has carried out the [Persist]
// outputs up to seq: the backend returns their records from now on, and the
// store forgets its own copy. A runtime calls it (or steps [Persisted]) after
// writing each Persist (a lazy write counts: it must be visible to Get and
// Scan); one that never calls it is still correct, at the cost of the memory
// of what it wrote.
//
// A non-nil err reports that the write failed: it is counted
// (Stats.BackendErrors) and the store rolls those changes back: what the
// backend holds for each of their keys is the store's record again, as if
// the write had never been made. A local write whose Persist failed is thus
// undone here; a runtime that held back the outputs after the Persist until
// this point (see internal/stack) fails the write's Result and sends
// nothing. Records learnt from peers come back through anti-entropy.
func (s *Store) Advance(seq uint64, err error) {
	var failed []string
	for key, op := range s.unstable {
		if op.seq > seq {
			continue
		}
		delete(s.unstable, key)
		if err != nil {
			failed = append(failed, key)
		}
	}
	if err != nil {
		s.stats.BackendErrors++
		s.rollback(failed)
	}
	if len(s.unstable) == 0 && s.unstableLarge {
		// A map keeps the memory of its largest size: let an
		// anti-entropy round's thousands of records go.
		s.unstable, s.unstableLarge = nil, false
	}
}

// rollback indexes again what the backend holds for keys whose change was
// not written: the record it holds, or nothing.
func (s *Store) rollback(keys []string) {
	slices.Sort(keys)
	for _, key := range keys {
		rec, found, err := s.backend.Get(key)
		switch {
		case err != nil:
			s.log.Error("kv: read back after a failed write", "key", key, "err", err)
			s.forget([]string{key})
		case !found:
			s.forget([]string{key})
		default:
			rec = rec.Normalize()
			if e, known := s.index[key]; !known || e.hash != rec.hash() {
				s.install(rec)
			}
		}
		if id, ok := revokedID(key); ok {
			s.restoreRevocation(id, key)
		}
	}
}

// restoreRevocation makes the deny list's entry for id what the index holds
// again after a rollback of its revocation record (the next Step emits the
// changed DenyList).
func (s *Store) restoreRevocation(id peer.ID, key string) {
	rec, found, err := s.stored(key)
	if err != nil || !found || rec.Deleted {
		if _, known := s.revoked[id]; known {
			delete(s.revoked, id)
			s.denyChanged = true
		}
		return
	}
	r := Revocation{ID: id, By: rec.Version.Writer, At: rec.Version.Time}
	if old, known := s.revoked[id]; !known || old != r {
		s.revoked[id] = r
		s.denyChanged = true
	}
}

// stored returns the record of key that the store holds: the unstable one,
// else the backend's.
func (s *Store) stored(key string) (Record, bool, error) {
	if op, ok := s.unstable[key]; ok {
		if op.removed {
			return Record{}, false, nil
		}
		rec := op.rec
		rec.Value = bytes.Clone(rec.Value)
		return rec, true, nil
	}
	return s.backend.Get(key)
}

// persist emits the change as a [Persist] output, merged into the undrained
// one if there is one, and keeps it in unstable until Advance. durable asks
// the runtime to make it durable before it releases the outputs after it.
func (s *Store) persist(put []Record, remove []string, durable bool) {
	s.persistSeq++
	if s.unstable == nil {
		s.unstable = make(map[string]unstableOp, len(put)+len(remove))
	}
	for _, rec := range put {
		s.unstable[rec.Key] = unstableOp{seq: s.persistSeq, rec: rec}
	}
	for _, key := range remove {
		s.unstable[key] = unstableOp{seq: s.persistSeq, removed: true}
	}
	if len(s.unstable) > smallUnstable {
		s.unstableLarge = true
	}
	p := Persist{Seq: s.persistSeq, Put: put, Remove: remove, Durable: durable}
	if s.persistAt >= 0 {
		s.outputs[s.persistAt] = s.outputs[s.persistAt].(Persist).Merge(p)
		return
	}
	s.persistAt = len(s.outputs)
	s.outputs = append(s.outputs, p)
}

// smallUnstable is the size up to which the unstable map is kept for reuse
// once empty (a step's local writes and broadcast records).
const smallUnstable = 64
