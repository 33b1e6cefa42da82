package engine

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
)

// Config.Drop sees every message sent and loses those it returns true for,
// counted as losses; the others arrive in order.
func TestDropHookLosesWhatItChooses(t *testing.T) {
	var seen []int
	s, cores := newScriptSim(t, Config{Seed: 1, Drop: func(_ time.Time, from, to int, msg any) bool {
		m := msg.(*testMsg)
		if from != 0 || to != 1 {
			t.Errorf("hook saw %d -> %d, want 0 -> 1", from, to)
		}
		seen = append(seen, m.Seq)
		return m.Seq%2 == 0
	}}, 2)
	s.Step(0, emit{[]any{sendTo(s, 1, 1), sendTo(s, 1, 2), sendTo(s, 1, 3), sendTo(s, 1, 4)}})
	s.RunFor(time.Second)
	if !slices.Equal(seen, []int{1, 2, 3, 4}) {
		t.Fatalf("hook saw %v", seen)
	}
	if got := cores[1].received(); !slices.Equal(got, []int{1, 3}) {
		t.Fatalf("received %v, want [1 3]", got)
	}
	if s.Lost() != 2 || s.TotalStats().MessagesSent != 4 {
		t.Fatalf("lost %d of %d sent, want 2 of 4", s.Lost(), s.TotalStats().MessagesSent)
	}
}

// Sim.Send sends on a node's behalf as its core would, and does nothing for
// a dead node.
func TestSendOnBehalfOfANode(t *testing.T) {
	s, cores := newScriptSim(t, Config{Seed: 1, Latency: FixedLatency(10 * time.Millisecond)}, 3)
	s.Send(0, sendTo(s, 1, 7))
	s.Kill(2)
	s.Send(2, sendTo(s, 1, 8))
	s.RunFor(time.Second)
	if got := cores[1].received(); !slices.Equal(got, []int{7}) {
		t.Fatalf("received %v, want [7]", got)
	}
	if from := cores[1].steps[0].input.(overlay.Received).From; from != s.Info(0) {
		t.Fatalf("sender %s, want %s", from, s.Info(0))
	}
}

// AddNodeWithKey gives the node the caller's key, messages reach it by that
// key's ID, and an ID used twice is refused.
func TestAddNodeWithKey(t *testing.T) {
	s, _ := newScriptSim(t, Config{Seed: 1}, 1)
	key, err := peer.KeyFromSeed(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	var got Identity
	core := &scriptCore{}
	i, err := s.AddNodeWithKey(key, func(id Identity) (overlay.Core, error) { got = id; return core, nil })
	if err != nil {
		t.Fatal(err)
	}
	if got.Key != key || got.Info.ID != key.ID() || s.Lookup(key.ID()) != i || s.Key(i) != key {
		t.Fatalf("node %d has identity %+v, want key %s", i, got.Info, key.ID())
	}
	s.Step(0, emit{[]any{overlay.Send{To: peer.Info{ID: key.ID()}, Msg: &testMsg{Seq: 1}}}})
	s.RunFor(time.Second)
	if !slices.Equal(core.received(), []int{1}) {
		t.Fatalf("node with the given key received %v", core.received())
	}
	if _, err := s.AddNodeWithKey(key, func(Identity) (overlay.Core, error) { return &scriptCore{}, nil }); err == nil {
		t.Fatal("a second node with the same key was added")
	}
}

// Crash modes: CrashReset tells the keepers, CrashRefusing tells no one but
// refuses sends after the dial timeout, CrashSilent tells no one and
// swallows sends and dials.
func TestCrashModes(t *testing.T) {
	for _, tc := range []struct {
		mode      CrashMode
		linkDowns int // at the keeper: the reset, then the send's and dial's failures
	}{
		{CrashReset, 3},
		{CrashRefusing, 2},
		{CrashSilent, 0},
	} {
		s, cores := newScriptSim(t, Config{Seed: 1, Latency: FixedLatency(10 * time.Millisecond)}, 2)
		s.Step(0, emit{[]any{overlay.Connect{Peer: s.Info(1)}}})
		s.Crash(1, tc.mode)
		s.RunFor(time.Second)
		s.Step(0, emit{[]any{sendTo(s, 1, 1), overlay.Connect{Peer: s.Info(1)}}})
		s.RunFor(time.Second)
		if got := len(cores[0].linkDowns()); got != tc.linkDowns {
			t.Errorf("mode %d: keeper got %d LinkDowns, want %d", tc.mode, got, tc.linkDowns)
		}
	}
}

// Restart gives a dead node a new core with the same identity, which then
// receives what is sent to it; restarting a live node fails.
func TestRestartKeepsTheIdentity(t *testing.T) {
	s, _ := newScriptSim(t, Config{Seed: 1}, 2)
	before := s.Info(1)
	if err := s.Restart(1, func(Identity) (overlay.Core, error) { return &scriptCore{}, nil }); err == nil {
		t.Fatal("a live node was restarted")
	}
	s.Kill(1)
	var got Identity
	core := &scriptCore{}
	if err := s.Restart(1, func(id Identity) (overlay.Core, error) { got = id; return core, nil }); err != nil {
		t.Fatal(err)
	}
	if got.Info != before || got.Key != s.Key(1) || !s.Alive(1) || s.LiveCount() != 2 || s.Core(1) != core {
		t.Fatalf("restarted as %+v (alive %v, %d live), want %s", got.Info, s.Alive(1), s.LiveCount(), before)
	}
	s.Step(0, emit{[]any{sendTo(s, 1, 3)}})
	s.RunFor(time.Second)
	if !slices.Equal(core.received(), []int{3}) {
		t.Fatalf("restarted node received %v", core.received())
	}
}

// A node's clock skew shifts the time its core reads, and its deadlines
// are read on that clock.
func TestClockSkewShiftsWhatTheCoreReads(t *testing.T) {
	s, cores := newScriptSim(t, Config{Seed: 1}, 2)
	s.SetClockSkew(1, 300*time.Millisecond)
	s.Step(0, emit{})
	s.Step(1, emit{})
	if a, b := cores[0].steps[0].at, cores[1].steps[0].at; b.Sub(a) != 300*time.Millisecond {
		t.Fatalf("skewed node read %v, the other %v: want 300ms apart", b, a)
	}
	deadline := cores[1].steps[0].at.Add(time.Second) // on node 1's clock
	cores[1].onTick = func(c *scriptCore, _ time.Time) { c.deadline = time.Time{} }
	s.Step(1, setDeadline{deadline})
	s.RunFor(2 * time.Second)
	ticks := cores[1].ticks()
	if len(ticks) != 1 || !ticks[0].Equal(deadline) {
		t.Fatalf("ticks at %v on the node's clock, want one at %v", ticks, deadline)
	}
}

// What was in flight to a node when it crashed is lost, even if it would
// arrive after the node restarted.
func TestRestartLosesWhatWasInFlight(t *testing.T) {
	s, _ := newScriptSim(t, Config{Seed: 1, Latency: FixedLatency(100 * time.Millisecond)}, 2)
	s.Step(0, emit{[]any{sendTo(s, 1, 1)}})
	s.Kill(1)
	core := &scriptCore{}
	if err := s.Restart(1, func(Identity) (overlay.Core, error) { return core, nil }); err != nil {
		t.Fatal(err)
	}
	s.Step(0, emit{[]any{sendTo(s, 1, 2)}})
	s.RunFor(time.Second)
	if !slices.Equal(core.received(), []int{2}) {
		t.Fatalf("restarted node received %v, want [2]", core.received())
	}
}
