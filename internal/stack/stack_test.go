package stack

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/p2p-go/p2p/gossip"
	"github.com/p2p-go/p2p/kv"
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// testNode is one composed node of a two-node network wired by hand.
type testNode struct {
	info    peer.Info
	node    *Node
	backend *kv.Memory
	failing bool // the runtime's writes fail, as on a full disk
}

var errDiskFull = errors.New("disk full")

func newTestNode(t *testing.T, name string) *testNode {
	t.Helper()
	seed := sha256.Sum256([]byte(name))
	key, err := peer.KeyFromSeed(seed[:])
	if err != nil {
		t.Fatal(err)
	}
	info := peer.Info{ID: key.ID(), Addr: name + ":7000"}
	g, err := gossip.New(gossip.Config{Self: info, Seed: uint64(seed[0])})
	if err != nil {
		t.Fatal(err)
	}
	backend := kv.NewMemory()
	s, err := kv.New(kv.Config{Key: key, Backend: backend, Seed: uint64(seed[1])})
	if err != nil {
		t.Fatal(err)
	}
	return &testNode{info: info, node: New(g, s), backend: backend}
}

// A local write's Persist comes out of the composition before everything
// that depends on it: the write's Result and the sends of its broadcast,
// which the Broadcaster's core made once the runtime reported the Persist
// written. There is one Persist per drain. A write whose Persist fails
// changes nothing: its Result carries the error, the store serves the old
// record and nothing is sent.
func TestPersistComesBeforeTheWritesResultAndBroadcast(t *testing.T) {
	a, b := newTestNode(t, "a"), newTestNode(t, "b")
	nodes := map[peer.ID]*testNode{a.info.ID: a, b.info.ID: b}
	byAddr := map[string]*testNode{a.info.Addr: a, b.info.Addr: b}
	type delivery struct {
		to    *testNode
		input any
	}
	var queue []delivery
	now := epoch
	// step runs one input and carries out the outputs as the runtime does.
	step := func(n *testNode, input any) []any {
		n.node.Step(now, input)
		outs := n.node.Drain(nil)
		persists := 0
		for i := 0; i < len(outs); i++ {
			switch o := outs[i].(type) {
			case kv.Persist:
				persists++
				err := errDiskFull
				if !n.failing {
					err = o.WriteTo(n.backend)
				}
				n.node.Step(now, kv.Persisted{Seq: o.Seq, Err: err})
				outs = append(outs, n.node.Drain(nil)...)
			case overlay.Send:
				if to := nodes[o.To.ID]; to != nil {
					queue = append(queue, delivery{to, overlay.Received{From: n.info, Msg: o.Msg}})
				} else if to := byAddr[o.To.Addr]; to != nil {
					queue = append(queue, delivery{to, overlay.Received{From: n.info, Msg: o.Msg}})
				}
			}
		}
		if persists > 1 {
			t.Fatalf("%d Persist outputs in one drain", persists)
		}
		return outs
	}
	run := func() {
		for len(queue) > 0 {
			d := queue[0]
			queue = queue[1:]
			step(d.to, d.input)
		}
	}
	step(b, gossip.Join{})
	step(a, gossip.Join{Contacts: []string{b.info.Addr}})
	run()
	for range 50 {
		now = now.Add(100 * time.Millisecond)
		step(a, overlay.Tick{})
		step(b, overlay.Tick{})
		run()
	}

	outs := step(a, kv.Put{ReqID: 1, Key: "app/mode", Value: []byte("blue")})
	at := func(match func(any) bool) []int {
		var is []int
		for i, out := range outs {
			if match(out) {
				is = append(is, i)
			}
		}
		return is
	}
	persist := at(func(o any) bool { _, ok := o.(kv.Persist); return ok })
	results := at(func(o any) bool { _, ok := o.(kv.Result); return ok })
	sends := at(func(o any) bool { s, ok := o.(overlay.Send); return ok && s.To.ID == b.info.ID })
	kinds := fmt.Sprint(slices.Collect(func(yield func(string) bool) {
		for _, out := range outs {
			if !yield(fmt.Sprintf("%T", out)) {
				return
			}
		}
	}))
	if len(persist) != 1 || len(results) != 1 || len(sends) == 0 {
		t.Fatalf("want one Persist, one Result and a send to b; got %s", kinds)
	}
	if p := outs[persist[0]].(kv.Persist); !p.Durable || persist[0] > results[0] || persist[0] > sends[0] {
		t.Fatalf("the durable Persist must precede the Result and the broadcast: %s", kinds)
	}
	run()
	if rec, ok := b.node.Store.Get("app/mode"); !ok || string(rec.Value) != "blue" {
		t.Fatalf("b did not get the write: %+v, %v", rec, ok)
	}
	if rec, found, err := a.backend.Get("app/mode"); err != nil || !found || string(rec.Value) != "blue" {
		t.Fatalf("a's backend: %+v, %v, %v", rec, found, err)
	}
	// b learnt the record from the broadcast and wrote it behind.
	if rec, found, _ := b.backend.Get("app/mode"); !found || string(rec.Value) != "blue" {
		t.Fatalf("b's backend: %+v, %v", rec, found)
	}

	a.failing = true
	digest := a.node.Store.Digest()
	outs = step(a, kv.Put{ReqID: 2, Key: "app/mode", Value: []byte("green")})
	results = at(func(o any) bool { _, ok := o.(kv.Result); return ok })
	sends = at(func(o any) bool { _, ok := o.(overlay.Send); return ok })
	changed := at(func(o any) bool { _, ok := o.(kv.Changed); return ok })
	if len(results) != 1 || !errors.Is(outs[results[0]].(kv.Result).Err, errDiskFull) {
		t.Fatalf("Result of a failed write: %v", outs)
	}
	if len(sends) != 0 || len(changed) != 0 {
		t.Fatalf("a failed write was sent or reported changed: %v", outs)
	}
	run()
	for _, n := range []*testNode{a, b} {
		if rec, ok := n.node.Store.Get("app/mode"); !ok || string(rec.Value) != "blue" {
			t.Fatalf("%s after a failed write: %+v, %v", n.info.Addr, rec, ok)
		}
	}
	if a.node.Store.Digest() != digest || a.node.Store.Stats().BackendErrors != 1 {
		t.Fatalf("a failed write changed the store: %+v", a.node.Store.Stats())
	}
}

// Two Persist outputs of one step leave the composition as one, where the
// first stood, with the later change of a key winning.
func TestPersistOutputsOfAStepAreMerged(t *testing.T) {
	n := newTestNode(t, "a")
	rec := func(key, value string) kv.Record { return kv.Record{Key: key, Value: []byte(value)} }
	n.node.routeStore(kv.Persist{Seq: 1, Put: []kv.Record{rec("x", "1"), rec("y", "1")}})
	n.node.routeStore(kv.Result{ReqID: 9})
	n.node.routeStore(kv.Persist{Seq: 2, Put: []kv.Record{rec("x", "2")}, Remove: []string{"y"}, Durable: true})
	outs := n.node.Drain(nil)
	if len(outs) != 1 {
		t.Fatalf("outputs %v", outs)
	}
	p, ok := outs[0].(kv.Persist)
	if !ok || p.Seq != 2 || !p.Durable || len(p.Put) != 1 || string(p.Put[0].Value) != "2" || fmt.Sprint(p.Remove) != "[y]" {
		t.Fatalf("merged Persist = %+v", outs[0])
	}
	// The Result waited for the Persist's outcome.
	n.node.Step(epoch, kv.Persisted{Seq: 2})
	if outs := n.node.Drain(nil); len(outs) != 1 || outs[0].(kv.Result).ReqID != 9 {
		t.Fatalf("after Persisted: %v", outs)
	}
	n.node.routeStore(kv.Persist{Seq: 3})
	if outs := n.node.Drain(nil); len(outs) != 1 {
		t.Fatalf("a new drain starts a new Persist: %v", outs)
	}
}

// While a durable Persist is drained and not yet reported written, the
// store's messages to peers wait for it (an anti-entropy answer may carry
// the unwritten local write): they come out once it is written, and are
// dropped if the write fails. A runtime can thus write while the node goes
// on.
func TestStoreMessagesWaitForAnUnwrittenDurablePersist(t *testing.T) {
	for _, failed := range []bool{false, true} {
		t.Run(fmt.Sprintf("failed=%v", failed), func(t *testing.T) {
			a, b := newTestNode(t, "a"), newTestNode(t, "b")
			sendsTo := func(outs []any, to peer.ID) int {
				n := 0
				for _, out := range outs {
					if s, ok := out.(overlay.Send); ok && s.To.ID == to {
						n++
					}
				}
				return n
			}
			a.node.Step(epoch, kv.Put{ReqID: 1, Key: "app/mode", Value: []byte("blue")})
			var persist kv.Persist
			for _, out := range a.node.Drain(nil) {
				if p, ok := out.(kv.Persist); ok {
					persist = p
				}
			}
			if !persist.Durable {
				t.Fatalf("no durable Persist for the Put: %+v", persist)
			}
			// A new neighbour: the store opens an anti-entropy round with it
			// at once, but its message waits for the write.
			a.node.Step(epoch, kv.NeighborUp{Peer: b.info})
			if got := sendsTo(a.node.Drain(nil), b.info.ID); got != 0 {
				t.Fatalf("%d store messages left before the Put's write", got)
			}
			var err error
			if failed {
				err = errDiskFull
			} else if err = persist.WriteTo(a.backend); err != nil {
				t.Fatal(err)
			}
			a.node.Step(epoch, kv.Persisted{Seq: persist.Seq, Err: err})
			got := sendsTo(a.node.Drain(nil), b.info.ID)
			switch {
			case !failed && got != 1:
				t.Fatalf("%d store messages after the write, want the round's one", got)
			case failed && got != 0:
				t.Fatalf("%d store messages after a failed write, want none", got)
			}
			// Nothing is held any more: the next round's message leaves at once.
			a.node.Step(epoch, kv.NeighborDown{Peer: b.info.ID})
			a.node.Step(epoch, kv.NeighborUp{Peer: b.info})
			if got := sendsTo(a.node.Drain(nil), b.info.ID); got != 1 {
				t.Fatalf("%d store messages once nothing is unwritten, want 1", got)
			}
		})
	}
}
