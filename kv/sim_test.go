package kv

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

// This file runs clusters of stores on the simulator's engine (package
// sim/engine), with a virtual clock. Broadcast is modelled as one copy to
// every node reachable from the sender when it broadcasts, each copy lost
// with a seeded probability (engine.Config.Drop); direct (anti-entropy)
// messages go through the wire codec and arrive after a seeded latency if
// the receiver is still reachable. Partitions split the nodes into groups
// (Sim.Partition); a crash (Sim.Kill) drops a node's state but its Memory
// backend, and a restart (Sim.Restart) creates a new core over that
// backend. Each node's physical clock is off by a seeded skew
// (Sim.SetClockSkew). Neighbour events follow a fixed random overlay graph:
// a link is up while both ends are up and in the same group.

type simParams struct {
	nodes          int
	extraLinks     int // random links per node on top of a ring
	seed           uint64
	writePhase     time.Duration
	writeInterval  time.Duration // mean time between writes
	keys           int
	loss           float64 // per-copy broadcast loss
	partitionEvery time.Duration
	crashEvery     time.Duration
	interval       time.Duration // AntiEntropyInterval
	maxSkew        time.Duration // physical clock offsets in [-maxSkew, maxSkew]
}

type simNode struct {
	index    int
	info     peer.Info
	backend  *Memory
	store    *Store
	group    int
	links    []int        // overlay neighbours
	linkUp   map[int]bool // neighbours the current core was told are up
	restarts int
}

// broadcastCopy is one node's copy of a Broadcast, handed to its store as
// FromBroadcast.
type broadcastCopy struct{ payload []byte }

// encodedMessage is a direct message as it travels: its wire encoding.
type encodedMessage struct{ data []byte }

// storeCore is what the engine runs for a node: its Store, driven as the
// runtime drives it (Persist written to the backend before the outputs go
// out), with broadcasts fanned out to the reachable nodes and direct
// messages encoded on the way out and decoded on the way in.
type storeCore struct {
	c    *cluster
	node *simNode
}

func (w storeCore) Step(now time.Time, input any) {
	if r, ok := input.(overlay.Received); ok {
		switch msg := r.Msg.(type) {
		case broadcastCopy:
			input = FromBroadcast{From: r.From, Payload: msg.payload}
		case encodedMessage:
			decoded, err := wire.Unmarshal(msg.data)
			if err != nil {
				w.c.t.Fatalf("unmarshal: %v", err)
			}
			w.c.stats.directDelivered++
			input = overlay.Received{From: r.From, Msg: decoded}
		}
	}
	w.node.store.Step(now, input)
}

func (w storeCore) Drain(dst []any) []any {
	for _, out := range drain(w.node.store) {
		switch o := out.(type) {
		case overlay.Send:
			w.c.stats.direct++
			data, err := wire.Marshal(o.Msg)
			if err != nil {
				w.c.t.Fatalf("marshal %T: %v", o.Msg, err)
			}
			dst = append(dst, overlay.Send{To: o.To, Msg: encodedMessage{data: data}})
		case Broadcast:
			w.c.stats.broadcasts++
			for _, to := range w.c.nodes {
				if to != w.node && w.c.sim.Reachable(w.node.index, to.index) {
					dst = append(dst, overlay.Send{To: to.info, Msg: broadcastCopy{payload: o.Payload}})
				}
			}
		default:
			dst = append(dst, out)
		}
	}
	return dst
}

func (w storeCore) NextDeadline() (time.Time, bool) { return w.node.store.NextDeadline() }

// ackedWrite is a write whose Result reported success: the history checker
// requires that it survives unless a later write to its key superseded it.
type ackedWrite struct {
	node   int
	record Record
}

type cluster struct {
	t     *testing.T
	p     simParams
	sim   *engine.Sim
	rng   *rand.Rand // the engine's scenario source
	nodes []*simNode
	acked []ackedWrite
	reqID uint64
	stats struct {
		broadcasts, lost, direct, directDelivered, writes, refused, crashes, partitions int
	}
	healed  time.Time
	settled time.Time
}

func newCluster(t *testing.T, p simParams) *cluster {
	c := &cluster{t: t, p: p}
	sim, err := engine.New(engine.Config{
		Seed:     p.seed,
		Epoch:    epoch,
		Latency:  engine.UniformLatency(2*time.Millisecond, 41*time.Millisecond),
		Observer: c.observe,
		Drop: func(_ time.Time, _, _ int, msg any) bool {
			if _, ok := msg.(broadcastCopy); ok && c.rng.Float64() < c.p.loss {
				c.stats.lost++
				return true
			}
			return false
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	c.sim, c.rng = sim, sim.Rand()
	for i := range p.nodes {
		n := &simNode{index: i, backend: NewMemory()}
		if _, err := sim.AddNodeWithKey(testKey(i), func(id engine.Identity) (overlay.Core, error) {
			n.info = id.Info
			return c.newCore(n, id.Seed)
		}); err != nil {
			t.Fatal(err)
		}
		sim.SetClockSkew(i, time.Duration(c.rng.Int64N(int64(2*p.maxSkew)+1))-p.maxSkew)
		c.nodes = append(c.nodes, n)
	}
	link := func(a, b int) {
		if a != b && !slices.Contains(c.nodes[a].links, b) {
			c.nodes[a].links = append(c.nodes[a].links, b)
			c.nodes[b].links = append(c.nodes[b].links, a)
		}
	}
	for i := range p.nodes {
		link(i, (i+1)%p.nodes)
		for range p.extraLinks {
			link(i, c.rng.IntN(p.nodes))
		}
	}
	for _, n := range c.nodes {
		sim.Step(n.index, overlay.Tick{})
	}
	c.updateLinks()
	return c
}

// newCore starts a store for node n over its backend.
func (c *cluster) newCore(n *simNode, seed uint64) (overlay.Core, error) {
	store, err := New(Config{
		Key:                 testKey(n.index),
		Backend:             n.backend,
		Seed:                seed,
		AntiEntropyInterval: c.p.interval,
	})
	if err != nil {
		return nil, err
	}
	n.store, n.linkUp = store, map[int]bool{}
	return storeCore{c: c, node: n}, nil
}

// observe handles the stores' outputs that are not network traffic.
func (c *cluster) observe(_ time.Time, i int, out any) {
	switch o := out.(type) {
	case Result:
		if o.Err == nil {
			c.acked = append(c.acked, ackedWrite{node: i, record: o.Record})
		} else {
			c.stats.refused++
		}
	case Changed, Persist:
	default:
		c.t.Fatalf("unexpected output %T", out)
	}
}

func (c *cluster) up(n *simNode) bool { return c.sim.Alive(n.index) }

// updateLinks tells every core about links that went up or down.
func (c *cluster) updateLinks() {
	for _, n := range c.nodes {
		if !c.up(n) {
			continue
		}
		for _, j := range n.links {
			other := c.nodes[j]
			if up := c.sim.Reachable(n.index, j); up != n.linkUp[j] {
				n.linkUp[j] = up
				if up {
					c.sim.Step(n.index, NeighborUp{Peer: other.info})
				} else {
					c.sim.Step(n.index, NeighborDown{Peer: other.info.ID})
				}
			}
		}
	}
}

// write issues a random Put or Delete on a random up node.
func (c *cluster) write() {
	up := c.sim.LiveNodes()
	if len(up) == 0 {
		return
	}
	n := c.nodes[up[c.rng.IntN(len(up))]]
	key := fmt.Sprintf("cfg/%02d", c.rng.IntN(c.p.keys))
	c.reqID++
	c.stats.writes++
	if c.rng.IntN(5) == 0 {
		c.sim.Step(n.index, Delete{ReqID: c.reqID, Key: key})
	} else {
		c.sim.Step(n.index, Put{ReqID: c.reqID, Key: key, Value: fmt.Appendf(nil, "w%d@%d", c.reqID, n.index)})
	}
}

// partition splits the nodes into 1 to 3 random groups (1 heals).
func (c *cluster) partition() {
	c.stats.partitions++
	groups := 1 + c.rng.IntN(3)
	members := make([][]int, groups-1) // group 0 is the nodes named in none
	for _, n := range c.nodes {
		n.group = c.rng.IntN(groups)
		if n.group > 0 {
			members[n.group-1] = append(members[n.group-1], n.index)
		}
	}
	c.sim.Partition(members...)
	c.updateLinks()
}

// crash takes a random up node down for 3 to 15 seconds, then restarts it
// with a new core over the same backend.
func (c *cluster) crash() {
	n := c.nodes[c.rng.IntN(len(c.nodes))]
	if !c.up(n) {
		return
	}
	c.stats.crashes++
	c.sim.Kill(n.index)
	n.store = nil
	c.updateLinks()
	// Peers see their links to n go down.
	for _, j := range n.links {
		other := c.nodes[j]
		if c.up(other) && other.linkUp[n.index] {
			other.linkUp[n.index] = false
			c.sim.Step(j, NeighborDown{Peer: n.info.ID})
		}
	}
	downFor := time.Duration(3+c.rng.IntN(13)) * time.Second
	c.sim.After(downFor, func() {
		if c.healed.IsZero() || c.sim.Now().Before(c.healed) {
			c.restart(n)
		}
	})
}

func (c *cluster) restart(n *simNode) {
	if c.up(n) {
		return
	}
	n.restarts++
	err := c.sim.Restart(n.index, func(id engine.Identity) (overlay.Core, error) {
		return c.newCore(n, id.Seed+uint64(n.restarts))
	})
	if err != nil {
		c.t.Fatal(err)
	}
	c.sim.Step(n.index, overlay.Tick{})
	c.updateLinks()
}

// run drives the scenario: the write phase with faults, then healing, then
// quiet until every digest agrees. It returns how long after the heal the
// cluster took to agree.
func (c *cluster) run(settleLimit time.Duration) time.Duration {
	end := epoch.Add(c.p.writePhase)
	now := c.sim.Now
	var scheduleWrite, schedulePartition, scheduleCrash func()
	scheduleWrite = func() {
		c.sim.After(time.Duration(c.rng.Int64N(int64(2*c.p.writeInterval))), func() {
			if now().Before(end) {
				c.write()
				scheduleWrite()
			}
		})
	}
	schedulePartition = func() {
		c.sim.After(c.p.partitionEvery, func() {
			if now().Before(end) {
				c.partition()
				schedulePartition()
			}
		})
	}
	scheduleCrash = func() {
		c.sim.After(time.Duration(c.rng.Int64N(int64(2*c.p.crashEvery))), func() {
			if now().Before(end) {
				c.crash()
				scheduleCrash()
			}
		})
	}
	scheduleWrite()
	if c.p.partitionEvery > 0 {
		schedulePartition()
	}
	if c.p.crashEvery > 0 {
		scheduleCrash()
	}
	c.sim.At(end, func() {
		c.healed = now()
		for _, n := range c.nodes {
			n.group = 0
		}
		c.sim.Heal()
		for _, n := range c.nodes {
			c.restart(n)
		}
		c.updateLinks()
	})
	if !c.sim.RunUntilCond(end.Add(settleLimit), func() bool { return !c.healed.IsZero() && c.converged() }) {
		return -1
	}
	c.settled = now()
	return c.settled.Sub(c.healed)
}

func (c *cluster) converged() bool {
	for _, n := range c.nodes {
		if !c.up(n) {
			return false
		}
	}
	want := c.nodes[0].store.Digest()
	for _, n := range c.nodes[1:] {
		if n.store.Digest() != want {
			return false
		}
	}
	return true
}

// checkHistory verifies the final state against the acknowledged writes:
// every node holds, for every key, exactly the acknowledged write with the
// greatest version, so no acknowledged write was lost unless a later write
// to the same key superseded it, and nothing unacknowledged appeared.
func (c *cluster) checkHistory() {
	latest := map[string]Record{}
	for _, w := range c.acked {
		if cur, ok := latest[w.record.Key]; !ok || w.record.Supersedes(cur) {
			latest[w.record.Key] = w.record
		}
	}
	for _, n := range c.nodes {
		checkInvariants(c.t, n.store)
		held := 0
		n.backend.Scan("", func(rec Record) bool {
			held++
			want, ok := latest[rec.Key]
			if !ok {
				c.t.Errorf("node %d holds %q, never written", n.index, rec.Key)
			} else if rec.Version != want.Version || rec.Deleted != want.Deleted || string(rec.Value) != string(want.Value) {
				c.t.Errorf("node %d key %q = %v %q, want the last acknowledged write %v %q", n.index, rec.Key, rec.Version, rec.Value, want.Version, want.Value)
			}
			return true
		})
		if held != len(latest) {
			c.t.Errorf("node %d holds %d keys, %d were written", n.index, held, len(latest))
		}
	}
	for _, w := range c.acked {
		for _, n := range c.nodes {
			rec, found, _ := n.backend.Get(w.record.Key)
			if !found || rec.Version.Compare(w.record.Version) < 0 {
				c.t.Fatalf("node %d lost acknowledged write %q %v", n.index, w.record.Key, w.record.Version)
			}
		}
	}
}

// runClusterScenario runs a seeded scenario and checks convergence within
// maxRounds anti-entropy intervals of the heal, and the history.
func runClusterScenario(t *testing.T, p simParams, maxRounds int) {
	c := newCluster(t, p)
	settle := c.run(time.Duration(maxRounds) * p.interval)
	var rounds, bytes, repaired uint64
	for _, n := range c.nodes {
		st := n.store.Stats()
		rounds += st.AntiEntropyRounds
		bytes += st.AntiEntropyBytes
		repaired += st.RecordsRepaired
	}
	t.Logf("%d nodes: %d writes (%d acknowledged, %d refused), %d partitions, %d crashes, %d broadcasts (%d copies lost), %d direct messages (%d lost)",
		p.nodes, c.stats.writes, len(c.acked), c.stats.refused, c.stats.partitions, c.stats.crashes, c.stats.broadcasts, c.stats.lost, c.stats.direct, c.stats.direct-c.stats.directDelivered)
	t.Logf("since the last restart of each core: %d anti-entropy rounds, %d bytes, %d records repaired", rounds, bytes, repaired)
	if settle < 0 {
		t.Fatalf("digests still differ %d anti-entropy intervals (%v) after the heal", maxRounds, time.Duration(maxRounds)*p.interval)
	}
	t.Logf("identical stores %v after the heal (%.1f anti-entropy intervals)", settle, float64(settle)/float64(p.interval))
	c.checkHistory()
}
