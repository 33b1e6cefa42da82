package hyparview

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/sim/engine"
	"github.com/p2p-go/p2p/wire"
)

// testNet is a deterministic virtual-time network of cores on the
// simulator's engine (package sim/engine). Messages travel through
// wire.Marshal/Unmarshal with a seeded latency, in FIFO order per ordered
// pair of nodes (as over one TCP connection). Failures are silent
// (engine.Config.SilentFailures): a crashed or cut-off node's peers are
// not told; what they send over a link they asked to keep vanishes, and
// other sends and dials fail with LinkDown after dialTimeout.
type testNet struct {
	t         testing.TB
	sim       *engine.Sim
	rng       *rand.Rand
	now       time.Time // the virtual time, kept in step with the engine's
	nodes     map[peer.ID]*testNode
	order     []*testNode
	configure func(*Config)

	steps    int
	messages map[wire.Type]int // messages delivered, by type
}

type testNode struct {
	index    int
	core     *Core
	info     peer.Info
	alive    bool
	joined   bool
	ups      int
	downs    int
	received map[wire.Type]int
}

// epoch is the virtual time unit tests of single cores start at.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const (
	minLatency  = 5 * time.Millisecond
	maxLatency  = 40 * time.Millisecond
	dialTimeout = 500 * time.Millisecond
)

func newTestNet(t testing.TB, seed uint64) *testNet {
	n := &testNet{
		t:        t,
		nodes:    make(map[peer.ID]*testNode),
		messages: make(map[wire.Type]int),
	}
	sim, err := engine.New(engine.Config{
		Seed:           seed,
		Latency:        engine.UniformLatency(minLatency, maxLatency),
		CountBytes:     true,
		Decode:         true,
		SilentFailures: true,
		DialTimeout:    dialTimeout,
		Observer:       n.observe,
		OnMessage:      n.onMessage,
	})
	if err != nil {
		t.Fatal(err)
	}
	n.sim, n.rng, n.now = sim, sim.Rand(), sim.Now()
	return n
}

// add creates a node (not yet joined).
func (n *testNet) add() *testNode {
	var node *testNode
	_, err := n.sim.AddNode(func(id engine.Identity) (overlay.Core, error) {
		cfg := Config{Self: id.Info, Seed: id.Seed}
		if n.configure != nil {
			n.configure(&cfg)
		}
		core, err := New(cfg)
		if err != nil {
			return nil, err
		}
		node = &testNode{index: id.Index, core: core, info: id.Info, alive: true, received: make(map[wire.Type]int)}
		return core, nil
	})
	if err != nil {
		n.t.Fatalf("add: %v", err)
	}
	n.nodes[node.info.ID] = node
	n.order = append(n.order, node)
	return node
}

// step feeds one input to a node now and routes its outputs.
func (n *testNet) step(node *testNode, input any) {
	if !node.alive {
		return
	}
	n.steps++
	n.sim.Step(node.index, input)
}

// deliverNow hands the messages among outputs, which from's core produced
// outside the network, to their live receivers at once.
func (n *testNet) deliverNow(from *testNode, outputs []any) {
	for _, output := range outputs {
		if send, ok := output.(overlay.Send); ok {
			if to := n.nodes[send.To.ID]; to != nil {
				n.step(to, overlay.Received{From: from.info, Msg: send.Msg})
			}
		}
	}
}

// observe checks and counts the outputs that are not network traffic.
func (n *testNet) observe(_ time.Time, i int, output any) {
	node := n.order[i]
	switch output.(type) {
	case NeighborUp:
		node.ups++
	case NeighborDown:
		node.downs++
	case Joined:
		if node.joined {
			n.t.Errorf("node %s: Joined emitted twice", node.info)
		}
		node.joined = true
	default:
		n.t.Fatalf("node %s: unexpected output %T", node.info, output)
	}
}

// onMessage counts a message handed to its receiver.
func (n *testNet) onMessage(_ time.Time, _, to int, msg any) {
	n.steps++
	code, _ := wire.TypeOf(msg)
	n.messages[code]++
	n.order[to].received[code]++
}

// bytes returns the bytes sent so far (CBOR, frame header and AEAD tag).
func (n *testNet) bytes() int {
	total := 0
	for i := range n.order {
		total += int(n.sim.NodeStats(i).BytesSent)
	}
	return total
}

// run processes events up to and including the given virtual time.
func (n *testNet) run(d time.Duration) {
	n.sim.RunFor(d)
	n.now = n.sim.Now()
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

// isolate cuts node off from every other node, silently.
func (n *testNet) isolate(node *testNode) { n.sim.Partition([]int{node.index}) }

// heal removes the cut.
func (n *testNet) heal() { n.sim.Heal() }

// crash silences node.
func (n *testNet) crash(node *testNode) {
	node.alive = false
	n.sim.Kill(node.index)
}

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
