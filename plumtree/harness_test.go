package plumtree

import (
	"container/heap"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/wire"
)

// This file is a deterministic virtual-time simulator for Plumtree cores: N
// cores on a fixed random graph, a message queue with seeded per-message
// latency and per-link FIFO order (as TCP gives), a drop hook, and node
// failures. Every message goes through the real wire codec, so the byte
// counts are those of the real encoding.

var simEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// simOptions configures a simulated network.
type simOptions struct {
	nodes  int
	degree int // target degree of the random graph (at least 2)
	seed   uint64
	// minLatency and maxLatency bound the one-way latency of a message
	// (uniform); defaults 5 ms and 15 ms.
	minLatency, maxLatency time.Duration
	// config adjusts each node's Config (Self is already set).
	config func(i int, cfg *Config)
	// drop, when set, decides whether a message is lost.
	drop func(net *simNetwork, from, to int, msg any) bool
}

type simNode struct {
	index int
	info  peer.Info
	core  *Core
	alive bool
	// tickAt is the time of the pending tick event, when tickScheduled.
	tickAt        time.Time
	tickScheduled bool
}

type simEvent struct {
	at       time.Time
	seq      uint64
	node     int
	from     int // -1 for a tick
	msg      any
	isTick   bool
	tickTime time.Time
}

type simEventHeap []*simEvent

func (h simEventHeap) Len() int { return len(h) }
func (h simEventHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h simEventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *simEventHeap) Push(x any)   { *h = append(*h, x.(*simEvent)) }
func (h *simEventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// simDelivery records one Deliver output.
type simDelivery struct {
	node int
	hops int
	at   time.Time
}

// simMessageStats counts the traffic caused by one broadcast message.
type simMessageStats struct {
	origin      int
	broadcastAt time.Time
	payloadSent int // GOSSIP messages sent carrying this message
	deliveries  []simDelivery
}

// simTB is what the simulator needs of a test: *testing.T, *testing.B and
// *rapid.T all qualify.
type simTB interface {
	Helper()
	Fatalf(format string, args ...any)
}

type simNetwork struct {
	tb     simTB
	opts   simOptions
	rng    *rand.Rand
	now    time.Time
	nodes  []*simNode
	byID   map[peer.ID]int
	adj    [][]int
	events simEventHeap
	seq    uint64
	// linkFree is when the link from→to has delivered its last message, for
	// FIFO order.
	linkFree map[[2]int]time.Time

	messages map[MessageID]*simMessageStats
	// deliveredTo counts deliveries per (node, message): exactly once is 1.
	deliveredTo map[simKey]int

	sentByType  map[string]int
	bytesByType map[string]int
	dropped     int
	processed   int
}

type simKey struct {
	node int
	id   MessageID
}

func simInfo(i int) peer.Info {
	return peer.Info{ID: peer.ID(sha256.Sum256([]byte("node-" + strconv.Itoa(i)))), Addr: "10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256) + ":7946"}
}

// newSimNetwork builds the nodes and a random graph: a ring (so the graph is
// connected) plus random pairings up to the target degree, then steps every
// node with NeighborUp for each of its neighbours.
func newSimNetwork(tb simTB, opts simOptions) *simNetwork {
	tb.Helper()
	if opts.degree < 2 {
		opts.degree = 2
	}
	if opts.minLatency == 0 && opts.maxLatency == 0 {
		opts.minLatency, opts.maxLatency = 5*time.Millisecond, 15*time.Millisecond
	}
	net := &simNetwork{
		tb:          tb,
		opts:        opts,
		rng:         rand.New(rand.NewPCG(opts.seed, 0x9e3779b97f4a7c15)),
		now:         simEpoch,
		byID:        make(map[peer.ID]int),
		adj:         make([][]int, opts.nodes),
		linkFree:    make(map[[2]int]time.Time),
		messages:    make(map[MessageID]*simMessageStats),
		deliveredTo: make(map[simKey]int),
		sentByType:  make(map[string]int),
		bytesByType: make(map[string]int),
	}
	for i := range opts.nodes {
		cfg := Config{Self: simInfo(i), Seed: opts.seed + uint64(i)}
		if opts.config != nil {
			opts.config(i, &cfg)
		}
		core, err := New(cfg)
		if err != nil {
			tb.Fatalf("node %d: %v", i, err)
		}
		net.nodes = append(net.nodes, &simNode{index: i, info: cfg.Self, core: core, alive: true})
		net.byID[cfg.Self.ID] = i
	}
	net.buildGraph()
	for i, neighbours := range net.adj {
		for _, j := range neighbours {
			net.step(i, NeighborUp{Peer: net.nodes[j].info})
		}
	}
	return net
}

func (net *simNetwork) linked(i, j int) bool {
	for _, k := range net.adj[i] {
		if k == j {
			return true
		}
	}
	return false
}

func (net *simNetwork) link(i, j int) {
	net.adj[i] = append(net.adj[i], j)
	net.adj[j] = append(net.adj[j], i)
}

func (net *simNetwork) buildGraph() {
	n := net.opts.nodes
	if n < 2 {
		return
	}
	for i := range n {
		j := (i + 1) % n
		if i != j && !net.linked(i, j) {
			net.link(i, j)
		}
	}
	var stubs []int
	for i := range n {
		for range net.opts.degree - 2 {
			stubs = append(stubs, i)
		}
	}
	net.rng.Shuffle(len(stubs), func(a, b int) { stubs[a], stubs[b] = stubs[b], stubs[a] })
	for k := 0; k+1 < len(stubs); k += 2 {
		i, j := stubs[k], stubs[k+1]
		if i != j && !net.linked(i, j) {
			net.link(i, j)
		}
	}
}

// step feeds input to node i at the current time and handles its outputs.
func (net *simNetwork) step(i int, input any) {
	node := net.nodes[i]
	if !node.alive {
		return
	}
	node.core.Step(net.now, input)
	for _, out := range node.core.Drain(nil) {
		switch out := out.(type) {
		case overlay.Send:
			net.send(i, out)
		case RelayToRoot:
			// A direct connection to the root, as the host would dial.
			net.sendOn(i, overlay.Send{To: net.nodes[net.byID[out.Root]].info, Msg: out.Msg}, true)
		case Deliver:
			key := simKey{node: i, id: out.ID}
			net.deliveredTo[key]++
			if stats := net.messages[out.ID]; stats != nil {
				stats.deliveries = append(stats.deliveries, simDelivery{node: i, hops: out.Hops, at: net.now})
			}
		default:
			net.tb.Fatalf("node %d: unexpected output %T", i, out)
		}
	}
	if deadline, ok := node.core.NextDeadline(); ok {
		if deadline.Before(net.now) {
			deadline = net.now
		}
		if !node.tickScheduled || deadline.Before(node.tickAt) {
			node.tickScheduled = true
			node.tickAt = deadline
			net.push(&simEvent{at: deadline, node: i, from: -1, isTick: true, tickTime: deadline})
		}
	}
}

func (net *simNetwork) push(e *simEvent) {
	net.seq++
	e.seq = net.seq
	heap.Push(&net.events, e)
}

func (net *simNetwork) send(from int, out overlay.Send) { net.sendOn(from, out, false) }

// sendOn sends over the link between from and out.To, or over a direct
// connection when direct (the relay to the root).
func (net *simNetwork) sendOn(from int, out overlay.Send, direct bool) {
	to, ok := net.byID[out.To.ID]
	if !ok {
		net.tb.Fatalf("node %d sent to unknown peer %v", from, out.To)
	}
	if !direct && !net.linked(from, to) {
		net.tb.Fatalf("node %d sent %T to %d, which is not its neighbour", from, out.Msg, to)
	}
	data, err := wire.Marshal(out.Msg)
	if err != nil {
		net.tb.Fatalf("node %d: marshal %T: %v", from, out.Msg, err)
	}
	kind := fmt.Sprintf("%T", out.Msg)
	net.sentByType[kind]++
	net.bytesByType[kind] += wire.FrameHeaderLen + len(data)
	if g, ok := out.Msg.(*Gossip); ok {
		if stats := net.messages[g.ID]; stats != nil {
			stats.payloadSent++
		}
	}
	if net.opts.drop != nil && net.opts.drop(net, from, to, out.Msg) {
		net.dropped++
		return
	}
	decoded, err := wire.Unmarshal(data)
	if err != nil {
		net.tb.Fatalf("node %d: unmarshal %T: %v", from, out.Msg, err)
	}
	latency := net.opts.minLatency
	if spread := net.opts.maxLatency - net.opts.minLatency; spread > 0 {
		latency += time.Duration(net.rng.Int64N(int64(spread)))
	}
	at := net.now.Add(latency)
	link := [2]int{from, to}
	if free := net.linkFree[link]; at.Before(free) {
		at = free
	}
	net.linkFree[link] = at
	net.push(&simEvent{at: at, node: to, from: from, msg: decoded})
}

// run processes events until none is left or limit virtual time has passed.
func (net *simNetwork) run(limit time.Duration) {
	end := net.now.Add(limit)
	for net.events.Len() > 0 {
		e := net.events[0]
		if e.at.After(end) {
			net.now = end
			return
		}
		heap.Pop(&net.events)
		net.now = e.at
		net.processed++
		node := net.nodes[e.node]
		if e.isTick {
			if !node.tickScheduled || !node.tickAt.Equal(e.tickTime) {
				continue // superseded by an earlier tick
			}
			node.tickScheduled = false
			net.step(e.node, overlay.Tick{})
			continue
		}
		if !node.alive {
			continue
		}
		net.step(e.node, overlay.Received{From: net.nodes[e.from].info, Msg: e.msg})
	}
}

// settle runs until the network is quiet (no message or timer pending).
func (net *simNetwork) settle() { net.run(time.Hour) }

// broadcast makes node i broadcast payload with the given ID, or with a
// seeded random one (as a content hash would be) when id is zero, and returns
// the message ID. Generated IDs are covered by the core's unit tests.
func (net *simNetwork) broadcast(i int, id MessageID, payload []byte) MessageID {
	net.tb.Helper()
	if id.IsZero() {
		id = net.randomMessageID()
	}
	if _, ok := net.messages[id]; !ok {
		net.messages[id] = &simMessageStats{origin: i, broadcastAt: net.now}
	}
	net.step(i, Broadcast{ID: id, Payload: payload})
	return id
}

// randomMessageID returns a seeded random ID, as a content hash would be.
func (net *simNetwork) randomMessageID() MessageID {
	var id MessageID
	for k := 0; k < MessageIDLen; k += 8 {
		v := net.rng.Uint64()
		for b := range 8 {
			id[k+b] = byte(v >> (8 * b))
		}
	}
	return id
}

// kill stops node i and tells its live neighbours, as the membership overlay
// would once their TCP connections to it broke.
func (net *simNetwork) kill(i int) {
	net.nodes[i].alive = false
	for _, j := range net.adj[i] {
		net.step(j, NeighborDown{Peer: net.nodes[i].info.ID})
	}
}

// reachable returns the live nodes connected to source through live nodes.
func (net *simNetwork) reachable(source int) map[int]bool {
	seen := map[int]bool{source: true}
	queue := []int{source}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		for _, j := range net.adj[i] {
			if net.nodes[j].alive && !seen[j] {
				seen[j] = true
				queue = append(queue, j)
			}
		}
	}
	return seen
}

// liveNodes returns the indices of the nodes alive.
func (net *simNetwork) liveNodes() []int {
	var out []int
	for _, n := range net.nodes {
		if n.alive {
			out = append(out, n.index)
		}
	}
	return out
}

// broadcastReport summarises the dissemination of one message.
type broadcastReport struct {
	receivers     int     // nodes that should get it (reachable, not the origin)
	delivered     int     // receivers that delivered it
	duplicates    int     // deliveries beyond the first at some node
	payloads      int     // GOSSIP transmissions
	rmr           float64 // payloads/(receivers) - 1
	maxHops       int
	lastDelivery  time.Duration
	deliveryRatio float64
}

func (net *simNetwork) report(id MessageID) broadcastReport {
	stats := net.messages[id]
	if stats == nil {
		net.tb.Fatalf("no record of message %v", id)
	}
	targets := net.reachable(stats.origin)
	var r broadcastReport
	r.receivers = len(targets) - 1
	r.payloads = stats.payloadSent
	for node := range targets {
		if node == stats.origin {
			if c := net.deliveredTo[simKey{node: node, id: id}]; c != 0 {
				r.duplicates += c
			}
			continue
		}
		c := net.deliveredTo[simKey{node: node, id: id}]
		if c > 0 {
			r.delivered++
			r.duplicates += c - 1
		}
	}
	for _, d := range stats.deliveries {
		r.maxHops = max(r.maxHops, d.hops)
		r.lastDelivery = max(r.lastDelivery, d.at.Sub(stats.broadcastAt))
	}
	if r.receivers > 0 {
		r.rmr = float64(r.payloads)/float64(r.receivers) - 1
		r.deliveryRatio = float64(r.delivered) / float64(r.receivers)
	}
	return r
}
