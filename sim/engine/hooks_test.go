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
