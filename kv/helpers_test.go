package kv

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/wire"
)

// tester is what test helpers need of *testing.T, *testing.B and *rapid.T.
type tester interface {
	Helper()
	Errorf(format string, args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
}

// epoch is the virtual time tests start at.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

var (
	testKeysMu sync.Mutex
	testKeys   = map[int]*peer.Key{}
	testKeyOf  = map[peer.ID]*peer.Key{}
)

// testKey returns node i's key, derived from i.
func testKey(i int) *peer.Key {
	testKeysMu.Lock()
	defer testKeysMu.Unlock()
	if key, ok := testKeys[i]; ok {
		return key
	}
	seed := sha256.Sum256(fmt.Appendf(nil, "node-%d", i))
	key, err := peer.KeyFromSeed(seed[:])
	if err != nil {
		panic(err)
	}
	testKeys[i] = key
	testKeyOf[key.ID()] = key
	return key
}

func testID(i int) peer.ID { return testKey(i).ID() }

// signed returns rec signed by its writer, a test node.
func signed(rec Record) Record {
	testKeysMu.Lock()
	key := testKeyOf[rec.Version.Writer]
	testKeysMu.Unlock()
	if key == nil {
		panic("signed: writer is not a test node")
	}
	return rec.Sign(key)
}

func testInfo(i int) peer.Info { return peer.Info{ID: testID(i), Addr: fmt.Sprintf("node-%d:7000", i)} }

// newTestStore creates a store for node i over backend (a new Memory when
// nil), letting configure adjust the config.
func newTestStore(t tester, i int, backend Backend, configure func(*Config)) *Store {
	t.Helper()
	if backend == nil {
		backend = NewMemory()
	}
	cfg := Config{Key: testKey(i), Backend: backend}
	if configure != nil {
		configure(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// stepResult feeds a Put or Delete to s and returns its Result.
func stepResult(t tester, s *Store, now time.Time, input any) Result {
	t.Helper()
	s.Step(now, input)
	for _, out := range drain(s) {
		if r, ok := out.(Result); ok {
			return r
		}
	}
	t.Fatalf("no Result for %T", input)
	return Result{}
}

// directNet connects stores with instant, lossless links and counts the
// anti-entropy bytes they exchange. Every message goes through the wire
// codec, as in a real run.
type directNet struct {
	t          tester
	stores     map[peer.ID]*Store
	infos      map[peer.ID]peer.Info
	now        time.Time
	broadcast  bool // deliver Broadcast outputs to every other store
	bytes      int  // encoded anti-entropy bytes, frame headers included
	messages   int
	largest    int
	results    []Result
	changes    map[peer.ID][]Changed
	queue      []queued
	onDelivery func(from, to peer.ID, msg any)
}

type queued struct {
	from peer.Info
	to   peer.ID
	msg  any // overlay.Received payload or FromBroadcast
}

func newDirectNet(t tester, now time.Time) *directNet {
	return &directNet{t: t, stores: map[peer.ID]*Store{}, infos: map[peer.ID]peer.Info{}, now: now, changes: map[peer.ID][]Changed{}}
}

func (n *directNet) add(info peer.Info, s *Store) {
	n.stores[info.ID] = s
	n.infos[info.ID] = info
}

// step feeds an input to a store and runs the network until it is quiet.
func (n *directNet) step(id peer.ID, input any) {
	n.stores[id].Step(n.now, input)
	n.collect(id)
	n.run()
}

func (n *directNet) collect(id peer.ID) {
	for _, out := range drain(n.stores[id]) {
		switch o := out.(type) {
		case overlay.Send:
			data, err := wire.Marshal(o.Msg)
			if err != nil {
				n.t.Fatalf("marshal %T: %v", o.Msg, err)
			}
			size := len(data) + wire.FrameHeaderLen
			n.bytes += size
			n.messages++
			n.largest = max(n.largest, size)
			msg, err := wire.Unmarshal(data)
			if err != nil {
				n.t.Fatalf("unmarshal %T: %v", o.Msg, err)
			}
			if _, ok := n.stores[o.To.ID]; ok {
				n.queue = append(n.queue, queued{from: n.infos[id], to: o.To.ID, msg: overlay.Received{From: n.infos[id], Msg: msg}})
			}
		case Broadcast:
			if !n.broadcast {
				continue
			}
			for other := range n.stores {
				if other != id {
					n.queue = append(n.queue, queued{from: n.infos[id], to: other, msg: FromBroadcast{From: n.infos[id], Payload: o.Payload}})
				}
			}
		case Result:
			n.results = append(n.results, o)
		case Changed:
			n.changes[id] = append(n.changes[id], o)
		}
	}
}

func (n *directNet) run() {
	for len(n.queue) > 0 {
		next := n.queue[0]
		n.queue = n.queue[1:]
		if n.onDelivery != nil {
			if r, ok := next.msg.(overlay.Received); ok {
				n.onDelivery(next.from.ID, next.to, r.Msg)
			}
		}
		n.stores[next.to].Step(n.now, next.msg)
		n.collect(next.to)
	}
}

// reconcile runs one anti-entropy round opened by from with to.
func (n *directNet) reconcile(from, to peer.ID) {
	n.step(from, NeighborUp{Peer: n.infos[to]})
}

// checkInvariants verifies that a store's in-memory index and tree agree with
// what it holds, its backend under the changes of the Persist outputs not
// yet written: the digest recomputed from scratch matches, and the counts do.
func checkInvariants(t tester, s *Store) {
	t.Helper()
	tree := newMerkleTree()
	live, entries := 0, 0
	var held []Record
	err := s.backend.Scan("", func(rec Record) bool {
		if _, changed := s.unstable[rec.Key]; !changed {
			held = append(held, rec)
		}
		return true
	})
	for _, op := range s.unstable {
		if !op.removed {
			held = append(held, op.rec)
		}
	}
	for _, rec := range held {
		entries++
		if !rec.Deleted {
			live++
		}
		tree.toggle(leafOf(rec.Key), rec.hash())
		if e, ok := s.index[rec.Key]; !ok || e.hash != rec.hash() {
			t.Errorf("index disagrees with backend for %q", rec.Key)
		}
	}
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	if got, want := s.Digest(), tree.root(); got != want {
		t.Errorf("digest %x, recomputed %x", got[:8], want[:8])
	}
	if live != s.Len() || entries != len(s.index) || entries-live != len(s.tombstones) {
		t.Errorf("counts: backend %d live of %d, store %d live of %d with %d tombstones", live, entries, s.Len(), len(s.index), len(s.tombstones))
	}
	n := 0
	for leaf, keys := range s.leafKeys {
		for _, key := range keys {
			if s.index[key].leaf != leaf {
				t.Errorf("key %q listed under leaf %d", key, leaf)
			}
		}
		n += len(keys)
	}
	if n != len(s.index) {
		t.Errorf("leaf lists hold %d keys, index %d", n, len(s.index))
	}
}

// drain drains s as a runtime does: it writes the Persist output to the
// store's backend (and reports it written with Advance) before returning
// every output, the Persist included.
func drain(s *Store) []any {
	outs := s.Drain(nil)
	for _, out := range outs {
		if p, ok := out.(Persist); ok {
			s.Advance(p.Seq, p.WriteTo(s.backend))
		}
	}
	return outs
}
