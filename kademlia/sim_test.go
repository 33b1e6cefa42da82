package kademlia

import (
	"encoding/binary"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/sim/engine"
)

// This file drives many cores on the simulator's engine (package sim/engine):
// seeded latencies, a virtual clock and node deaths. Nothing in it reads the
// real clock.

var simEpoch = engine.DefaultEpoch

type simNode struct {
	core *Core
	key  *peer.Key
	info peer.Info
}

type simReqKey struct {
	node  int
	reqID uint64
}

// simNet is the simulated network: the engine and the cores it runs.
type simNet struct {
	tb     testing.TB
	sim    *engine.Sim
	rng    *rand.Rand
	seed   uint64
	nodes  []*simNode
	nextID uint64

	// latency is the engine's latency model (default uniform in
	// [10ms, 50ms]); set it before the first node is added.
	latency engine.Latency
	// encode passes every message through wire.Marshal/Unmarshal and
	// counts bytes; set it before the first node is added.
	encode bool
	// configure adjusts each node's Config.
	configure func(*Config)

	results map[simReqKey]any
	// onDeliver observes every Deliver output.
	onDeliver func(node int, d Deliver)
}

func newSimNet(tb testing.TB, seed uint64) *simNet {
	return &simNet{
		tb:      tb,
		rng:     rand.New(rand.NewPCG(seed, 0x73696d)),
		seed:    seed,
		latency: engine.UniformLatency(10*time.Millisecond, 50*time.Millisecond),
		results: map[simReqKey]any{},
	}
}

// start creates the engine on the first node. A send to a dead node
// vanishes (the sender's request times out), as with a host gone for good.
func (s *simNet) start() {
	if s.sim != nil {
		return
	}
	sim, err := engine.New(engine.Config{
		Seed:       s.seed,
		Latency:    s.latency,
		CountBytes: s.encode,
		Decode:     s.encode,
		DeadSilent: true,
		Observer:   s.observe,
	})
	if err != nil {
		s.tb.Fatal(err)
	}
	s.sim = sim
}

// now is the virtual time.
func (s *simNet) now() time.Time {
	if s.sim == nil {
		return simEpoch
	}
	return s.sim.Now()
}

// addNode creates node i (not yet joined).
func (s *simNet) addNode() int {
	s.start()
	i, err := s.sim.AddNode(func(id engine.Identity) (overlay.Core, error) {
		cfg := Config{Self: id.Info, Signer: id.Key, Seed: id.Seed}
		if s.configure != nil {
			s.configure(&cfg)
		}
		core, err := New(cfg)
		if err != nil {
			return nil, err
		}
		s.nodes = append(s.nodes, &simNode{core: core, key: id.Key, info: id.Info})
		return core, nil
	})
	if err != nil {
		s.tb.Fatal(err)
	}
	return i
}

// observe records the outputs that are not network traffic.
func (s *simNet) observe(_ time.Time, i int, out any) {
	switch out := out.(type) {
	case Deliver:
		if s.onDeliver != nil {
			s.onDeliver(i, out)
		}
	case LookupResult:
		s.results[simReqKey{i, out.ReqID}] = out
	case GetResult:
		s.results[simReqKey{i, out.ReqID}] = out
	case PutResult:
		s.results[simReqKey{i, out.ReqID}] = out
	case BootstrapResult:
		s.results[simReqKey{i, out.ReqID}] = out
	default:
		s.tb.Fatalf("node %d: unexpected output %T", i, out)
	}
}

// step feeds input to node i now and carries out its outputs.
func (s *simNet) step(i int, input any) { s.sim.Step(i, input) }

// messages is the number of messages sent so far.
func (s *simNet) messages() int { return int(s.sim.TotalStats().MessagesSent) }

// bytes is the number of bytes sent so far (with encode), framing and AEAD
// tags included.
func (s *simNet) bytes() int { return int(s.sim.TotalStats().BytesSent) }

// sent is the number of messages of type typ sent so far.
func (s *simNet) sent(typ reflect.Type) int {
	for _, stats := range s.sim.TypeStats() {
		if stats.Type == typ.String() {
			return int(stats.Sent)
		}
	}
	return 0
}

// runUntil processes events until done returns true or the virtual clock
// passes limit; it reports whether done became true.
func (s *simNet) runUntil(limit time.Time, done func() bool) bool {
	ok := s.sim.RunUntilCond(limit, done)
	if codec := s.sim.CodecErrors(); codec > 0 {
		s.tb.Fatalf("%d messages failed the wire codec", codec)
	}
	return ok
}

// runFor advances the clock by d.
func (s *simNet) runFor(d time.Duration) { s.runUntil(s.now().Add(d), nil) }

// request steps node i with a request built around a fresh ReqID and runs
// until its answer arrives (at most a virtual minute).
func (s *simNet) request(i int, build func(reqID uint64) any) any {
	s.nextID++
	id := s.nextID
	s.step(i, build(id))
	key := simReqKey{i, id}
	s.runUntil(s.now().Add(time.Minute), func() bool { _, ok := s.results[key]; return ok })
	res, ok := s.results[key]
	if !ok {
		s.tb.Fatalf("node %d: request %d got no answer", i, id)
	}
	delete(s.results, key)
	return res
}

func (s *simNet) lookup(i int, target peer.ID) LookupResult {
	return s.request(i, func(id uint64) any { return Lookup{ReqID: id, Target: target} }).(LookupResult)
}

func (s *simNet) get(i int, key peer.ID) GetResult {
	return s.request(i, func(id uint64) any { return Get{ReqID: id, Key: key} }).(GetResult)
}

func (s *simNet) put(i int, rec Record) PutResult {
	return s.request(i, func(id uint64) any { return Put{ReqID: id, Record: rec} }).(PutResult)
}

// build creates n nodes; each joins through a random node already in.
func (s *simNet) build(n int) {
	s.tb.Helper()
	for range n {
		i := s.addNode()
		if i == 0 {
			s.step(0, overlay.Tick{})
			continue
		}
		contact := s.nodes[s.rng.IntN(i)].info.Addr
		res := s.request(i, func(id uint64) any { return Bootstrap{ReqID: id, Contacts: []string{contact}} }).(BootstrapResult)
		if res.Err != nil {
			s.tb.Fatalf("node %d: bootstrap: %v", i, res.Err)
		}
	}
}

// alive returns the indexes of the live nodes.
func (s *simNet) alive() []int {
	return s.sim.LiveNodes()
}

// trueClosest returns the k live nodes closest to target, except node
// exclude, by brute force.
func (s *simNet) trueClosest(target peer.ID, k, exclude int) []peer.ID {
	var ids []peer.ID
	for i, n := range s.nodes {
		if s.sim.Alive(i) && i != exclude {
			ids = append(ids, n.info.ID)
		}
	}
	slices.SortFunc(ids, func(a, b peer.ID) int { return compareDistance(target, a, b) })
	return ids[:min(k, len(ids))]
}

// kill makes a fraction of the nodes (never node keep) leave abruptly.
func (s *simNet) kill(fraction float64, keep int) []int {
	alive := s.alive()
	s.rng.Shuffle(len(alive), func(a, b int) { alive[a], alive[b] = alive[b], alive[a] })
	count := int(fraction * float64(len(alive)))
	var killed []int
	for _, i := range alive {
		if len(killed) == count {
			break
		}
		if i == keep {
			continue
		}
		s.sim.Kill(i)
		killed = append(killed, i)
	}
	return killed
}

func (s *simNet) randomID() peer.ID {
	var id peer.ID
	for j := 0; j < len(id); j += 8 {
		binary.BigEndian.PutUint64(id[j:], s.rng.Uint64())
	}
	return id
}

func (s *simNet) randomAlive() int {
	for {
		if i := s.rng.IntN(len(s.nodes)); s.sim.Alive(i) {
			return i
		}
	}
}

func percentile(values []int, p float64) int {
	if len(values) == 0 {
		return 0
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	idx := int(p * float64(len(sorted)-1))
	return sorted[idx]
}
