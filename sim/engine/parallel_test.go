package engine

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
)

// firstCopy is relayCore's delivery output: the first copy of a message.
type firstCopy struct{ seq int }

// relayCore floods testMsgs: the first copy of each is delivered (a
// firstCopy output), relayed to three peers chosen from a hash of the node
// and the message, and acknowledged to one peer by a timer 2 ms later (a
// tick due within the window of the step that set it).
type relayCore struct {
	self    int
	peers   []overlay.Send // one addressed Send per node, index = node
	seen    map[int]bool
	pending []int // messages whose acknowledgement is due at deadline
	outs    []any
	due     time.Time
	log     []string
}

func (c *relayCore) Step(now time.Time, input any) {
	switch in := input.(type) {
	case overlay.Received:
		m := in.Msg.(*testMsg)
		c.log = append(c.log, fmt.Sprintf("%d %s %d", now.UnixNano(), in.From.Addr, m.Seq))
		if c.seen[m.Seq] {
			return
		}
		c.seen[m.Seq] = true
		c.outs = append(c.outs, firstCopy{m.Seq})
		if m.Seq >= 1_000_000 {
			return // an acknowledgement is not relayed
		}
		c.relay(m.Seq)
		c.pending = append(c.pending, m.Seq)
		if c.due.IsZero() {
			c.due = now.Add(2 * time.Millisecond)
		}
	case overlay.LinkDown:
		c.log = append(c.log, fmt.Sprintf("%d down %s", now.UnixNano(), in.Addr))
	case overlay.Tick:
		c.log = append(c.log, fmt.Sprintf("%d tick", now.UnixNano()))
		for _, seq := range c.pending {
			send := c.peers[(c.self+seq)%len(c.peers)]
			send.Msg = &testMsg{Seq: 1_000_000 + seq*1000 + c.self}
			c.outs = append(c.outs, send)
		}
		c.pending, c.due = c.pending[:0], time.Time{}
	case int: // start a broadcast
		c.seen[in] = true
		c.relay(in)
	}
}

// relay sends message seq to three peers.
func (c *relayCore) relay(seq int) {
	h := uint64(c.self*7919+seq) * 0x9e3779b97f4a7c15
	for range 3 {
		h = h*6364136223846793005 + 1442695040888963407
		to := int(h>>33) % len(c.peers)
		if to != c.self {
			send := c.peers[to]
			send.Msg = &testMsg{Seq: seq}
			c.outs = append(c.outs, send)
		}
	}
}

func (c *relayCore) Drain(dst []any) []any {
	dst = append(dst, c.outs...)
	clear(c.outs)
	c.outs = c.outs[:0]
	return dst
}

func (c *relayCore) NextDeadline() (time.Time, bool) { return c.due, !c.due.IsZero() }

// floodRun floods 30 messages through 80 relayCores with the given
// workers, a few nodes killed before and during the run, and returns what
// each core received, what the observer saw and the event count.
func floodRun(t *testing.T, workers int, latency Latency, loss float64) (logs [][]string, observed []string, events uint64) {
	s, logs, observed := floodSim(t, workers, latency, loss)
	if workers >= 2 && s.par.shared == 0 {
		t.Fatalf("%d workers: no window was stepped on several goroutines", workers)
	}
	return logs, observed, s.Events()
}

// floodSim is floodRun, returning the simulation.
func floodSim(t *testing.T, workers int, latency Latency, loss float64) (s *Sim, logs [][]string, observed []string) {
	t.Helper()
	const n = 80
	cfg := Config{Seed: 3, Latency: latency, Loss: loss, Workers: workers,
		Observer: func(now time.Time, node int, out any) {
			observed = append(observed, fmt.Sprintf("%d %d %d", s.Elapsed(), node, out.(firstCopy).seq))
		}}
	var err error
	s, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cores := make([]*relayCore, n)
	for i := range n {
		if _, err := s.AddNode(func(id Identity) (overlay.Core, error) {
			cores[i] = &relayCore{self: i, seen: map[int]bool{}}
			return cores[i], nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cores {
		for j := range n {
			c.peers = append(c.peers, overlay.Send{To: s.Info(j)})
		}
	}
	s.Kill(5)
	for k := range 30 {
		s.After(time.Duration(k)*7*time.Millisecond, func() { s.Step((k*13)%n, k) })
	}
	s.After(100*time.Millisecond, func() { s.Kill(17) })
	s.RunFor(2 * time.Second)
	for _, c := range cores {
		logs = append(logs, c.log)
	}
	return s, logs, observed
}

// TestWindowedEngineIsTheSameWhateverTheWorkers floods messages through
// relaying cores on the windowed engine with 2, 3 and 4 workers: every core
// receives the same messages at the same times in the same order, the
// observer sees the same deliveries in the same order, and the event counts
// agree. With jittered latencies (no two events at one instant) the
// windowed run is also the sequential one, event for event.
func TestWindowedEngineIsTheSameWhateverTheWorkers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		latency Latency
		loss    float64
	}{
		{"fixed", FixedLatency(20 * time.Millisecond), 0},
		{"uniform with loss", UniformLatency(5*time.Millisecond, 50*time.Millisecond), 0.05},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs, observed, events := floodRun(t, 2, tc.latency, tc.loss)
			if len(observed) < 1000 {
				t.Fatalf("only %d deliveries observed", len(observed))
			}
			for _, workers := range []int{3, 4} {
				l, o, e := floodRun(t, workers, tc.latency, tc.loss)
				for i := range logs {
					if !slices.Equal(l[i], logs[i]) {
						t.Fatalf("%d workers: node %d received differently", workers, i)
					}
				}
				if !slices.Equal(o, observed) || e != events {
					t.Fatalf("%d workers: %d observations and %d events, want %d and %d", workers, len(o), e, len(observed), events)
				}
			}
			if tc.latency.Kind != LatencyUniform {
				return
			}
			l, o, _ := floodRun(t, 0, tc.latency, tc.loss)
			for i := range logs {
				if !slices.Equal(l[i], logs[i]) {
					t.Fatalf("sequential: node %d received differently", i)
				}
			}
			if !slices.Equal(o, observed) {
				t.Fatal("sequential: the observer saw other deliveries")
			}
		})
	}
}

// TestWindowsStopAtLimitsAndCallbacks checks the windowed engine's bounds:
// RunFor processes what is due at its limit and nothing later, and a
// callback runs between the deliveries of its instant in schedule order,
// seeing the clock at that instant.
func TestWindowsStopAtLimitsAndCallbacks(t *testing.T) {
	s, cores := newScriptSim(t, Config{Seed: 1, Workers: 2}, 3)
	start := s.Now()
	s.Step(0, emit{[]any{sendTo(s, 1, 1)}}) // due at 20 ms
	var seen []int
	s.At(start.Add(20*time.Millisecond), func() {
		seen = append(seen, cores[1].received()...)
		if s.Elapsed() != 20*time.Millisecond {
			t.Errorf("callback at %v, want 20ms", s.Elapsed())
		}
		s.Step(2, emit{[]any{sendTo(s, 1, 2)}}) // due at 40 ms
	})
	s.RunFor(20*time.Millisecond - 1)
	if got := cores[1].received(); len(got) != 0 {
		t.Fatalf("received %v before the message was due", got)
	}
	s.RunFor(1)
	if !slices.Equal(seen, []int{1}) || !slices.Equal(cores[1].received(), []int{1}) {
		t.Fatalf("callback saw %v, node 1 received %v; want the delivery scheduled first, then the callback", seen, cores[1].received())
	}
	s.RunFor(20 * time.Millisecond)
	if got := cores[1].received(); !slices.Equal(got, []int{1, 2}) || s.Elapsed() != 40*time.Millisecond {
		t.Fatalf("received %v at %v, want [1 2] at 40ms", got, s.Elapsed())
	}
}
