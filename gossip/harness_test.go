package gossip

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/sim/engine"
)

// testNet is a deterministic network of gossip cores on the simulator's
// engine (package sim/engine), with a virtual clock: messages take a fixed
// latency, links to dead or cut-off nodes fail with LinkDown after one
// round trip, as TCP resets would. The engine is made when the first node
// is added, so a test sets latency and encode before that.
type testNet struct {
	t    *testing.T
	seed uint64
	sim  *engine.Sim
	rand *rand.Rand // the engine's scenario source, once it exists
	now  time.Time  // the engine's clock, kept in step by run

	nodes []*testNode
	byID  map[peer.ID]*testNode

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
}

type testNode struct {
	net   *testNet
	index int
	info  peer.Info
	core  *Core
}

// alive reports whether the node runs.
func (node *testNode) alive() bool { return node.net.sim.Alive(node.index) }

// watchedCore counts, for its network, what its core sends or dials to
// addresses where no node listens; the engine answers those with LinkDown.
type watchedCore struct {
	*Core
	net *testNet
}

func (c watchedCore) Drain(dst []any) []any {
	start := len(dst)
	dst = c.Core.Drain(dst)
	for _, out := range dst[start:] {
		var to peer.Info
		switch out := out.(type) {
		case overlay.Send:
			to = out.To
		case overlay.Connect:
			to = out.Peer
		default:
			continue
		}
		if c.net.lookup(to) == nil {
			c.net.nowhere[to.Addr]++
		}
	}
	return dst
}

func newTestNet(t *testing.T, seed uint64) *testNet {
	return &testNet{
		t:       t,
		seed:    seed,
		now:     engine.DefaultEpoch,
		byID:    map[peer.ID]*testNode{},
		nowhere: map[string]int{},
		latency: 2 * time.Millisecond,
	}
}

// start makes the engine, with the latency and codec the test chose.
func (n *testNet) start() {
	sim, err := engine.New(engine.Config{
		Seed:       n.seed,
		Latency:    engine.FixedLatency(n.latency),
		CountBytes: n.encode,
		Decode:     n.encode,
		Observer: func(_ time.Time, i int, out any) {
			if n.onOutput != nil {
				n.onOutput(n.nodes[i], out)
			}
		},
		Drop: func(_ time.Time, from, to int, msg any) bool {
			return n.drop != nil && n.drop(n.nodes[from], n.nodes[to], msg)
		},
	})
	if err != nil {
		n.t.Fatal(err)
	}
	n.sim, n.rand, n.now = sim, sim.Rand(), sim.Now()
}

// lookup returns the node a peer.Info names (by ID, or by address when the
// ID is zero), or nil.
func (n *testNet) lookup(to peer.Info) *testNode {
	if !to.ID.IsZero() {
		return n.byID[to.ID]
	}
	for _, node := range n.nodes {
		if node.info.Addr == to.Addr {
			return node
		}
	}
	return nil
}

// build returns a core for a node with the engine's identity.
func (n *testNet) build(cfg Config, id engine.Identity, seed uint64) (*Core, error) {
	cfg.Key = id.Key
	cfg.Self = id.Info
	cfg.Seed = seed
	return New(cfg)
}

func (n *testNet) addNode(cfg Config) *testNode {
	if n.sim == nil {
		n.start()
	}
	node := &testNode{net: n}
	_, err := n.sim.AddNode(func(id engine.Identity) (overlay.Core, error) {
		core, err := n.build(cfg, id, id.Seed)
		if err != nil {
			return nil, err
		}
		node.index, node.info, node.core = id.Index, id.Info, core
		return watchedCore{Core: core, net: n}, nil
	})
	if err != nil {
		n.t.Fatal(err)
	}
	n.nodes = append(n.nodes, node)
	n.byID[node.info.ID] = node
	return node
}

// at hands in to node after delay (a message injected from outside).
func (n *testNet) at(delay time.Duration, node int, in any) {
	n.sim.After(delay, func() { n.sim.Step(node, in) })
}

// step feeds one input to a node; the engine routes its outputs.
func (n *testNet) step(node *testNode, in any) { n.sim.Step(node.index, in) }

// run processes events until virtual time reaches now + d.
func (n *testNet) run(d time.Duration) {
	n.sim.RunFor(d)
	n.now = n.sim.Now()
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
func (n *testNet) kill(node *testNode) { n.sim.Kill(node.index) }

// crashQuietly crashes a node without a link reset: nobody is told; what
// is sent or dialled to it fails after one round trip, so only keepalives
// and probes reveal it.
func (n *testNet) crashQuietly(node *testNode) { n.sim.Crash(node.index, engine.CrashRefusing) }

// vanish loses a host without a TCP reset: nobody is told, what is sent to
// it vanishes, and dials neither succeed nor fail.
func (n *testNet) vanish(node *testNode) { n.sim.Crash(node.index, engine.CrashSilent) }

// partition cuts every pair between the two groups, which together must
// hold every node, and breaks their links.
func (n *testNet) partition(a, b []*testNode) {
	if len(a)+len(b) != len(n.nodes) {
		n.t.Fatalf("partition of %d and %d nodes out of %d: every node must be on a side", len(a), len(b), len(n.nodes))
	}
	indices := func(side []*testNode) []int {
		var out []int
		for _, node := range side {
			out = append(out, node.index)
		}
		return out
	}
	n.sim.Partition(indices(a), indices(b))
}

func (n *testNet) heal() { n.sim.Heal() }

func (n *testNet) alive() []*testNode {
	var out []*testNode
	for _, node := range n.nodes {
		if node.alive() {
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
			if next != nil && next.alive() && !seen[next.index] {
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
	err := n.sim.Restart(node.index, func(id engine.Identity) (overlay.Core, error) {
		core, err := n.build(Config{Name: cfg.Name, Tags: cfg.Tags}, id, cfg.Seed+1)
		if err != nil {
			return nil, err
		}
		node.core = core
		return watchedCore{Core: core, net: n}, nil
	})
	if err != nil {
		n.t.Fatal(err)
	}
	n.step(node, join)
}
