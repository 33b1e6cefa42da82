package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/wire"
)

// DefaultEpoch is the virtual time at which a run starts when Config.Epoch is
// zero. A fixed date keeps runs repeatable.
var DefaultEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// ErrUnreachable is the error carried by the overlay.LinkDown the engine
// produces: the peer is dead, unknown, or on the other side of a partition.
var ErrUnreachable = errors.New("sim: peer unreachable")

// ErrConfig is wrapped by the errors of New, RunBroadcast, RunKademlia and
// RunKV for an invalid configuration; the message names the field.
var ErrConfig = errors.New("sim: invalid config")

// frameOverhead is what a message costs on the wire beyond its CBOR encoding:
// the 4-byte frame length and the 16-byte AEAD tag of the transport.
const frameOverhead uint32 = wire.FrameHeaderLen + 16

// Config configures a simulation. Zero fields take the documented defaults.
type Config struct {
	// Seed drives every random choice of the run: latencies, losses, churn,
	// node identities and the scenario's own choices through [Sim.Rand]. Two
	// runs with the same seed and the same inputs are identical.
	Seed uint64
	// Epoch is the virtual time at which the run starts (default
	// DefaultEpoch).
	Epoch time.Time
	// Latency is the one-way link latency model (default DefaultLatency,
	// fixed 20 ms).
	Latency Latency
	// Loss is the probability, in [0, 1), that a message is lost in transit
	// (default 0).
	Loss float64
	// DetectDelay is how long after a kept link breaks (its other end died or
	// a partition cut it) the surviving end receives overlay.LinkDown, as a
	// TCP reset or keepalive would tell it (default one round trip, twice the
	// model's average latency).
	DetectDelay time.Duration
	// CountBytes turns on byte accounting: every message sent is encoded
	// with wire.Marshal and counted as its length plus 4 bytes of frame
	// header and 16 bytes of AEAD tag. It costs CPU, so it is off by default.
	CountBytes bool
	// Decode, with CountBytes, also decodes every encoded message with
	// wire.Unmarshal and delivers the decoded copy, so receivers never share
	// the sender's pointers. A message the codec rejects is not sent and is
	// counted by [Sim.CodecErrors].
	Decode bool
	// DeadSilent makes what is sent to a dead node vanish instead of coming
	// back as [overlay.LinkDown] after one round trip: a host gone without a
	// reset, whose peers' requests time out. Unknown addresses still fail.
	DeadSilent bool
	// SilentFailures makes Kill and Partition tell no one, as a host
	// powered off or a cable cut without a reset: the links other nodes
	// keep to a lost node stay, what they send over them vanishes (only
	// their own keepalives can tell), and only sends and dials without a
	// kept link fail, with overlay.LinkDown after DialTimeout.
	SilentFailures bool
	// DialTimeout is how long a send or dial to an unreachable node fails
	// after (default one round trip, as a refused connection).
	DialTimeout time.Duration
	// Observer receives every core output other than overlay.Send,
	// overlay.Connect and overlay.Disconnect: deliveries and events that
	// scenarios measure. It may call the Sim's methods.
	Observer func(now time.Time, node int, out any)
	// OnMessage is called for every message handed to a live node, just
	// before the receiving core is stepped with it.
	OnMessage func(now time.Time, from, to int, msg any)
	// Drop, when non-nil, is called for every message a node sends to a
	// known node that does not come back as overlay.LinkDown (the
	// receiver is alive and reachable, or dead and swallowing what is sent
	// to it: DeadSilent, CrashSilent), after the message is counted as
	// sent and before the loss draw; returning true loses the message,
	// counted as Loss counts its losses. It is the tests' per-message fault
	// hook (drop every third GOSSIP, cut one direction of a link). Nil
	// drops nothing.
	Drop func(now time.Time, from, to int, msg any) bool
	// Progress, when non-nil, receives a progress line (rewritten with \r at
	// most once a second) once a run has taken more than two seconds of real
	// time. Status supplies the scenario's part of that line.
	Progress io.Writer
	// Status returns the scenario's progress for the progress line.
	Status func() string
	// WallClock reads real time, used only for the progress line and CPU
	// figures, never by the simulation itself (default time.Now).
	WallClock func() time.Time
	// Logger receives debug records (nil discards them).
	Logger *slog.Logger
	// Workers, when 2 or more, runs the windowed parallel engine with that
	// many goroutines stepping cores at once (see "Parallel runs" in the
	// package documentation); 0 or 1 runs the sequential engine. A run is
	// repeatable for a given seed in either mode, and every Workers of 2 or
	// more gives the same run, but the two modes order simultaneous work
	// differently, so a windowed run differs from the sequential one with
	// the same seed.
	Workers int
}

// Identity is what the engine gives a new node: its index, its key pair
// (derived from the run's seed and the index), its peer.Info with address
// "sim-<index>", and a seed for the core's own random choices.
type Identity struct {
	Index int
	Key   *peer.Key
	Info  peer.Info
	Seed  uint64
}

// NodeStats counts one node's traffic. Bytes are counted only with
// Config.CountBytes.
type NodeStats struct {
	MessagesSent     int64 `json:"messages_sent"`
	MessagesReceived int64 `json:"messages_received"`
	BytesSent        int64 `json:"bytes_sent"`
	BytesReceived    int64 `json:"bytes_received"`
}

// add accumulates other into s.
func (s *NodeStats) add(other NodeStats) {
	s.MessagesSent += other.MessagesSent
	s.MessagesReceived += other.MessagesReceived
	s.BytesSent += other.BytesSent
	s.BytesReceived += other.BytesReceived
}

// node is the engine's record of one simulated node.
type node struct {
	core    overlay.Core
	info    peer.Info
	key     *peer.Key
	alive   bool
	crash   CrashMode // how the node last crashed, while it is dead
	skew    int64     // how far the node's clock is ahead of virtual time (SetClockSkew)
	incarn  uint32    // incarnation: Restart increments it, so what was in flight to the old core is lost
	group   int32     // partition group; 0 unless named in a Partition
	hasTick bool
	tickGen uint32
	tickAt  int64
	// tickUnqueued: the current tick was set during a parallel window
	// and is not yet in the queue (the window's merge pushes it).
	tickUnqueued bool
	keeps        []int32 // nodes this node asked to keep a link to (overlay.Connect)
	keptBy       []int32 // nodes that keep a link to this node
	stats        NodeStats
}

// Sim is a discrete-event simulation of many overlay cores on a modelled
// network. It is not safe for concurrent use: one goroutine drives it.
type Sim struct {
	cfg     Config
	log     *slog.Logger
	epoch   time.Time
	now     int64 // virtual nanoseconds since epoch
	seq     uint64
	queue   eventQueue
	network *rand.Rand // latency and loss draws
	random  *rand.Rand // the scenario's draws, through Rand
	loss    float64
	latency Latency
	rtt     int64
	detect  int64
	dial    int64 // how long a send or dial to an unreachable node takes to fail
	// lookahead is the shortest delay between a node's step and any event
	// it causes at another node: the windowed engine's window.
	lookahead int64

	nodes   []node
	byID    map[peer.ID]int32
	byAddr  map[string]int32
	live    []int32 // indices of live nodes, in no particular order
	livePos []int32 // position of each node in live, -1 when dead

	lastArrival     map[uint64]int64 // per directed link, the latest scheduled arrival
	sendsSincePrune int

	outBuf      []any
	events      uint64
	dropped     int64
	lost        int64
	codecErrors int64
	types       map[reflect.Type]*TypeStats
	prog        progress
	par         parallel
}

// New returns an empty simulation at the configured epoch.
func New(cfg Config) (*Sim, error) {
	if cfg.Latency.IsZero() {
		cfg.Latency = DefaultLatency
	}
	if err := cfg.Latency.Validate(); err != nil {
		return nil, err
	}
	if cfg.Loss < 0 || cfg.Loss >= 1 {
		return nil, fmt.Errorf("%w: Config.Loss %v is outside [0, 1)", ErrConfig, cfg.Loss)
	}
	if cfg.DetectDelay < 0 {
		return nil, fmt.Errorf("%w: Config.DetectDelay %v is negative", ErrConfig, cfg.DetectDelay)
	}
	if cfg.DialTimeout < 0 {
		return nil, fmt.Errorf("%w: Config.DialTimeout %v is negative", ErrConfig, cfg.DialTimeout)
	}
	if cfg.Workers < 0 {
		return nil, fmt.Errorf("%w: Config.Workers %d is negative", ErrConfig, cfg.Workers)
	}
	if cfg.Epoch.IsZero() {
		cfg.Epoch = DefaultEpoch
	}
	cfg.WallClock = cfg.Clock()
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Sim{
		cfg:         cfg,
		log:         logger,
		epoch:       cfg.Epoch,
		network:     rand.New(rand.NewPCG(cfg.Seed, 0x6e6574776f726b)),   // "network"
		random:      rand.New(rand.NewPCG(cfg.Seed, 0x7363656e6172696f)), // "scenario"
		loss:        cfg.Loss,
		byID:        make(map[peer.ID]int32),
		byAddr:      make(map[string]int32),
		lastArrival: make(map[uint64]int64),
		types:       make(map[reflect.Type]*TypeStats),
	}
	s.setLatency(cfg.Latency)
	s.prog.init(s)
	return s, nil
}

// setLatency installs a latency model and the delays derived from it.
func (s *Sim) setLatency(l Latency) {
	s.latency = l
	s.rtt = 2 * int64(l.Average())
	s.detect = s.rtt
	if s.cfg.DetectDelay > 0 {
		s.detect = int64(s.cfg.DetectDelay)
	}
	s.dial = s.rtt
	if s.cfg.DialTimeout > 0 {
		s.dial = int64(s.cfg.DialTimeout)
	}
	s.lookahead = min(int64(l.Shortest()), s.detect, s.dial)
}

// SetLatency replaces the latency model for messages sent from now on.
func (s *Sim) SetLatency(l Latency) error {
	if err := l.Validate(); err != nil {
		return err
	}
	s.setLatency(l)
	return nil
}

// SetLoss replaces the loss rate for messages sent from now on.
func (s *Sim) SetLoss(rate float64) error {
	if rate < 0 || rate >= 1 {
		return fmt.Errorf("sim: loss rate %v is outside [0, 1)", rate)
	}
	s.loss = rate
	return nil
}

// Now returns the current virtual time.
func (s *Sim) Now() time.Time { return s.epoch.Add(time.Duration(s.now)) }

// Elapsed returns the virtual time since the epoch.
func (s *Sim) Elapsed() time.Duration { return time.Duration(s.now) }

// Epoch returns the virtual time the run started at (Config.Epoch).
func (s *Sim) Epoch() time.Time { return s.epoch }

// Latency returns the current latency model.
func (s *Sim) Latency() Latency { return s.latency }

// Rand returns the scenario's random source, seeded from Config.Seed.
func (s *Sim) Rand() *rand.Rand { return s.random }

// Events returns the number of events processed so far.
func (s *Sim) Events() uint64 { return s.events }

// Pending returns the number of scheduled events.
func (s *Sim) Pending() int { return s.queue.Len() }

// DeriveIdentity returns node index's key pair and core seed: hashes of the
// run's seed and the index, so a node's identity does not depend on the order
// in which random numbers were drawn before it joined.
func DeriveIdentity(runSeed uint64, index int) (*peer.Key, uint64, error) {
	var input [24]byte
	copy(input[:8], "p2p-sim\x00")
	binary.BigEndian.PutUint64(input[8:16], runSeed)
	binary.BigEndian.PutUint64(input[16:], uint64(index))
	keySeed := sha256.Sum256(input[:])
	key, err := peer.KeyFromSeed(keySeed[:])
	if err != nil {
		return nil, 0, err
	}
	input[7] = 1
	coreSeed := sha256.Sum256(input[:])
	return key, binary.BigEndian.Uint64(coreSeed[:8]), nil
}

// Addr returns the address of node i: "sim-<i>".
func Addr(i int) string { return fmt.Sprintf("sim-%d", i) }

// AddNode creates node number Len() with a fresh identity, asks build for its
// core, and adds it alive, in partition group 0, with no links. The core is
// not stepped: the scenario sends it its first input (a join) with Step.
func (s *Sim) AddNode(build func(id Identity) (overlay.Core, error)) (int, error) {
	return s.AddNodeWithKey(nil, build)
}

// AddNodeWithKey is AddNode with the node's key pair chosen by the caller
// (nil: the derived one), for a test whose cores must sign with keys it
// knows. The node's ID is the key's; an ID already in use is an error.
func (s *Sim) AddNodeWithKey(key *peer.Key, build func(id Identity) (overlay.Core, error)) (int, error) {
	index := len(s.nodes)
	derived, coreSeed, err := DeriveIdentity(s.cfg.Seed, index)
	if err != nil {
		return -1, fmt.Errorf("sim: identity of node %d: %w", index, err)
	}
	if key == nil {
		key = derived
	}
	if _, taken := s.byID[key.ID()]; taken {
		return -1, fmt.Errorf("sim: node %d: ID %s is already in use", index, key.ID())
	}
	id := Identity{Index: index, Key: key, Info: peer.Info{ID: key.ID(), Addr: Addr(index)}, Seed: coreSeed}
	core, err := build(id)
	if err != nil {
		return -1, fmt.Errorf("sim: core of node %d (%s): %w", index, id.Info, err)
	}
	if core == nil {
		return -1, fmt.Errorf("sim: core of node %d (%s) is nil", index, id.Info)
	}
	s.nodes = append(s.nodes, node{core: core, info: id.Info, key: key, alive: true})
	s.byID[id.Info.ID] = int32(index)
	s.byAddr[id.Info.Addr] = int32(index)
	s.livePos = append(s.livePos, int32(len(s.live)))
	s.live = append(s.live, int32(index))
	return index, nil
}

// SetClockSkew sets how far node i's clock is ahead of the virtual time (a
// negative skew: behind): its core is stepped with the virtual time plus
// skew, and its NextDeadline is read on its own clock. Zero, the default,
// gives every node the virtual time. It takes effect at the node's next
// step, and stays across Restart.
func (s *Sim) SetClockSkew(i int, skew time.Duration) { s.nodes[i].skew = int64(skew) }

// Len returns the number of nodes ever added, dead ones included.
func (s *Sim) Len() int { return len(s.nodes) }

// LiveCount returns the number of live nodes.
func (s *Sim) LiveCount() int { return len(s.live) }

// Alive reports whether node i is alive.
func (s *Sim) Alive(i int) bool { return i >= 0 && i < len(s.nodes) && s.nodes[i].alive }

// Info returns node i's identity as peers see it.
func (s *Sim) Info(i int) peer.Info { return s.nodes[i].info }

// Key returns node i's key pair.
func (s *Sim) Key(i int) *peer.Key { return s.nodes[i].key }

// Core returns node i's core, or nil once the node is dead.
func (s *Sim) Core(i int) overlay.Core { return s.nodes[i].core }

// Lookup returns the index of the node with the given ID, or -1.
func (s *Sim) Lookup(id peer.ID) int {
	if i, ok := s.byID[id]; ok {
		return int(i)
	}
	return -1
}

// RandomLive returns a uniformly chosen live node drawn from Rand, or -1 when
// none is alive.
func (s *Sim) RandomLive() int {
	if len(s.live) == 0 {
		return -1
	}
	return int(s.live[s.random.IntN(len(s.live))])
}

// LiveNodes returns the live nodes in increasing index order.
func (s *Sim) LiveNodes() []int {
	out := make([]int, 0, len(s.live))
	for i := range s.nodes {
		if s.nodes[i].alive {
			out = append(out, i)
		}
	}
	return out
}

// Reachable reports whether a message from a to b would currently arrive
// (loss aside): both alive and in the same partition group.
func (s *Sim) Reachable(a, b int) bool {
	return s.nodes[a].alive && s.nodes[b].alive && s.nodes[a].group == s.nodes[b].group
}

// Step feeds input to node i's core at the current virtual time and handles
// its outputs. Stepping a dead node does nothing.
func (s *Sim) Step(i int, input any) {
	if !s.Alive(i) {
		return
	}
	s.stepNode(int32(i), input, false)
}

// At schedules fn to run at virtual time t (or now, if t has passed).
func (s *Sim) At(t time.Time, fn func()) {
	at := max(int64(t.Sub(s.epoch)), s.now)
	s.push(event{at: at, kind: eventFunc, fn: fn})
}

// After schedules fn to run d from now.
func (s *Sim) After(d time.Duration, fn func()) { s.At(s.Now().Add(d), fn) }

// push adds ev to the schedule with the next sequence number.
func (s *Sim) push(ev event) {
	s.seq++
	ev.seq = s.seq
	s.queue.push(ev)
}

// RunUntil processes every event due at or before t, then sets the clock to
// t (if t is later than the clock).
func (s *Sim) RunUntil(t time.Time) { s.run(int64(t.Sub(s.epoch)), nil) }

// RunFor runs the simulation for d of virtual time.
func (s *Sim) RunFor(d time.Duration) { s.run(s.now+int64(d), nil) }

// RunUntilCond processes events until cond returns true (checked before each
// event and at the end) or no event due at or before limit remains, in which
// case the clock moves to limit. It returns cond's last answer.
func (s *Sim) RunUntilCond(limit time.Time, cond func() bool) bool {
	return s.run(int64(limit.Sub(s.epoch)), cond)
}

// run is the event loop.
func (s *Sim) run(limit int64, cond func() bool) bool {
	if s.cfg.Workers >= 2 {
		return s.runWindows(limit, cond)
	}
	for s.queue.Len() > 0 && s.queue.peek().at <= limit {
		if cond != nil && cond() {
			return true
		}
		ev := s.queue.pop()
		s.now = ev.at
		s.dispatch(&ev)
		s.events++
		if s.events&1023 == 0 {
			s.prog.maybeUpdate()
		}
	}
	if cond != nil && cond() {
		return true
	}
	if limit > s.now {
		s.now = limit
	}
	return false
}

// dispatch carries out one event.
func (s *Sim) dispatch(ev *event) {
	switch ev.kind {
	case eventDeliver:
		if ev.gen != s.nodes[ev.to].incarn {
			s.dropped++ // sent to an incarnation that has since crashed
			return
		}
		s.deliver(ev.from, ev.to, ev.size, ev.msg)
	case eventLinkDown:
		if s.nodes[ev.to].alive && ev.gen == s.nodes[ev.to].incarn {
			s.stepNode(ev.to, ev.msg, false)
		}
	case eventTick:
		n := &s.nodes[ev.to]
		if !n.alive || !n.hasTick || ev.gen != n.tickGen {
			return // superseded by a later NextDeadline, or the node died
		}
		n.hasTick = false
		s.stepNode(ev.to, overlay.Tick{}, true)
	case eventFunc:
		ev.fn()
	}
}

// stepNode steps a live node's core, then takes and handles its outputs and
// reschedules its tick.
func (s *Sim) stepNode(i int32, input any, isTick bool) {
	s.nodes[i].core.Step(s.epoch.Add(time.Duration(s.now+s.nodes[i].skew)), input)
	buf := s.outBuf
	s.outBuf = nil // a nested step (from the Observer) gets its own buffer
	buf = s.nodes[i].core.Drain(buf[:0])
	for _, out := range buf {
		if !s.nodes[i].alive {
			break // the Observer killed the node while its outputs were handled
		}
		s.handleOutput(i, out)
	}
	clear(buf)
	s.outBuf = buf[:0]
	if s.nodes[i].alive {
		s.scheduleTick(i, isTick)
	}
}

// scheduleTick makes sure node i has exactly one live tick event, at its
// core's NextDeadline. A replaced tick event stays in the heap but is
// ignored when it comes up because its generation is stale.
func (s *Sim) scheduleTick(i int32, afterTick bool) {
	n := &s.nodes[i]
	deadline, ok := n.core.NextDeadline()
	if !ok {
		if n.hasTick {
			n.hasTick = false
			n.tickGen++
		}
		return
	}
	at := max(int64(deadline.Sub(s.epoch))-n.skew, s.now)
	if afterTick && at <= s.now {
		// A core that still wants a tick right after one gets it a
		// nanosecond later, so virtual time always advances.
		at = s.now + 1
	}
	if n.hasTick && n.tickAt == at {
		return
	}
	n.tickGen++
	n.hasTick = true
	n.tickAt = at
	n.tickUnqueued = false
	s.push(event{at: at, kind: eventTick, to: i, gen: n.tickGen})
}

// handleOutput carries out one output of node i.
func (s *Sim) handleOutput(i int32, out any) {
	switch o := out.(type) {
	case overlay.Send:
		s.send(i, o)
	case *overlay.Send:
		s.send(i, *o)
	case overlay.Connect:
		s.connect(i, o.Peer)
	case *overlay.Connect:
		s.connect(i, o.Peer)
	case overlay.Disconnect:
		s.disconnect(i, o.Peer)
	case *overlay.Disconnect:
		s.disconnect(i, o.Peer)
	default:
		if s.cfg.Observer != nil {
			s.cfg.Observer(s.Now(), int(i), out)
		}
	}
}

// resolve finds the node a peer.Info names: by ID, or by address when the ID
// is zero. It returns -1 for an unknown peer.
func (s *Sim) resolve(to peer.Info) int32 {
	if !to.ID.IsZero() {
		if j, ok := s.byID[to.ID]; ok {
			return j
		}
		return -1
	}
	if j, ok := s.byAddr[to.Addr]; ok {
		return j
	}
	return -1
}

// linkDownLater tells node i, after delay, that it cannot reach peer.
func (s *Sim) linkDownLater(i int32, to peer.Info, delay int64) {
	s.push(event{
		at:   s.now + delay,
		kind: eventLinkDown,
		to:   i,
		gen:  s.nodes[i].incarn,
		msg:  overlay.LinkDown{Peer: to.ID, Addr: to.Addr, Err: fmt.Errorf("%w: %s", ErrUnreachable, to)},
	})
}

// clock returns WallClock, or time.Now when it is unset.
// Clock returns the wall clock the run reads for progress and timings:
// WallClock, or time.Now when it is nil.
func (c Config) Clock() func() time.Time {
	if c.WallClock != nil {
		return c.WallClock
	}
	return time.Now
}

// AddStaggered calls add n times, the i-th at i × interval of virtual time
// from the epoch, running the network in between.
func (s *Sim) AddStaggered(n int, interval time.Duration, add func() error) error {
	for i := range n {
		if i > 0 {
			s.RunUntil(s.epoch.Add(time.Duration(i) * interval))
		}
		if err := add(); err != nil {
			return err
		}
	}
	return nil
}
