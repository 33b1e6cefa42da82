package hyparview

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/wire"
)

// testNet is a deterministic virtual-time network of cores. Messages travel
// through wire.Marshal/Unmarshal with a seeded latency, in FIFO order per
// ordered pair of nodes (as over one TCP connection). A crashed node is
// silent: messages to it over a link its sender asked to keep vanish, other
// sends fail with LinkDown after dialTimeout. A cut between two nodes
// behaves the same way.
type testNet struct {
	t           testing.TB
	rng         *rand.Rand
	now         time.Time
	nodes       map[peer.ID]*testNode
	byAddr      map[string]*testNode
	order       []*testNode
	queue       eventQueue
	seq         uint64
	minLatency  time.Duration
	maxLatency  time.Duration
	dialTimeout time.Duration
	lastArrival map[[2]peer.ID]time.Time
	links       map[[2]peer.ID]bool
	cut         func(a, b peer.ID) bool
	configure   func(*Config)

	steps    int
	messages map[wire.Type]int
	bytes    int
	buf      []any
}

type testNode struct {
	core     *Core
	info     peer.Info
	alive    bool
	joined   bool
	tickAt   time.Time
	ups      int
	downs    int
	received map[wire.Type]int
}

type netEvent struct {
	at    time.Time
	seq   uint64
	to    *testNode
	input any // nil for a timer tick
}

type eventQueue []netEvent

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(netEvent)) }
func (q *eventQueue) Pop() any {
	old := *q
	last := old[len(old)-1]
	*q = old[:len(old)-1]
	return last
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newTestNet(t testing.TB, seed uint64) *testNet {
	return &testNet{
		t:           t,
		rng:         rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)),
		now:         epoch,
		nodes:       make(map[peer.ID]*testNode),
		byAddr:      make(map[string]*testNode),
		minLatency:  5 * time.Millisecond,
		maxLatency:  40 * time.Millisecond,
		dialTimeout: 500 * time.Millisecond,
		lastArrival: make(map[[2]peer.ID]time.Time),
		links:       make(map[[2]peer.ID]bool),
		messages:    make(map[wire.Type]int),
	}
}

// randomID returns a random non-zero node ID.
func randomID(rng *rand.Rand) peer.ID {
	var id peer.ID
	for i := 0; i < peer.IDLen; i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8; j++ {
			id[i+j] = byte(v >> (8 * j))
		}
	}
	return id
}

// add creates a node (not yet joined).
func (n *testNet) add() *testNode {
	info := peer.Info{ID: randomID(n.rng), Addr: fmt.Sprintf("10.0.%d.%d:7946", len(n.order)/250, len(n.order)%250)}
	cfg := Config{Self: info, Seed: n.rng.Uint64()}
	if n.configure != nil {
		n.configure(&cfg)
	}
	core, err := New(cfg)
	if err != nil {
		n.t.Fatalf("New: %v", err)
	}
	node := &testNode{core: core, info: info, alive: true, received: make(map[wire.Type]int)}
	n.nodes[info.ID] = node
	n.byAddr[info.Addr] = node
	n.order = append(n.order, node)
	return node
}

// step feeds one input to a node now and routes its outputs.
func (n *testNet) step(node *testNode, input any) {
	if !node.alive {
		return
	}
	n.steps++
	node.core.Step(n.now, input)
	n.buf = node.core.Drain(n.buf[:0])
	for _, output := range n.buf {
		n.route(node, output)
	}
	if deadline, ok := node.core.NextDeadline(); ok && (node.tickAt.IsZero() || deadline.Before(node.tickAt)) {
		node.tickAt = deadline
		n.push(deadline, node, nil)
	}
}

func (n *testNet) push(at time.Time, to *testNode, input any) {
	n.seq++
	heap.Push(&n.queue, netEvent{at: at, seq: n.seq, to: to, input: input})
}

func (n *testNet) reachable(from, to *testNode) bool {
	return to != nil && to.alive && (n.cut == nil || !n.cut(from.info.ID, to.info.ID))
}

func (n *testNet) route(from *testNode, output any) {
	switch out := output.(type) {
	case overlay.Send:
		n.deliver(from, out)
	case overlay.Connect:
		n.links[[2]peer.ID{from.info.ID, out.Peer.ID}] = true
		if !n.reachable(from, n.nodes[out.Peer.ID]) {
			n.push(n.now.Add(n.dialTimeout), from, overlay.LinkDown{Peer: out.Peer.ID, Addr: out.Peer.Addr})
		}
	case overlay.Disconnect:
		delete(n.links, [2]peer.ID{from.info.ID, out.Peer})
	case NeighborUp:
		from.ups++
	case NeighborDown:
		from.downs++
	case Joined:
		if from.joined {
			n.t.Errorf("node %s: Joined emitted twice", from.info)
		}
		from.joined = true
	default:
		n.t.Fatalf("node %s: unexpected output %T", from.info, output)
	}
}

func (n *testNet) deliver(from *testNode, send overlay.Send) {
	var to *testNode
	if send.To.ID.IsZero() {
		to = n.byAddr[send.To.Addr]
	} else {
		to = n.nodes[send.To.ID]
	}
	if send.To.ID == from.info.ID || (to != nil && to == from) {
		n.t.Fatalf("node %s sent %T to itself", from.info, send.Msg)
	}
	if !n.reachable(from, to) {
		if !n.links[[2]peer.ID{from.info.ID, send.To.ID}] {
			n.push(n.now.Add(n.dialTimeout), from, overlay.LinkDown{Peer: send.To.ID, Addr: send.To.Addr})
		}
		return
	}
	data, err := wire.Marshal(send.Msg)
	if err != nil {
		n.t.Fatalf("marshal %T: %v", send.Msg, err)
	}
	msg, err := wire.Unmarshal(data)
	if err != nil {
		n.t.Fatalf("unmarshal %T: %v", send.Msg, err)
	}
	code, _ := wire.TypeOf(msg)
	n.messages[code]++
	n.bytes += wire.FrameHeaderLen + len(data)
	pair := [2]peer.ID{from.info.ID, to.info.ID}
	at := n.now.Add(n.minLatency + time.Duration(n.rng.Int64N(int64(n.maxLatency-n.minLatency)+1)))
	if last := n.lastArrival[pair]; at.Before(last) {
		at = last
	}
	n.lastArrival[pair] = at
	n.push(at, to, overlay.Received{From: from.info, Msg: msg})
}

// run processes events up to and including the given virtual time.
func (n *testNet) run(d time.Duration) {
	until := n.now.Add(d)
	for n.queue.Len() > 0 && !n.queue[0].at.After(until) {
		event := heap.Pop(&n.queue).(netEvent)
		n.now = event.at
		node := event.to
		if !node.alive {
			continue
		}
		if event.input == nil {
			if !event.at.Equal(node.tickAt) {
				continue // superseded by an earlier deadline
			}
			node.tickAt = time.Time{}
			n.step(node, overlay.Tick{})
			continue
		}
		if received, ok := event.input.(overlay.Received); ok {
			if n.cut != nil && n.cut(received.From.ID, node.info.ID) {
				continue
			}
			code, _ := wire.TypeOf(received.Msg)
			node.received[code]++
		}
		n.step(node, event.input)
	}
	n.now = until
}

// runUntil runs in steps of `every` until cond holds or limit passes; it
// returns the virtual time taken and whether cond held.
func (n *testNet) runUntil(limit, every time.Duration, cond func() bool) (time.Duration, bool) {
	start := n.now
	for n.now.Sub(start) < limit {
		n.run(every)
		if cond() {
			return n.now.Sub(start), true
		}
	}
	return n.now.Sub(start), false
}

// join makes node join through contact (nil: start a new overlay).
func (n *testNet) join(node, contact *testNode) {
	var contacts []string
	if contact != nil {
		contacts = []string{contact.info.Addr}
	}
	n.step(node, Join{Contacts: contacts})
}

// grow builds an overlay of size nodes, each joining through a random
// earlier node, one every `spacing`.
func (n *testNet) grow(size int, spacing time.Duration) {
	first := n.add()
	n.join(first, nil)
	for len(n.order) < size {
		contact := n.order[n.rng.IntN(len(n.order))]
		n.join(n.add(), contact)
		n.run(spacing)
	}
}

// crash silences node.
func (n *testNet) crash(node *testNode) { node.alive = false }

func (n *testNet) live() []*testNode {
	var live []*testNode
	for _, node := range n.order {
		if node.alive {
			live = append(live, node)
		}
	}
	return live
}

// asymmetries lists the active-view entries among live nodes that are not
// returned (A has B, B is alive and lacks A).
func (n *testNet) asymmetries() []string {
	var problems []string
	for _, node := range n.live() {
		for _, info := range node.core.ActiveView() {
			other := n.nodes[info.ID]
			if other == nil {
				problems = append(problems, fmt.Sprintf("%s has unknown %s", node.info, info))
				continue
			}
			if other.alive && !other.core.activeView.has(node.info.ID) {
				problems = append(problems, fmt.Sprintf("%s has %s but not back", node.info, info))
			}
		}
	}
	return problems
}

// persistentAsymmetries runs the network for half a second and returns the
// asymmetric entries present both before and after: a NEIGHBOR accept or
// a DISCONNECT in flight makes an entry one-sided for a moment, which the
// paper's symmetry claim (about steady state) allows.
func (n *testNet) persistentAsymmetries() []string {
	before := n.asymmetries()
	n.run(500 * time.Millisecond)
	var persistent []string
	for _, problem := range n.asymmetries() {
		if slices.Contains(before, problem) {
			persistent = append(persistent, problem)
		}
	}
	return persistent
}

// deadNeighbours counts active-view entries of live nodes naming dead nodes.
func (n *testNet) deadNeighbours() int {
	count := 0
	for _, node := range n.live() {
		for _, info := range node.core.ActiveView() {
			if !n.nodes[info.ID].alive {
				count++
			}
		}
	}
	return count
}

// components returns the number of connected components of the live nodes'
// active-view graph, taken as undirected.
func (n *testNet) components() int {
	live := n.live()
	adjacent := make(map[peer.ID][]peer.ID, len(live))
	for _, node := range live {
		for _, info := range node.core.ActiveView() {
			if n.nodes[info.ID].alive {
				adjacent[node.info.ID] = append(adjacent[node.info.ID], info.ID)
				adjacent[info.ID] = append(adjacent[info.ID], node.info.ID)
			}
		}
	}
	seen := make(map[peer.ID]bool, len(live))
	count := 0
	for _, start := range live {
		if seen[start.info.ID] {
			continue
		}
		count++
		seen[start.info.ID] = true
		stack := []peer.ID{start.info.ID}
		for len(stack) > 0 {
			id := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, next := range adjacent[id] {
				if !seen[next] {
					seen[next] = true
					stack = append(stack, next)
				}
			}
		}
	}
	return count
}

// degreeHistogram counts live nodes by active-view size.
func (n *testNet) degreeHistogram() map[int]int {
	histogram := make(map[int]int)
	for _, node := range n.live() {
		histogram[node.core.activeView.len()]++
	}
	return histogram
}

// checkInvariants verifies each live core's local invariants.
func (n *testNet) checkInvariants() {
	n.t.Helper()
	for _, node := range n.live() {
		if err := node.core.checkInvariants(); err != nil {
			n.t.Fatalf("node %s: %v", node.info, err)
		}
	}
}
