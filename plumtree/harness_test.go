package plumtree

import (
	"crypto/sha256"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/sim/engine"
)

// This file runs Plumtree cores on the simulator's engine (package
// sim/engine): N cores on a fixed random graph, seeded per-message latency
// with per-link FIFO order (as TCP gives), a drop hook and node failures.
// Every message goes through the real wire codec (engine.Config.Decode),
// so the byte counts are those of the real encoding. The graph is the
// membership overlay's part: the harness tells cores of links with
// NeighborUp and NeighborDown, and fails the test when a core sends to a
// node that is not its neighbour.

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
	tb    simTB
	opts  simOptions
	sim   *engine.Sim
	rng   *rand.Rand // the engine's scenario source
	now   time.Time  // the engine's clock, kept in step by run and step
	nodes []*simNode
	byID  map[peer.ID]int
	adj   [][]int
	// relaying is set while the harness sends a RelayToRoot over a direct
	// connection, which needs no link of the graph.
	relaying bool

	messages map[MessageID]*simMessageStats
	// deliveredTo counts deliveries per (node, message): exactly once is 1.
	deliveredTo map[simKey]int
	dropped     int
}

type simKey struct {
	node int
	id   MessageID
}

// simInfo is the identity of core unit tests' peers (network nodes get the
// engine's).
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
		byID:        make(map[peer.ID]int),
		messages:    make(map[MessageID]*simMessageStats),
		deliveredTo: make(map[simKey]int),
	}
	sim, err := engine.New(engine.Config{
		Seed:       opts.seed,
		Epoch:      simEpoch,
		Latency:    engine.UniformLatency(opts.minLatency, opts.maxLatency),
		CountBytes: true,
		Decode:     true,
		DeadSilent: true, // a crash is told by the membership overlay (kill)
		Observer:   net.observe,
		Drop:       net.onSend,
	})
	if err != nil {
		tb.Fatalf("engine: %v", err)
	}
	net.sim, net.rng, net.now = sim, sim.Rand(), sim.Now()
	for range opts.nodes {
		net.add()
	}
	net.buildGraph()
	for i, neighbours := range net.adj {
		for _, j := range neighbours {
			net.step(i, NeighborUp{Peer: net.nodes[j].info})
		}
	}
	return net
}

// add creates a node with no link and returns its index.
func (net *simNetwork) add() int {
	net.tb.Helper()
	// The config may give the node a signing key, and the identity that
	// goes with it: the engine then routes by that key's ID.
	i := len(net.nodes)
	key, _, err := engine.DeriveIdentity(net.opts.seed, i)
	if err != nil {
		net.tb.Fatalf("node %d: %v", i, err)
	}
	cfg := Config{Self: peer.Info{ID: key.ID(), Addr: engine.Addr(i)}, Seed: net.opts.seed + uint64(i)}
	if net.opts.config != nil {
		net.opts.config(i, &cfg)
	}
	if cfg.SigningKey != nil {
		key = cfg.SigningKey
	}
	if cfg.Self.ID != key.ID() {
		net.tb.Fatalf("node %d: config gave it ID %s, not its key's", i, cfg.Self.ID)
	}
	index, err := net.sim.AddNodeWithKey(key, func(id engine.Identity) (overlay.Core, error) {
		core, err := New(cfg)
		if err != nil {
			return nil, err
		}
		net.nodes = append(net.nodes, &simNode{index: id.Index, info: cfg.Self, core: core})
		return core, nil
	})
	if err != nil {
		net.tb.Fatalf("%v", err)
	}
	net.byID[net.nodes[index].info.ID] = index
	net.adj = append(net.adj, nil)
	return index
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

// step feeds input to node i at the current time; the engine handles its
// outputs. Stepping a dead node does nothing.
func (net *simNetwork) step(i int, input any) { net.sim.Step(i, input) }

// observe handles the outputs that are not network traffic.
func (net *simNetwork) observe(now time.Time, i int, out any) {
	switch out := out.(type) {
	case RelayToRoot:
		// A direct connection to the root, as the host would dial.
		net.relaying = true
		net.sim.Send(i, overlay.Send{To: net.nodes[net.byID[out.Root]].info, Msg: out.Msg})
		net.relaying = false
	case Deliver:
		net.deliveredTo[simKey{node: i, id: out.ID}]++
		if stats := net.messages[out.ID]; stats != nil {
			stats.deliveries = append(stats.deliveries, simDelivery{node: i, hops: out.Hops, at: now})
		}
	default:
		net.tb.Fatalf("node %d: unexpected output %T", i, out)
	}
}

// onSend checks and counts every message sent and applies the drop hook.
func (net *simNetwork) onSend(_ time.Time, from, to int, msg any) bool {
	if !net.relaying && !net.linked(from, to) {
		net.tb.Fatalf("node %d sent %T to %d, which is not its neighbour", from, msg, to)
	}
	if g, ok := msg.(*Gossip); ok {
		if stats := net.messages[g.ID]; stats != nil {
			stats.payloadSent++
		}
	}
	if net.opts.drop != nil && net.opts.drop(net, from, to, msg) {
		net.dropped++
		return true
	}
	return false
}

// typeCounts returns, per message type, the messages and the bytes (CBOR,
// frame header and AEAD tag) sent so far.
func (net *simNetwork) typeCounts() (sent, bytes map[string]int) {
	sent, bytes = make(map[string]int), make(map[string]int)
	for _, st := range net.sim.TypeStats() {
		sent[st.Type] = int(st.Sent)
		bytes[st.Type] = int(st.Bytes)
	}
	return sent, bytes
}

// sentByType returns the messages sent so far, per type.
func (net *simNetwork) sentByType() map[string]int { sent, _ := net.typeCounts(); return sent }

// bytesByType returns the bytes sent so far, per type.
func (net *simNetwork) bytesByType() map[string]int { _, bytes := net.typeCounts(); return bytes }

// run processes events until none is left or limit virtual time has passed;
// the clock of a network gone quiet stays at its last event.
func (net *simNetwork) run(limit time.Duration) {
	net.sim.RunUntilCond(net.now.Add(limit), func() bool { return net.sim.Pending() == 0 })
	net.now = net.sim.Now()
}

// wait moves the clock of a quiet network on by d (and runs whatever falls
// due meanwhile).
func (net *simNetwork) wait(d time.Duration) {
	net.sim.RunFor(d)
	net.now = net.sim.Now()
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
	net.sim.Kill(i)
	for _, j := range net.adj[i] {
		net.step(j, NeighborDown{Peer: net.nodes[i].info.ID})
	}
}

// alive reports whether node i is alive.
func (net *simNetwork) alive(i int) bool { return net.sim.Alive(i) }

// reachable returns the live nodes connected to source through live nodes.
func (net *simNetwork) reachable(source int) map[int]bool {
	seen := map[int]bool{source: true}
	queue := []int{source}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		for _, j := range net.adj[i] {
			if net.alive(j) && !seen[j] {
				seen[j] = true
				queue = append(queue, j)
			}
		}
	}
	return seen
}

// liveNodes returns the indices of the nodes alive.
func (net *simNetwork) liveNodes() []int { return net.sim.LiveNodes() }

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
