package gossip

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/p2p-go/p2p/internal/testutil"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/wire"
)

// signedEntry returns key's alive record at incarnation inc and address
// addr, signed.
func signedEntry(key *peer.Key, addr string, inc uint64, tags map[string]string) Entry {
	e := Entry{Peer: peer.Info{ID: key.ID(), Addr: addr}, Incarnation: inc, State: StateAlive, Name: "n", Tags: tags,
		PublicKey: key.Public()}
	e.Signature = key.Sign(recordBytes(e))
	return e
}

// decodedCopy returns e as another node would decode it off the wire: equal
// content, no memory in common with e.
func decodedCopy(t *testing.T, e Entry) Entry {
	t.Helper()
	body, err := wire.MarshalValue(e)
	if err != nil {
		t.Fatal(err)
	}
	var out Entry
	if err := wire.UnmarshalValue(body, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// testKey returns the key derived from a 32-byte seed of b.
func testKey(t testing.TB, b ...byte) *peer.Key {
	t.Helper()
	key, err := peer.KeyFromSeed(bytes.Repeat(b, 32/len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func newKeyedCore(t testing.TB, seed uint64) *Core {
	t.Helper()
	key := testKey(t, byte(seed), 0x11)
	c, err := New(Config{Self: peer.Info{ID: key.ID(), Addr: fmt.Sprintf("10.0.0.%d:1", seed)}, Key: key, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Two nodes of one process that learn the same signed record, each from
// its own decoded copy, hold one shared copy of it; a node's table holds a
// pointer and a state per member, not the record.
func TestTwoNodesDecodingOneRecordShareIt(t *testing.T) {
	key := testKey(t, 7)
	e := signedEntry(key, "10.1.1.1:7000", 5, map[string]string{"role": "db"})
	a, b := newKeyedCore(t, 1), newKeyedCore(t, 2)
	now := time.Unix(1000, 0)
	if !a.learn(now, decodedCopy(t, e), false, peer.Info{}) || !b.learn(now, decodedCopy(t, e), false, peer.Info{}) {
		t.Fatal("a valid signed record was not learnt")
	}
	ma, oka := a.members.get(key.ID())
	mb, okb := b.members.get(key.ID())
	if !oka || !okb {
		t.Fatal("member missing from a table")
	}
	if ma.rec != mb.rec {
		t.Fatal("the two nodes hold two copies of one record")
	}
	// The same body arriving twice (a membership broadcast, at two
	// nodes) is decoded once.
	body, err := wire.MarshalValue(membershipEvent{Entry: e})
	if err != nil {
		t.Fatal(err)
	}
	first, second := decodeMembership(body), decodeMembership(bytes.Clone(body))
	if first == nil || first != second || first.rec != ma.rec {
		t.Fatalf("a membership body decoded twice: %p and %p (record %p, want %p)", first, second, first.rec, ma.rec)
	}
	// Nothing the caller keeps aliases the shared record.
	e.Tags["role"] = "changed"
	if got := a.MemberEntries()[1].Tags["role"]; got != "db" {
		t.Fatalf("the shared record's tag changed with the caller's map: %q", got)
	}
	got := a.MemberEntries()[1]
	got.Tags["role"] = "mutated by a caller"
	if again := b.MemberEntries()[1].Tags["role"]; again != "db" {
		t.Fatalf("a caller's change to MemberEntries reached another node's record: %q", again)
	}
}

// A new version of a record (a higher incarnation, another address, other
// tags, or a forged signature) is another record: the nodes that still hold
// the old one keep it as it was, and a forged copy is refused without
// touching the genuine one.
func TestChangedRecordIsNotConfusedWithTheOld(t *testing.T) {
	key := testKey(t, 9)
	old := signedEntry(key, "10.1.1.1:7000", 5, nil)
	a, b := newKeyedCore(t, 3), newKeyedCore(t, 4)
	now := time.Unix(1000, 0)
	a.learn(now, decodedCopy(t, old), false, peer.Info{})
	b.learn(now, decodedCopy(t, old), false, peer.Info{})
	for _, changed := range []Entry{
		signedEntry(key, "10.1.1.1:7000", 6, nil),
		signedEntry(key, "10.2.2.2:7000", 7, nil),
		signedEntry(key, "10.2.2.2:7000", 8, map[string]string{"zone": "b"}),
	} {
		if !a.learn(now, decodedCopy(t, changed), false, peer.Info{}) {
			t.Fatalf("incarnation %d not learnt", changed.Incarnation)
		}
		ma, _ := a.members.get(key.ID())
		mb, _ := b.members.get(key.ID())
		if ma.rec == mb.rec {
			t.Fatalf("incarnation %d shares the old record", changed.Incarnation)
		}
		if e := ma.entry(); e.Incarnation != changed.Incarnation || e.Peer.Addr != changed.Peer.Addr || len(e.Tags) != len(changed.Tags) {
			t.Fatalf("node a holds %+v, want %+v", e, changed)
		}
		if e := mb.entry(); e.Incarnation != 5 || e.Peer.Addr != "10.1.1.1:7000" || !bytes.Equal(e.Signature, old.Signature) {
			t.Fatalf("node b's old record changed: %+v", e)
		}
	}
	// A forged record at a higher incarnation (someone else's signature)
	// is refused; the genuine one stays.
	forged := old
	forged.Incarnation = 99
	forged.Signature = bytes.Repeat([]byte{1}, 64)
	if b.learn(now, decodedCopy(t, forged), false, peer.Info{}) {
		t.Fatal("a forged record was learnt")
	}
	if mb, _ := b.members.get(key.ID()); mb.incarnation() != 5 || !bytes.Equal(mb.rec.entry.Signature, old.Signature) {
		t.Fatalf("the forged record replaced the genuine one: %+v", mb.entry())
	}
	// Two records that differ only in their signature are two records.
	if internRecord(forged) == internRecord(signedEntry(key, old.Peer.Addr, 99, nil)) {
		t.Fatal("a forged and a genuine record with the same fields share one record")
	}
}

// A record no node holds any more leaves the intern table: a process that
// runs a long time (or the simulator, through churn) does not keep every
// record it ever saw.
func TestRecordsNoNodeHoldsAreForgotten(t *testing.T) {
	var keys []string
	func() {
		c := newKeyedCore(t, 5)
		now := time.Unix(1000, 0)
		for i := range 200 {
			key := testKey(t, byte(i), 0xaa)
			e := signedEntry(key, fmt.Sprintf("10.3.3.3:%d", i+1), 1, nil) // one member per address
			c.learn(now, e, false, peer.Info{})
			keys = append(keys, recordKey(e))
		}
		if held := interned(keys); held != len(keys) {
			t.Fatalf("%d of the %d records learnt are interned", held, len(keys))
		}
		runtime.KeepAlive(c)
	}()
	// Cleanups run on their own goroutine after a collection.
	testutil.EventuallyWhy(t, 10*time.Second, "the records of a dropped node to leave the intern table", func() (bool, string) {
		runtime.GC()
		held := interned(keys)
		return held == 0, fmt.Sprintf("%d records still interned", held)
	})
}

// interned returns how many of keys have a live record in the intern table.
func interned(keys []string) int {
	n := 0
	for _, key := range keys {
		if internedRecords.Held(key) {
			n++
		}
	}
	return n
}

// The member table against a map: random puts and removes keep lookups,
// counts and every bucket digest equal to a table rebuilt from scratch, and
// a node's table costs at most 16 bytes per member.
func TestMemberTableMatchesAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	recs := make([]*record, 3000)
	for i := range recs {
		var id peer.ID
		for j := range id {
			id[j] = byte(rng.Uint32())
		}
		recs[i] = internRecord(Entry{Peer: peer.Info{ID: id, Addr: fmt.Sprint(i)}, Incarnation: uint64(i + 1), State: StateAlive})
	}
	table := newMemberTable(42, false)
	model := map[peer.ID]member{}
	states := []uint8{StateAlive, StateDead, StateLeft}
	for step := range 20000 {
		rec := recs[rng.IntN(len(recs))]
		if rng.IntN(4) == 0 {
			table.remove(rec.entry.Peer.ID)
			delete(model, rec.entry.Peer.ID)
		} else {
			m := member{rec: rec, state: states[rng.IntN(len(states))]}
			table.put(m)
			model[rec.entry.Peer.ID] = m
		}
		if step%1000 != 0 {
			continue
		}
		if table.len() != len(model) {
			t.Fatalf("step %d: %d members, want %d", step, table.len(), len(model))
		}
		fresh := newMemberTable(7, false)
		alive := 0
		for id, want := range model {
			got, ok := table.get(id)
			if !ok || got != want {
				t.Fatalf("step %d: get %v = %+v, %v; want %+v", step, id.Short(), got, ok, want)
			}
			fresh.put(want)
			if want.state == StateAlive {
				alive++
			}
		}
		if table.alive != alive {
			t.Fatalf("step %d: %d alive, want %d", step, table.alive, alive)
		}
		for _, buckets := range []int{1, 4, 64, maxBuckets} {
			if !bytes.Equal(table.digest(Entry{}, buckets), fresh.digest(Entry{}, buckets)) {
				t.Fatalf("step %d: the digest in %d buckets differs from a rebuilt table's", step, buckets)
			}
		}
		visited := 0
		table.each(func(member) bool { visited++; return true })
		if visited != len(model) {
			t.Fatalf("step %d: each visited %d members, want %d", step, visited, len(model))
		}
	}
	full := newMemberTable(1, false)
	for _, rec := range recs {
		full.put(member{rec: rec, state: StateAlive})
	}
	if perMember := float64(full.slots()*9) / float64(full.len()); perMember > 16 {
		t.Fatalf("the table costs %.1f bytes per member, want at most 16", perMember)
	}
}

// Two lists that differ in one member differ in that member's bucket only,
// so a sync sends that bucket's entries, not the whole list.
func TestSyncSendsOnlyTheBucketsThatDiffer(t *testing.T) {
	a, b := newMemberTable(1, false), newMemberTable(2, false)
	rng := rand.New(rand.NewPCG(3, 4))
	var last *record
	for i := range 1000 {
		var id peer.ID
		for j := range id {
			id[j] = byte(rng.Uint32())
		}
		last = internRecord(Entry{Peer: peer.Info{ID: id, Addr: fmt.Sprint(i)}, Incarnation: 1, State: StateAlive})
		a.put(member{rec: last, state: StateAlive})
		b.put(member{rec: last, state: StateAlive})
	}
	self := Entry{Peer: peer.Info{ID: peer.ID{1}, Addr: "x"}, Incarnation: 3, State: StateAlive}
	buckets := digestBuckets(a.len() + 1)
	if differ := a.differingBuckets(self, b.digest(self, buckets)); differ != nil {
		t.Fatalf("equal lists differ in %d buckets", count(differ))
	}
	b.put(member{rec: last, state: StateDead})
	differ := a.differingBuckets(self, b.digest(self, buckets))
	if count(differ) != 1 || !differ[bucketOf(last.entry.Peer.ID, buckets)] {
		t.Fatalf("lists differing in one member differ in %d buckets, want its bucket only", count(differ))
	}
}

// SWIM's probe round: every member is probed once per round, in a random
// order, without a copy of the member list.
func TestProbeRoundProbesEveryMemberOnce(t *testing.T) {
	for _, members := range []int{1, 2, 7, 50, 333} {
		c, err := New(Config{Self: peer.Info{ID: peer.ID{0xff}, Addr: "self"}, Seed: uint64(members)})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Unix(1000, 0)
		for i := range members {
			c.learn(now, Entry{Peer: peer.Info{ID: peer.ID{byte(i), byte(i >> 8), 1}, Addr: fmt.Sprint(i)}, State: StateAlive}, false, peer.Info{})
		}
		c.Drain(nil)
		probed := map[peer.ID]int{}
		for range members {
			c.probeNext(now)
			for id := range c.probes {
				probed[id]++
			}
			clear(c.probes)
		}
		if len(probed) != members {
			t.Fatalf("%d members: %d probed in a round", members, len(probed))
		}
		for id, n := range probed {
			if n != 1 {
				t.Fatalf("%d members: %v probed %d times in a round", members, id.Short(), n)
			}
		}
	}
}
