package kv

import (
	"errors"
	"fmt"
	"testing"
)

func TestPersistMergeKeepsTheLastChangeOfEachKey(t *testing.T) {
	rec := func(key, value string) Record { return Record{Key: key, Value: []byte(value)} }
	show := func(p Persist) string {
		var puts []string
		for _, r := range p.Put {
			puts = append(puts, r.Key+"="+string(r.Value))
		}
		return fmt.Sprintf("seq %d durable %v put %v remove %v", p.Seq, p.Durable, puts, p.Remove)
	}
	for _, tc := range []struct {
		name string
		p, q Persist
		want string
	}{
		{"into empty", Persist{Seq: 1, Durable: true}, Persist{Seq: 2, Put: []Record{rec("a", "1")}},
			"seq 2 durable true put [a=1] remove []"},
		{"disjoint", Persist{Seq: 1, Put: []Record{rec("a", "1")}, Remove: []string{"b"}}, Persist{Seq: 2, Put: []Record{rec("c", "1")}, Durable: true},
			"seq 2 durable true put [a=1 c=1] remove [b]"},
		{"put then remove", Persist{Seq: 1, Put: []Record{rec("a", "1"), rec("b", "1")}}, Persist{Seq: 2, Remove: []string{"a"}},
			"seq 2 durable false put [b=1] remove [a]"},
		{"remove then put", Persist{Seq: 3, Remove: []string{"a"}}, Persist{Seq: 4, Put: []Record{rec("a", "2")}},
			"seq 4 durable false put [a=2] remove []"},
		{"put twice", Persist{Seq: 1, Put: []Record{rec("a", "1")}}, Persist{Seq: 2, Put: []Record{rec("a", "2")}},
			"seq 2 durable false put [a=2] remove []"},
	} {
		if got := show(tc.p.Merge(tc.q)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// failingBackend is a Memory whose writes fail while failing is set.
type failingBackend struct {
	*Memory
	failing bool
}

func (f *failingBackend) Write(put []Record, remove []string) error {
	if f.failing {
		return errors.New("disk full")
	}
	return f.Memory.Write(put, remove)
}

// The store serves what it emitted in a Persist output until the runtime
// reports it written, the backend's copy after; a failed write is counted
// and rolled back: the backend's record is served again.
func TestStoreServesUnwrittenChangesUntilAdvance(t *testing.T) {
	backend := &failingBackend{Memory: NewMemory()}
	s := newTestStore(t, 1, backend, nil)
	s.Step(epoch, Put{Key: "a", Value: []byte("1")})
	outs := s.Drain(nil)
	p, ok := outs[0].(Persist)
	if !ok || !p.Durable {
		t.Fatalf("first output %T, want a durable Persist", outs[0])
	}
	if _, found, _ := backend.Get("a"); found {
		t.Fatal("the core wrote its backend")
	}
	if rec, ok := s.Get("a"); !ok || string(rec.Value) != "1" || len(s.List("")) != 1 {
		t.Fatalf("unwritten record not served: %+v, %v", rec, ok)
	}
	checkInvariants(t, s)

	s.Advance(p.Seq, p.WriteTo(backend))
	digest := s.Digest()

	backend.failing = true
	s.Step(epoch, Put{Key: "a", Value: []byte("2")})
	p = s.Drain(nil)[0].(Persist)
	s.Step(epoch, Persisted{Seq: p.Seq, Err: p.WriteTo(backend)})
	if s.Stats().BackendErrors != 1 {
		t.Errorf("BackendErrors = %d, want 1", s.Stats().BackendErrors)
	}
	if rec, ok := s.Get("a"); !ok || string(rec.Value) != "1" {
		t.Fatalf("after a failed write: %+v, %v, want the written record", rec, ok)
	}
	if s.Digest() != digest || len(s.unstable) != 0 {
		t.Fatal("a failed write changed the store")
	}
	checkInvariants(t, s)
	// A failed first write of a key leaves no key.
	s.Step(epoch, Put{Key: "b", Value: []byte("1")})
	p = s.Drain(nil)[0].(Persist)
	s.Advance(p.Seq, p.WriteTo(backend))
	if _, ok := s.Get("b"); ok || s.Len() != 1 || s.Digest() != digest {
		t.Fatal("a failed write of a new key left it in the store")
	}
	checkInvariants(t, s)
	// A later write of the key is written and replaces it.
	backend.failing = false
	s.Step(epoch, Delete{Key: "a"})
	outs = s.Drain(nil)
	p = outs[0].(Persist)
	s.Advance(p.Seq, p.WriteTo(backend))
	if len(s.unstable) != 0 {
		t.Fatalf("unstable after Advance: %v", s.unstable)
	}
	if rec, found, _ := backend.Get("a"); !found || !rec.Deleted {
		t.Fatalf("backend holds %+v, %v, want the tombstone", rec, found)
	}
	if _, ok := s.Get("a"); ok || len(s.List("")) != 0 {
		t.Fatal("deleted key still served")
	}
	checkInvariants(t, s)
}

// A revocation whose write fails is rolled back with its record: the deny
// list is what it was, and the store reports it again.
func TestFailedRevocationLeavesTheDenyList(t *testing.T) {
	backend := &failingBackend{Memory: NewMemory(), failing: true}
	s := newTestStore(t, 1, backend, nil)
	s.Step(epoch, Revoke{ID: testID(3)})
	outs := s.Drain(nil)
	p, ok := outs[0].(Persist)
	if !ok || !s.IsRevoked(testID(3)) {
		t.Fatalf("outputs %v", outs)
	}
	s.Step(epoch, Persisted{Seq: p.Seq, Err: p.WriteTo(backend)})
	if s.IsRevoked(testID(3)) || len(s.Revocations()) != 0 || s.Len() != 0 {
		t.Fatalf("a failed revocation stays: %+v", s.Revocations())
	}
	if lists := denyLists(s.Drain(nil)); len(lists) != 1 || len(lists[0]) != 0 {
		t.Fatalf("deny lists after the rollback: %v", lists)
	}
	checkInvariants(t, s)
}
