package compose

import (
	"fmt"
	"testing"
	"time"

	"github.com/p2p-go/p2p/hyparview"
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/plumtree"
	"github.com/p2p-go/p2p/wire"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// recorder is a core for the composer's own tests: it records its inputs
// and answers each with the outputs its reply function gives.
type recorder struct {
	name     string
	log      *[]string
	reply    func(input any) []any
	outputs  []any
	deadline time.Time
}

func (r *recorder) Step(_ time.Time, input any) {
	*r.log = append(*r.log, fmt.Sprintf("%s<-%v", r.name, input))
	if r.reply != nil {
		r.outputs = append(r.outputs, r.reply(input)...)
	}
}

func (r *recorder) Drain(dst []any) []any {
	dst = append(dst, r.outputs...)
	r.outputs = r.outputs[:0]
	return dst
}

func (r *recorder) NextDeadline() (time.Time, bool) { return r.deadline, !r.deadline.IsZero() }

var _ overlay.Core = (*recorder)(nil)

// The work queue is FIFO: an output of part a that becomes an input of part
// b waits behind the inputs queued before it, and the outputs of one step
// are routed in order.
func TestInputsRunInFIFOOrder(t *testing.T) {
	var log []string
	var c Composer
	var b Part
	a := c.Add("a", &recorder{name: "a", log: &log, reply: func(in any) []any {
		return []any{"to-b:" + in.(string), "out:" + in.(string)}
	}}, func(out any) {
		if s := out.(string); s[:5] == "to-b:" {
			c.Input(b, s[5:])
			return
		}
		c.Emit(out)
	})
	b = c.Add("b", &recorder{name: "b", log: &log, reply: func(in any) []any { return []any{"b-out:" + in.(string)} }}, nil)
	c.Input(a, "1")
	c.Input(a, "2")
	c.Run(epoch)
	if got, want := fmt.Sprint(log), "[a<-1 a<-2 b<-1 b<-2]"; got != want {
		t.Fatalf("steps %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(c.Drain(nil)), "[out:1 out:2 b-out:1 b-out:2]"; got != want {
		t.Fatalf("outputs %s, want %s", got, want)
	}
	if outs := c.Drain(nil); len(outs) != 0 {
		t.Fatalf("a second drain gave %v", outs)
	}
}

// A received message goes to the part that owns its wire range; one of a
// range no part owns is refused.
func TestReceiveRoutesByRange(t *testing.T) {
	var log []string
	var c Composer
	c.Add("hyparview", &recorder{name: "hv", log: &log}, nil, wire.RangeHyParView)
	pt := c.Add("plumtree", &recorder{name: "pt", log: &log}, nil, wire.RangePlumtree)
	if !c.Receive(overlay.Received{Msg: &plumtree.Prune{}}) || !c.Receive(overlay.Received{Msg: &hyparview.KeepaliveMsg{}}) {
		t.Fatal("a message of an owned range was refused")
	}
	if c.Receive(overlay.Received{Msg: "not a wire message"}) {
		t.Fatal("a message no part owns was accepted")
	}
	c.Run(epoch)
	if len(log) != 2 || log[0][:4] != "pt<-" || log[1][:4] != "hv<-" {
		t.Fatalf("steps %v", log)
	}
	if owner, ok := c.Owner(&plumtree.Prune{}); !ok || owner != pt || c.Name(owner) != "plumtree" {
		t.Fatalf("Owner = %v, %v", owner, ok)
	}
}

// Replace lets a routing function merge an output into an earlier one of
// the same drain.
func TestReplaceMergesIntoAnEarlierOutput(t *testing.T) {
	var c Composer
	i := c.Emit(1)
	c.Emit("x")
	c.Replace(i, c.Output(i).(int)+2)
	if got := fmt.Sprint(c.Drain(nil)); got != "[3 x]" {
		t.Fatalf("outputs %s", got)
	}
}

// NextDeadline is the earliest of the parts' deadlines, and none when no
// part has one.
func TestNextDeadlineIsTheEarliest(t *testing.T) {
	var log []string
	var c Composer
	a := &recorder{name: "a", log: &log}
	b := &recorder{name: "b", log: &log}
	c.Add("a", a, nil)
	c.Add("b", b, nil)
	if _, ok := c.NextDeadline(); ok {
		t.Fatal("a deadline with none set")
	}
	a.deadline = epoch.Add(2 * time.Second)
	if at, ok := c.NextDeadline(); !ok || !at.Equal(a.deadline) {
		t.Fatalf("NextDeadline = %v, %v", at, ok)
	}
	b.deadline = epoch.Add(time.Second)
	if at, ok := c.NextDeadline(); !ok || !at.Equal(b.deadline) {
		t.Fatalf("NextDeadline = %v, %v", at, ok)
	}
}

// Two parts with one name, or one range routed to two parts, are
// programming errors.
func TestAddPanicsOnAConflict(t *testing.T) {
	var log []string
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Fatalf("%s did not panic", name)
			}
		}()
		f()
	}
	var c Composer
	c.Add("a", &recorder{name: "a", log: &log}, nil, wire.RangeKV)
	mustPanic("a repeated name", func() { c.Add("a", &recorder{log: &log}, nil) })
	mustPanic("a range owned twice", func() { c.Add("b", &recorder{log: &log}, nil, wire.RangeKV) })
	mustPanic("an empty name", func() { c.Add("", &recorder{log: &log}, nil) })
}

// A run that queued thousands of inputs, or whose part answered one with
// thousands of outputs, leaves no buffer of that size behind: a simulation
// runs a Composer per node.
func TestLargeRunsLeaveNoLargeBuffers(t *testing.T) {
	var log []string
	var c Composer
	fanOut := make([]any, 10*maxKept)
	for i := range fanOut {
		fanOut[i] = i
	}
	var b Part
	a := c.Add("a", &recorder{name: "a", log: &log, reply: func(any) []any { return fanOut }}, func(out any) { c.Input(b, out) })
	b = c.Add("b", &recorder{name: "b", log: &log}, nil)
	c.Input(a, "burst")
	c.Run(epoch)
	if len(log) != 1+len(fanOut) {
		t.Fatalf("%d steps, want %d", len(log), 1+len(fanOut))
	}
	if cap(c.queue) > maxKept || cap(c.scratch) > maxKept {
		t.Fatalf("the composer keeps a queue of capacity %d and a buffer of %d, want at most %d", cap(c.queue), cap(c.scratch), maxKept)
	}
	// Small runs keep their buffers, so that a step costs no allocation.
	c.Input(a, "again")
	fanOut = fanOut[:3]
	c.Run(epoch)
	c.Input(a, "once more")
	c.Run(epoch)
	if cap(c.queue) == 0 || cap(c.scratch) == 0 {
		t.Fatalf("a small run dropped its buffers: queue %d, scratch %d", cap(c.queue), cap(c.scratch))
	}
}
