package gossip

import (
	"container/heap"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/wire"
)

// testNet is a deterministic discrete-event network of gossip cores with a
// virtual clock: messages take a seeded latency, links to dead or cut-off
// nodes fail with LinkDown after one round trip, as TCP resets would.
type testNet struct {
	t      *testing.T
	rand   *rand.Rand
	now    time.Time
	seq    uint64
	events eventHeap
	nodes  []*testNode
	byAddr map[string]*testNode
	byID   map[peer.ID]*testNode
	cut    map[[2]int]bool // partitioned pairs (lower index first)
	links  map[[2]int]bool // Connect links (from, to)

	latency time.Duration
	// onOutput sees every non-transport output.
	onOutput func(n *testNode, out any)
	// encode makes every message go through the wire codec.
	encode bool
	// drop, when set, drops the messages it returns true for.
	drop func(from, to *testNode, msg any) bool
	// nowhere counts the messages and links sent to addresses where no
	// node listens, by address.
	nowhere map[string]int
	// unsigned runs the cores without keys (records neither signed nor
	// checked), as large simulations do.
	unsigned bool
}

type testNode struct {
	index int
	info  peer.Info
	core  *Core
	alive bool
	// silent marks a host lost without a TCP reset (links cut, then the
	// host gone): what is sent to it vanishes, and dials neither succeed
	// nor fail.
	silent bool
	tick   uint64 // generation of the pending tick
	outs   []any
}

type event struct {
	at   time.Time
	seq  uint64
	node int
	gen  uint64 // for ticks: must equal node.tick
	in   any
}

type eventHeap []event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func newTestNet(t *testing.T, seed uint64) *testNet {
	return &testNet{
		t:       t,
		rand:    rand.New(rand.NewPCG(seed, 7)),
		now:     time.Unix(1_700_000_000, 0),
		byAddr:  map[string]*testNode{},
		byID:    map[peer.ID]*testNode{},
		cut:     map[[2]int]bool{},
		links:   map[[2]int]bool{},
		nowhere: map[string]int{},
		latency: 2 * time.Millisecond,
	}
}

func (n *testNet) addNode(cfg Config) *testNode {
	i := len(n.nodes)
	var seed [32]byte
	for b := range 4 {
		binary.LittleEndian.PutUint64(seed[8*b:], n.rand.Uint64())
	}
	key, err := peer.KeyFromSeed(seed[:])
	if err != nil {
		n.t.Fatal(err)
	}
	id := key.ID()
	if !n.unsigned {
		cfg.Key = key
	}
	cfg.Self = peer.Info{ID: id, Addr: fmt.Sprintf("node-%d", i)}
	cfg.Seed = n.rand.Uint64()
	core, err := New(cfg)
	if err != nil {
		n.t.Fatal(err)
	}
	node := &testNode{index: i, info: cfg.Self, core: core, alive: true}
	n.nodes = append(n.nodes, node)
	n.byAddr[cfg.Self.Addr] = node
	n.byID[id] = node
	return node
}

func (n *testNet) at(delay time.Duration, node int, in any) {
	n.seq++
	heap.Push(&n.events, event{at: n.now.Add(delay), seq: n.seq, node: node, in: in})
}

func (n *testNet) reachable(a, b *testNode) bool {
	if !a.alive || !b.alive {
		return false
	}
	lo, hi := min(a.index, b.index), max(a.index, b.index)
	return !n.cut[[2]int{lo, hi}]
}

// step feeds one input to a node and routes its outputs.
func (n *testNet) step(node *testNode, in any) {
	if !node.alive {
		return
	}
	node.core.Step(n.now, in)
	node.outs = node.core.Drain(node.outs[:0])
	for _, out := range node.outs {
		switch out := out.(type) {
		case overlay.Send:
			n.send(node, out)
		case overlay.Connect:
			dst := n.byID[out.Peer.ID]
			if dst != nil && dst.silent {
				continue
			}
			if dst == nil {
				n.nowhere[out.Peer.Addr]++
			}
			if dst == nil || !n.reachable(node, dst) {
				n.at(2*n.latency, node.index, overlay.LinkDown{Peer: out.Peer.ID, Addr: out.Peer.Addr})
				continue
			}
			n.links[[2]int{node.index, dst.index}] = true
		case overlay.Disconnect:
			if dst := n.byID[out.Peer]; dst != nil {
				delete(n.links, [2]int{node.index, dst.index})
			}
		default:
			if n.onOutput != nil {
				n.onOutput(node, out)
			}
		}
	}
	n.scheduleTick(node)
}

func (n *testNet) send(from *testNode, out overlay.Send) {
	dst := n.byID[out.To.ID]
	if out.To.ID.IsZero() {
		dst = n.byAddr[out.To.Addr]
	}
	if dst != nil && dst.silent {
		return
	}
	if dst == nil {
		n.nowhere[out.To.Addr]++
	}
	if dst == nil || !n.reachable(from, dst) {
		n.at(2*n.latency, from.index, overlay.LinkDown{Peer: out.To.ID, Addr: out.To.Addr})
		return
	}
	msg := out.Msg
	if n.drop != nil && n.drop(from, dst, msg) {
		return
	}
	if n.encode {
		data, err := wire.Marshal(msg)
		if err != nil {
			n.t.Fatalf("encode %T: %v", msg, err)
		}
		if msg, err = wire.Unmarshal(data); err != nil {
			n.t.Fatalf("decode %T: %v", out.Msg, err)
		}
	}
	n.at(n.latency, dst.index, overlay.Received{From: from.info, Msg: msg})
}

func (n *testNet) scheduleTick(node *testNode) {
	deadline, ok := node.core.NextDeadline()
	if !ok {
		return
	}
	node.tick++
	delay := max(deadline.Sub(n.now), 0)
	n.seq++
	heap.Push(&n.events, event{at: n.now.Add(delay), seq: n.seq, node: node.index, gen: node.tick, in: overlay.Tick{}})
}

// run processes events until virtual time reaches until.
func (n *testNet) run(d time.Duration) {
	until := n.now.Add(d)
	for n.events.Len() > 0 && !n.events[0].at.After(until) {
		ev := heap.Pop(&n.events).(event)
		n.now = ev.at
		node := n.nodes[ev.node]
		if _, isTick := ev.in.(overlay.Tick); isTick && ev.gen != node.tick {
			continue
		}
		n.step(node, ev.in)
	}
	n.now = until
}

// runUntil runs in small slices until cond holds or max virtual time passes,
// and returns the virtual time it took.
func (n *testNet) runUntil(max time.Duration, cond func() bool) (time.Duration, bool) {
	start := n.now
	for n.now.Sub(start) < max {
		if cond() {
			return n.now.Sub(start), true
		}
		n.run(100 * time.Millisecond)
	}
	return n.now.Sub(start), cond()
}

// kill crashes a node: its links break on the other side after one round
// trip.
func (n *testNet) kill(node *testNode) {
	node.alive = false
	for link := range n.links {
		if link[1] == node.index && n.nodes[link[0]].alive {
			n.at(2*n.latency, link[0], overlay.LinkDown{Peer: node.info.ID, Addr: node.info.Addr})
		}
		if link[0] == node.index || link[1] == node.index {
			delete(n.links, link)
		}
	}
}

// partition cuts every pair between the two groups and breaks their links.
func (n *testNet) partition(a, b []*testNode) {
	for _, x := range a {
		for _, y := range b {
			lo, hi := min(x.index, y.index), max(x.index, y.index)
			n.cut[[2]int{lo, hi}] = true
			for _, link := range [][2]int{{x.index, y.index}, {y.index, x.index}} {
				if n.links[link] {
					delete(n.links, link)
					n.at(2*n.latency, link[0], overlay.LinkDown{Peer: n.nodes[link[1]].info.ID})
				}
			}
		}
	}
}

func (n *testNet) heal() { clear(n.cut) }

func (n *testNet) alive() []*testNode {
	var out []*testNode
	for _, node := range n.nodes {
		if node.alive {
			out = append(out, node)
		}
	}
	return out
}

// joinAll starts count nodes, each joining through a random earlier node.
func (n *testNet) joinAll(count int, cfg Config) {
	for i := range count {
		node := n.addNode(cfg)
		var contacts []string
		if i > 0 {
			contacts = []string{n.nodes[n.rand.IntN(i)].info.Addr}
		}
		n.step(node, Join{Contacts: contacts})
		n.run(20 * time.Millisecond)
	}
}

// connected reports whether the active views of the live nodes form one
// connected graph.
func (n *testNet) connected() bool {
	live := n.alive()
	if len(live) == 0 {
		return true
	}
	seen := map[int]bool{live[0].index: true}
	queue := []*testNode{live[0]}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, p := range cur.core.Neighbors() {
			next := n.byID[p.ID]
			if next != nil && next.alive && !seen[next.index] {
				seen[next.index] = true
				queue = append(queue, next)
			}
		}
	}
	return len(seen) == len(live)
}

// restart replaces a crashed node's core by a new one with the same key,
// address and configuration, as a restarted process on the same data
// directory would be, and steps it with join.
func (n *testNet) restart(node *testNode, join Join) {
	cfg := node.core.cfg
	core, err := New(Config{Self: cfg.Self, Key: cfg.Key, Seed: cfg.Seed + 1, Name: cfg.Name, Tags: cfg.Tags})
	if err != nil {
		n.t.Fatal(err)
	}
	node.core = core
	node.alive = true
	node.silent = false
	n.step(node, join)
}
