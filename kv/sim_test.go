package kv

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

// This file is a deterministic virtual-time harness for clusters of stores.
// Broadcast is modelled as delivery to every node reachable from the sender
// when it broadcasts, each copy lost with a seeded probability; direct
// (anti-entropy) messages arrive after a seeded latency if the receiver is
// still reachable. Partitions split the nodes into groups; a crash drops a
// node's state but its Memory backend, and a restart creates a new core over
// that backend. Neighbour events follow a fixed random overlay graph: a link
// is up while both ends are up and in the same group.

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
	up       bool
	group    int
	skew     time.Duration
	links    []int        // overlay neighbours
	linkUp   map[int]bool // neighbours the current core was told are up
	tickAt   time.Time    // scheduled tick, virtual time
	tickGen  uint64       // invalidates stale tick events
	restarts int
}

type simEvent struct {
	at  time.Time
	seq uint64
	do  func()
}

type eventQueue []*simEvent

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*simEvent)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// ackedWrite is a write whose Result reported success: the history checker
// requires that it survives unless a later write to its key superseded it.
type ackedWrite struct {
	node   int
	record Record
}

type cluster struct {
	t       *testing.T
	p       simParams
	rng     *rand.Rand
	now     time.Time
	seq     uint64
	queue   eventQueue
	nodes   []*simNode
	byID    map[peer.ID]int
	acked   []ackedWrite
	reqID   uint64
	stats   struct{ broadcasts, lost, direct, directLost, writes, refused, crashes, partitions int }
	healed  time.Time
	settled time.Time
}

func newCluster(t *testing.T, p simParams) *cluster {
	c := &cluster{t: t, p: p, rng: rand.New(rand.NewPCG(p.seed, p.seed+1)), now: epoch, byID: map[peer.ID]int{}}
	for i := range p.nodes {
		n := &simNode{index: i, info: testInfo(i), backend: NewMemory(), up: true}
		n.skew = time.Duration(c.rng.Int64N(int64(2*p.maxSkew)+1)) - p.maxSkew
		c.nodes = append(c.nodes, n)
		c.byID[n.info.ID] = i
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
		c.boot(n)
	}
	c.updateLinks()
	return c
}

func (c *cluster) at(when time.Time, do func()) {
	c.seq++
	heap.Push(&c.queue, &simEvent{at: when, seq: c.seq, do: do})
}

// physical returns node n's reading of its physical clock.
func (c *cluster) physical(n *simNode) time.Time { return c.now.Add(n.skew) }

func (c *cluster) boot(n *simNode) {
	store, err := New(Config{
		Key:                 testKey(n.index),
		Backend:             n.backend,
		Seed:                c.rng.Uint64(),
		AntiEntropyInterval: c.p.interval,
	})
	if err != nil {
		c.t.Fatalf("boot node %d: %v", n.index, err)
	}
	n.store, n.up, n.linkUp = store, true, map[int]bool{}
	c.step(n, overlay.Tick{})
}

func (c *cluster) reachable(a, b *simNode) bool { return a.up && b.up && a.group == b.group }

// updateLinks tells every core about links that went up or down.
func (c *cluster) updateLinks() {
	for _, n := range c.nodes {
		if !n.up {
			continue
		}
		for _, j := range n.links {
			other := c.nodes[j]
			if up := c.reachable(n, other); up != n.linkUp[j] {
				n.linkUp[j] = up
				if up {
					c.step(n, NeighborUp{Peer: other.info})
				} else {
					c.step(n, NeighborDown{Peer: other.info.ID})
				}
			}
		}
	}
}

// step feeds an input to a node and routes its outputs.
func (c *cluster) step(n *simNode, input any) {
	n.store.Step(c.physical(n), input)
	for _, out := range drain(n.store) {
		switch o := out.(type) {
		case overlay.Send:
			c.sendDirect(n, o)
		case Broadcast:
			c.broadcast(n, o.Payload)
		case Result:
			if o.Err == nil {
				c.acked = append(c.acked, ackedWrite{node: n.index, record: o.Record})
			} else {
				c.stats.refused++
			}
		case Changed, Persist:
		default:
			c.t.Fatalf("unexpected output %T", out)
		}
	}
	if deadline, ok := n.store.NextDeadline(); ok {
		virtual := deadline.Add(-n.skew)
		if !virtual.Equal(n.tickAt) {
			n.tickAt = virtual
			n.tickGen++
			gen, store := n.tickGen, n.store
			c.at(virtual, func() {
				if n.up && n.store == store && n.tickGen == gen {
					c.step(n, overlay.Tick{})
				}
			})
		}
	}
}

func (c *cluster) latency() time.Duration {
	return time.Duration(2+c.rng.IntN(40)) * time.Millisecond
}

func (c *cluster) sendDirect(from *simNode, send overlay.Send) {
	c.stats.direct++
	data, err := wire.Marshal(send.Msg)
	if err != nil {
		c.t.Fatalf("marshal %T: %v", send.Msg, err)
	}
	to := c.nodes[c.byID[send.To.ID]]
	c.at(c.now.Add(c.latency()), func() {
		if !c.reachable(from, to) {
			c.stats.directLost++
			return
		}
		msg, err := wire.Unmarshal(data)
		if err != nil {
			c.t.Fatalf("unmarshal: %v", err)
		}
		c.step(to, overlay.Received{From: from.info, Msg: msg})
	})
}

func (c *cluster) broadcast(from *simNode, payload []byte) {
	c.stats.broadcasts++
	for _, to := range c.nodes {
		if to == from || !c.reachable(from, to) {
			continue
		}
		if c.rng.Float64() < c.p.loss {
			c.stats.lost++
			continue
		}
		store := to.store
		c.at(c.now.Add(c.latency()), func() {
			if to.up && to.store == store {
				c.step(to, FromBroadcast{From: from.info, Payload: payload})
			}
		})
	}
}

// write issues a random Put or Delete on a random up node.
func (c *cluster) write() {
	var up []*simNode
	for _, n := range c.nodes {
		if n.up {
			up = append(up, n)
		}
	}
	if len(up) == 0 {
		return
	}
	n := up[c.rng.IntN(len(up))]
	key := fmt.Sprintf("cfg/%02d", c.rng.IntN(c.p.keys))
	c.reqID++
	c.stats.writes++
	if c.rng.IntN(5) == 0 {
		c.step(n, Delete{ReqID: c.reqID, Key: key})
	} else {
		c.step(n, Put{ReqID: c.reqID, Key: key, Value: fmt.Appendf(nil, "w%d@%d", c.reqID, n.index)})
	}
}

// partition splits the nodes into 1 to 3 random groups (1 heals).
func (c *cluster) partition() {
	c.stats.partitions++
	groups := 1 + c.rng.IntN(3)
	for _, n := range c.nodes {
		n.group = c.rng.IntN(groups)
	}
	c.updateLinks()
}

// crash takes a random up node down for 3 to 15 seconds, then restarts it
// with a new core over the same backend.
func (c *cluster) crash() {
	n := c.nodes[c.rng.IntN(len(c.nodes))]
	if !n.up {
		return
	}
	c.stats.crashes++
	n.up, n.store = false, nil
	c.updateLinks()
	// Peers see their links to n go down.
	for _, j := range n.links {
		other := c.nodes[j]
		if other.up && other.linkUp[n.index] {
			other.linkUp[n.index] = false
			c.step(other, NeighborDown{Peer: n.info.ID})
		}
	}
	downFor := time.Duration(3+c.rng.IntN(13)) * time.Second
	c.at(c.now.Add(downFor), func() {
		if c.healed.IsZero() || c.now.Before(c.healed) {
			c.restart(n)
		}
	})
}

func (c *cluster) restart(n *simNode) {
	if n.up {
		return
	}
	n.restarts++
	c.boot(n)
	c.updateLinks()
}

// run drives the scenario: the write phase with faults, then healing, then
// quiet until every digest agrees. It returns how long after the heal the
// cluster took to agree.
func (c *cluster) run(settleLimit time.Duration) time.Duration {
	end := epoch.Add(c.p.writePhase)
	var scheduleWrite, schedulePartition, scheduleCrash func()
	scheduleWrite = func() {
		c.at(c.now.Add(time.Duration(c.rng.Int64N(int64(2*c.p.writeInterval)))), func() {
			if c.now.Before(end) {
				c.write()
				scheduleWrite()
			}
		})
	}
	schedulePartition = func() {
		c.at(c.now.Add(c.p.partitionEvery), func() {
			if c.now.Before(end) {
				c.partition()
				schedulePartition()
			}
		})
	}
	scheduleCrash = func() {
		c.at(c.now.Add(time.Duration(c.rng.Int64N(int64(2*c.p.crashEvery)))), func() {
			if c.now.Before(end) {
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
	c.at(end, func() {
		c.healed = c.now
		for _, n := range c.nodes {
			n.group = 0
		}
		for _, n := range c.nodes {
			c.restart(n)
		}
		c.updateLinks()
	})
	deadline := end.Add(settleLimit)
	for c.queue.Len() > 0 {
		e := heap.Pop(&c.queue).(*simEvent)
		if e.at.After(deadline) {
			break
		}
		c.now = e.at
		e.do()
		if !c.healed.IsZero() && c.converged() {
			c.settled = c.now
			return c.settled.Sub(c.healed)
		}
	}
	return -1
}

func (c *cluster) converged() bool {
	want := c.nodes[0].store.Digest()
	for _, n := range c.nodes[1:] {
		if !n.up || n.store.Digest() != want {
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
		p.nodes, c.stats.writes, len(c.acked), c.stats.refused, c.stats.partitions, c.stats.crashes, c.stats.broadcasts, c.stats.lost, c.stats.direct, c.stats.directLost)
	t.Logf("since the last restart of each core: %d anti-entropy rounds, %d bytes, %d records repaired", rounds, bytes, repaired)
	if settle < 0 {
		t.Fatalf("digests still differ %d anti-entropy intervals (%v) after the heal", maxRounds, time.Duration(maxRounds)*p.interval)
	}
	t.Logf("identical stores %v after the heal (%.1f anti-entropy intervals)", settle, float64(settle)/float64(p.interval))
	c.checkHistory()
}
