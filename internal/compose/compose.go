package compose

import (
	"fmt"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/wire"
)

// Part names one part of a Composer, as [Composer.Add] returned it. It is
// one byte so that a Composer's range table (one Part per range) stays
// small: a simulator runs a Composer per node.
type Part uint8

// Composer joins cores into one: see the package documentation. The zero
// Composer has no parts; add them with [Composer.Add] before the first
// input. A Composer is a core itself: it has one owner and no goroutines.
type Composer struct {
	parts   []part
	router  wire.Router[Part]
	queue   []work
	outputs []any
	scratch []any
}

// part is one core of the composition.
type part struct {
	name  string
	core  overlay.Core
	route func(out any) // nil: every output is emitted
}

// work is one input waiting for one part.
type work struct {
	to    Part
	input any
}

// Add registers core under name, owning the received messages of ranges,
// and returns its Part. route is called with each of the core's outputs, in
// order, and decides where it goes (Emit or Input); a nil route emits every
// output. Add panics on a programming error: an empty or repeated name, or a
// range another part owns.
func (c *Composer) Add(name string, core overlay.Core, route func(out any), ranges ...wire.Range) Part {
	if name == "" {
		panic("compose: Add with an empty name")
	}
	for _, p := range c.parts {
		if p.name == name {
			panic(fmt.Sprintf("compose: part %q added twice", name))
		}
	}
	if len(c.parts) > 255 {
		panic("compose: more than 256 parts")
	}
	id := Part(len(c.parts))
	for _, r := range ranges {
		c.router.Add(r, id)
	}
	c.parts = append(c.parts, part{name: name, core: core, route: route})
	return id
}

// Name returns the name p was added under.
func (c *Composer) Name(p Part) string { return c.parts[p].name }

// Owner returns the part that owns msg's wire range, and false when no part
// does (or msg is not a registered message).
func (c *Composer) Owner(msg any) (Part, bool) { return c.router.Route(msg) }

// Input queues input for part p; [Composer.Run] steps it in FIFO order.
func (c *Composer) Input(p Part, input any) { c.queue = append(c.queue, work{to: p, input: input}) }

// Receive queues a received message (an overlay.Received, as the runtime
// handed it to the composition) for the part that owns its wire range, and
// reports whether one does (a message no part owns is dropped, and so is an
// input that is not an overlay.Received). The input is queued as it came:
// boxing the Received again would allocate once per message per layer.
func (c *Composer) Receive(input any) bool {
	in, ok := input.(overlay.Received)
	if !ok {
		return false
	}
	p, ok := c.router.Route(in.Msg)
	if ok {
		c.Input(p, input)
	}
	return ok
}

// Emit appends out to the composition's outputs and returns its index among
// the outputs not drained yet (see [Composer.Replace]).
func (c *Composer) Emit(out any) int {
	c.outputs = append(c.outputs, out)
	return len(c.outputs) - 1
}

// Output returns the undrained output at index i, as Emit numbered it.
func (c *Composer) Output(i int) any { return c.outputs[i] }

// Replace sets the undrained output at index i, as Emit numbered it: a
// routing function uses it to merge an output into an earlier one of the
// same drain.
func (c *Composer) Replace(i int, out any) { c.outputs[i] = out }

// Run steps the queued inputs in FIFO order, routing each step's outputs
// before the next input, until the queue is empty.
func (c *Composer) Run(now time.Time) {
	for i := 0; i < len(c.queue); i++ {
		w := c.queue[i]
		c.queue[i] = work{}
		p := &c.parts[w.to]
		p.core.Step(now, w.input)
		if p.route == nil {
			c.outputs = p.core.Drain(c.outputs)
			continue
		}
		outs := p.core.Drain(c.scratch[:0])
		c.scratch = nil
		for _, out := range outs {
			p.route(out)
		}
		clear(outs)
		c.scratch = outs[:0]
	}
	c.queue = c.queue[:0]
}

// Step queues input for part p and runs the queue: the common case of an
// input that one part takes.
func (c *Composer) Step(now time.Time, p Part, input any) {
	c.Input(p, input)
	c.Run(now)
}

// Drain appends the composition's outputs to dst and returns it, as
// overlay.Core's Drain.
func (c *Composer) Drain(dst []any) []any {
	dst = append(dst, c.outputs...)
	clear(c.outputs)
	c.outputs = c.outputs[:0]
	return dst
}

// NextDeadline returns the earliest of the parts' deadlines, as
// overlay.Core's NextDeadline.
func (c *Composer) NextDeadline() (time.Time, bool) {
	var at time.Time
	found := false
	for _, p := range c.parts {
		if t, ok := p.core.NextDeadline(); ok && (!found || t.Before(at)) {
			at, found = t, true
		}
	}
	return at, found
}
