package engine

import (
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/wire"
)

// Test-only message types use codes 0x7Fxx, outside every range the
// project's packages use.
func init() {
	wire.ClaimRange(0x7F, "sim/engine tests")
	wire.Register(0x7F01, (*testMsg)(nil))
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
