package kademlia

import (
	"container/heap"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/wire"
)

// This file is a deterministic virtual-time harness: it drives many cores
// with a message queue ordered by delivery time, seeded latencies and node
// deaths. Nothing in it reads the real clock.

var simEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

var errSimUnreachable = errors.New("sim: peer unreachable")

type simEventKind uint8

const (
	simDeliver simEventKind = iota
	simTick
	simLinkDown
)

type simEvent struct {
	at   int64 // virtual nanoseconds since simEpoch
	seq  uint64
	to   int
	kind simEventKind
	from peer.Info
	msg  any
	down overlay.LinkDown
}

type simQueue []*simEvent

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q simQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(*simEvent)) }
func (q *simQueue) Pop() any {
	old := *q
	ev := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return ev
}

type simNode struct {
	core     *Core
	key      *peer.Key
	info     peer.Info
	alive    bool
	nextTick time.Time
}

type simReqKey struct {
	node  int
	reqID uint64
}

// simNet is the simulated network.
type simNet struct {
	tb     testing.TB
	now    time.Time
	rng    *rand.Rand
	seed   uint64
	nodes  []*simNode
	byAddr map[string]int
	queue  simQueue
	seq    uint64
	nextID uint64

	// latency returns the one-way delay of one message.
	latency func() time.Duration
	// deadLinkDown makes a send to a dead node answer with a LinkDown after
	// a round trip (a refused connection) instead of silence.
	deadLinkDown bool
	// encode passes every message through wire.Marshal/Unmarshal and
	// counts bytes.
	encode bool
	// configure adjusts each node's Config.
	configure func(*Config)

	messages      int
	messagesByTyp map[reflect.Type]int
	bytes         int
	results       map[simReqKey]any
	// onDeliver observes every Deliver output.
	onDeliver func(node int, d Deliver)
}

func newSimNet(tb testing.TB, seed uint64) *simNet {
	s := &simNet{
		tb:            tb,
		now:           simEpoch,
		rng:           rand.New(rand.NewPCG(seed, 0x73696d)),
		seed:          seed,
		byAddr:        map[string]int{},
		messagesByTyp: map[reflect.Type]int{},
		results:       map[simReqKey]any{},
	}
	s.latency = func() time.Duration {
		return 10*time.Millisecond + time.Duration(s.rng.Int64N(int64(40*time.Millisecond)))
	}
	return s
}

// addNode creates node i (not yet joined).
func (s *simNet) addNode() int {
	i := len(s.nodes)
	var seed [32]byte
	binary.BigEndian.PutUint64(seed[:], s.seed)
	binary.BigEndian.PutUint64(seed[8:], uint64(i))
	seed = sha256.Sum256(seed[:])
	key, err := peer.KeyFromSeed(seed[:])
	if err != nil {
		s.tb.Fatal(err)
	}
	info := peer.Info{ID: key.ID(), Addr: fmt.Sprintf("n%d", i)}
	cfg := Config{Self: info, Signer: key, Seed: s.seed*1_000_003 + uint64(i) + 1}
	if s.configure != nil {
		s.configure(&cfg)
	}
	core, err := New(cfg)
	if err != nil {
		s.tb.Fatal(err)
	}
	s.nodes = append(s.nodes, &simNode{core: core, key: key, info: info, alive: true})
	s.byAddr[info.Addr] = i
	return i
}

// virtual converts a time to the queue's representation.
func (s *simNet) virtual(t time.Time) int64 { return int64(t.Sub(simEpoch)) }

func (s *simNet) push(ev *simEvent) {
	s.seq++
	ev.seq = s.seq
	heap.Push(&s.queue, ev)
}

// step feeds input to node i now and carries out its outputs.
func (s *simNet) step(i int, input any) {
	n := s.nodes[i]
	if !n.alive {
		return
	}
	n.core.Step(s.now, input)
	for _, out := range n.core.Drain(nil) {
		switch out := out.(type) {
		case overlay.Send:
			s.send(i, out)
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
	if d, ok := n.core.NextDeadline(); ok {
		if d.Before(s.now) {
			d = s.now
		}
		if n.nextTick.IsZero() || d.Before(n.nextTick) {
			n.nextTick = d
			s.push(&simEvent{at: s.virtual(d), to: i, kind: simTick})
		}
	}
}

func (s *simNet) send(from int, out overlay.Send) {
	s.messages++
	msg := out.Msg
	s.messagesByTyp[reflect.TypeOf(msg)]++
	if s.encode {
		data, err := wire.Marshal(msg)
		if err != nil {
			s.tb.Fatalf("marshal %T: %v", msg, err)
		}
		s.bytes += len(data) + wire.FrameHeaderLen + 16
		if msg, err = wire.Unmarshal(data); err != nil {
			s.tb.Fatalf("unmarshal %T: %v", out.Msg, err)
		}
	}
	delay := s.latency()
	to, ok := s.byAddr[out.To.Addr]
	if ok && !out.To.ID.IsZero() && s.nodes[to].info.ID != out.To.ID {
		ok = false
	}
	if !ok || !s.nodes[to].alive {
		if ok && !s.deadLinkDown {
			return // the message vanishes; the sender's request times out
		}
		s.push(&simEvent{at: s.virtual(s.now.Add(2 * delay)), to: from, kind: simLinkDown,
			down: overlay.LinkDown{Peer: out.To.ID, Addr: out.To.Addr, Err: errSimUnreachable}})
		return
	}
	s.push(&simEvent{at: s.virtual(s.now.Add(delay)), to: to, kind: simDeliver, from: s.nodes[from].info, msg: msg})
}

// runUntil processes events until done returns true or the virtual clock
// passes limit; it reports whether done became true.
func (s *simNet) runUntil(limit time.Time, done func() bool) bool {
	for {
		if done != nil && done() {
			return true
		}
		if len(s.queue) == 0 || s.queue[0].at > s.virtual(limit) {
			if s.now.Before(limit) {
				s.now = limit
			}
			return done != nil && done()
		}
		ev := heap.Pop(&s.queue).(*simEvent)
		s.now = simEpoch.Add(time.Duration(ev.at))
		n := s.nodes[ev.to]
		switch ev.kind {
		case simDeliver:
			s.step(ev.to, overlay.Received{From: ev.from, Msg: ev.msg})
		case simLinkDown:
			s.step(ev.to, ev.down)
		case simTick:
			if !s.now.Equal(n.nextTick) {
				continue
			}
			n.nextTick = time.Time{}
			s.step(ev.to, overlay.Tick{})
		}
	}
}

// runFor advances the clock by d.
func (s *simNet) runFor(d time.Duration) { s.runUntil(s.now.Add(d), nil) }

// request steps node i with a request built around a fresh ReqID and runs
// until its answer arrives (at most a virtual minute).
func (s *simNet) request(i int, build func(reqID uint64) any) any {
	s.nextID++
	id := s.nextID
	s.step(i, build(id))
	key := simReqKey{i, id}
	s.runUntil(s.now.Add(time.Minute), func() bool { _, ok := s.results[key]; return ok })
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
	var out []int
	for i, n := range s.nodes {
		if n.alive {
			out = append(out, i)
		}
	}
	return out
}

// trueClosest returns the k live nodes closest to target, except node
// exclude, by brute force.
func (s *simNet) trueClosest(target peer.ID, k, exclude int) []peer.ID {
	var ids []peer.ID
	for i, n := range s.nodes {
		if n.alive && i != exclude {
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
		s.nodes[i].alive = false
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
		if i := s.rng.IntN(len(s.nodes)); s.nodes[i].alive {
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
