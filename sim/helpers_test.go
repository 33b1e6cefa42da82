package sim

import (
	"crypto/sha256"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/sim/engine"
	"github.com/p2p-go/p2p/wire"
)

// Test-only message types use codes 0x7Fxx, outside every range the
// project's packages use.
func init() {
	wire.ClaimRange(0x7F, "sim tests")
	wire.Register(0x7F01, (*testMsg)(nil))
	wire.Register(0x7F02, (*floodMsg)(nil))
}

// testMsg is a numbered message for engine tests.
type testMsg struct {
	_       struct{} `cbor:",toarray"`
	Seq     int
	Payload []byte
}

// emit is an input that makes a scriptCore output outs.
type emit struct{ outs []any }

// setDeadline is an input that sets a scriptCore's NextDeadline (zero time:
// none).
type setDeadline struct{ at time.Time }

// stepRecord is one input a scriptCore received.
type stepRecord struct {
	at    time.Time
	input any
}

// scriptCore records its inputs and outputs what the test scripts.
type scriptCore struct {
	steps    []stepRecord
	outputs  []any
	deadline time.Time
	// onTick, when set, runs on each Tick and may change the deadline.
	onTick func(c *scriptCore, now time.Time)
}

func (c *scriptCore) Step(now time.Time, input any) {
	c.steps = append(c.steps, stepRecord{at: now, input: input})
	switch in := input.(type) {
	case emit:
		c.outputs = append(c.outputs, in.outs...)
	case setDeadline:
		c.deadline = in.at
	case overlay.Tick:
		if c.onTick != nil {
			c.onTick(c, now)
		}
	}
}

func (c *scriptCore) Drain(dst []any) []any {
	dst = append(dst, c.outputs...)
	c.outputs = c.outputs[:0]
	return dst
}

func (c *scriptCore) NextDeadline() (time.Time, bool) { return c.deadline, !c.deadline.IsZero() }

// received returns the testMsg sequence numbers the core received, in order.
func (c *scriptCore) received() []int {
	var out []int
	for _, s := range c.steps {
		if r, ok := s.input.(overlay.Received); ok {
			if m, ok := r.Msg.(*testMsg); ok {
				out = append(out, m.Seq)
			}
		}
	}
	return out
}

// linkDowns returns the LinkDown inputs the core received, with their times.
func (c *scriptCore) linkDowns() []stepRecord {
	var out []stepRecord
	for _, s := range c.steps {
		if _, ok := s.input.(overlay.LinkDown); ok {
			out = append(out, s)
		}
	}
	return out
}

// ticks returns the times of the Ticks the core received.
func (c *scriptCore) ticks() []time.Time {
	var out []time.Time
	for _, s := range c.steps {
		if _, ok := s.input.(overlay.Tick); ok {
			out = append(out, s.at)
		}
	}
	return out
}

// newScriptSim returns a simulation of n scriptCores.
func newScriptSim(tb interface{ Fatal(...any) }, cfg Config, n int) (*Sim, []*scriptCore) {
	s, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	cores := make([]*scriptCore, n)
	for i := range n {
		if _, err := s.AddNode(func(Identity) (overlay.Core, error) {
			cores[i] = &scriptCore{}
			return cores[i], nil
		}); err != nil {
			tb.Fatal(err)
		}
	}
	return s, cores
}

// floodMsg carries a flooded payload.
type floodMsg struct {
	_       struct{} `cbor:",toarray"`
	ID      MessageID
	Hops    int
	Payload []byte
}

// floodBroadcast and floodDeliver are the flood core's request and output.
type (
	floodBroadcast struct{ payload []byte }
	floodDeliver   struct {
		id      MessageID
		hops    int
		payload []byte
	}
	floodJoin struct{}
)

// floodCore floods every new message to all its fixed neighbours but the one
// it came from: the simplest broadcast, whose message counts are easy to
// work out by hand on a small graph.
type floodCore struct {
	self      peer.Info
	neighbors []peer.Info
	seen      map[MessageID]bool
	outputs   []any
}

func (c *floodCore) Step(now time.Time, input any) {
	switch in := input.(type) {
	case floodBroadcast:
		sum := sha256.Sum256(in.payload)
		id := MessageID(sum[:16])
		c.seen[id] = true
		c.forward(&floodMsg{ID: id, Hops: 1, Payload: in.payload}, peer.ID{})
	case overlay.Received:
		m, ok := in.Msg.(*floodMsg)
		if !ok || c.seen[m.ID] {
			return
		}
		c.seen[m.ID] = true
		c.outputs = append(c.outputs, floodDeliver{id: m.ID, hops: m.Hops, payload: m.Payload})
		c.forward(&floodMsg{ID: m.ID, Hops: m.Hops + 1, Payload: m.Payload}, in.From.ID)
	}
}

func (c *floodCore) forward(m *floodMsg, except peer.ID) {
	for _, n := range c.neighbors {
		if n.ID != except {
			c.outputs = append(c.outputs, overlay.Send{To: n, Msg: m})
		}
	}
}

func (c *floodCore) Drain(dst []any) []any {
	dst = append(dst, c.outputs...)
	c.outputs = c.outputs[:0]
	return dst
}

func (c *floodCore) NextDeadline() (time.Time, bool) { return time.Time{}, false }

// floodProtocol runs floodCores on a fixed graph: node i's neighbours are
// graph[i]. Neighbour IDs are derived the way the engine derives them.
type floodProtocol struct {
	graph [][]int
	seed  uint64
}

func (p floodProtocol) Name() string { return "flood" }

func (p floodProtocol) NewCore(id Identity) (overlay.Core, error) {
	c := &floodCore{self: id.Info, seen: map[MessageID]bool{}}
	for _, j := range p.graph[id.Index] {
		key, _, err := engine.DeriveIdentity(p.seed, j)
		if err != nil {
			return nil, err
		}
		c.neighbors = append(c.neighbors, peer.Info{ID: key.ID(), Addr: Addr(j)})
	}
	return c, nil
}

func (p floodProtocol) JoinInput([]string) any            { return floodJoin{} }
func (p floodProtocol) BroadcastInput(payload []byte) any { return floodBroadcast{payload: payload} }

func (p floodProtocol) Delivery(out any) (Delivery, bool) {
	d, ok := out.(floodDeliver)
	return Delivery{ID: d.id, Hops: d.hops, Payload: d.payload}, ok
}

func (p floodProtocol) PayloadMessage(msg any) (MessageID, bool) {
	m, ok := msg.(*floodMsg)
	if !ok {
		return MessageID{}, false
	}
	return m.ID, true
}

// undirected builds an adjacency list from edges.
func undirected(n int, edges [][2]int) [][]int {
	graph := make([][]int, n)
	for _, e := range edges {
		graph[e[0]] = append(graph[e[0]], e[1])
		graph[e[1]] = append(graph[e[1]], e[0])
	}
	return graph
}
