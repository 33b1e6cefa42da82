package hyparview

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
)

// testInfo returns a distinct peer descriptor for a small integer.
func testInfo(i int) peer.Info {
	var id peer.ID
	id[0] = byte(i >> 8)
	id[1] = byte(i)
	id[31] = 0xaa
	return peer.Info{ID: id, Addr: fmt.Sprintf("peer-%d:7946", i)}
}

var testSelf = testInfo(1000)

// newTestCore returns a core for testSelf, after applying configure.
func newTestCore(t *testing.T, configure func(*Config)) *Core {
	t.Helper()
	cfg := Config{Self: testSelf, Seed: 7}
	if configure != nil {
		configure(&cfg)
	}
	core, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return core
}

// withActive makes the given peers active through high-priority NEIGHBOR
// requests and discards the outputs.
func withActive(c *Core, now time.Time, peers ...int) {
	for _, i := range peers {
		c.Step(now, overlay.Received{From: testInfo(i), Msg: &NeighborMsg{HighPriority: true}})
	}
	c.Drain(nil)
}

// sends returns the messages of type M sent in outputs, by recipient.
func sends[M any](outputs []any) map[peer.ID][]M {
	found := make(map[peer.ID][]M)
	for _, output := range outputs {
		if send, ok := output.(overlay.Send); ok {
			if msg, ok := send.Msg.(M); ok {
				found[send.To.ID] = append(found[send.To.ID], msg)
			}
		}
	}
	return found
}

func ids(infos []peer.Info) []peer.ID {
	var result []peer.ID
	for _, info := range infos {
		result = append(result, info.ID)
	}
	return result
}

func TestConfigDefaultsFollowThePaper(t *testing.T) {
	c := newTestCore(t, nil)
	want := Config{
		ActiveViewSize: 5, PassiveViewSize: 30, ActiveRandomWalkLength: 6, PassiveRandomWalkLength: 3,
		ShuffleActive: 3, ShufflePassive: 4, ShuffleTTL: 6, ShuffleInterval: 10 * time.Second,
		NeighborRetry: time.Second, KeepaliveInterval: time.Second, FailureTimeout: 4 * time.Second,
	}
	got := c.cfg
	got.Self, got.Seed, got.Logger = peer.Info{}, 0, nil
	if got != want {
		t.Fatalf("defaults:\n got %+v\nwant %+v", got, want)
	}
}

func TestConfigValidationNamesTheField(t *testing.T) {
	tests := []struct {
		name      string
		configure func(*Config)
		field     string
	}{
		{"zero self ID", func(c *Config) { c.Self.ID = peer.ID{} }, "Self.ID"},
		{"empty self address", func(c *Config) { c.Self.Addr = "" }, "Self.Addr"},
		{"long self address", func(c *Config) { c.Self.Addr = strings.Repeat("a", MaxAddrLen+1) }, "Self.Addr"},
		{"negative active view", func(c *Config) { c.ActiveViewSize = -1 }, "ActiveViewSize"},
		{"negative passive view", func(c *Config) { c.PassiveViewSize = -3 }, "PassiveViewSize"},
		{"walk too long", func(c *Config) { c.ActiveRandomWalkLength = 300 }, "ActiveRandomWalkLength"},
		{"PRWL above ARWL", func(c *Config) { c.ActiveRandomWalkLength, c.PassiveRandomWalkLength = 2, 3 }, "PassiveRandomWalkLength"},
		{"negative ka", func(c *Config) { c.ShuffleActive = -1 }, "ShuffleActive"},
		{"negative kp", func(c *Config) { c.ShufflePassive = -1 }, "ShufflePassive"},
		{"negative shuffle TTL", func(c *Config) { c.ShuffleTTL = -1 }, "ShuffleTTL"},
		{"negative shuffle interval", func(c *Config) { c.ShuffleInterval = -time.Second }, "ShuffleInterval"},
		{"negative retry", func(c *Config) { c.NeighborRetry = -time.Second }, "NeighborRetry"},
		{"negative keepalive", func(c *Config) { c.KeepaliveInterval = -time.Second }, "KeepaliveInterval"},
		{"failure timeout too short", func(c *Config) { c.FailureTimeout = 2 * time.Second }, "FailureTimeout"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			cfg := Config{Self: testSelf}
			test.configure(&cfg)
			_, err := New(cfg)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), test.field) {
				t.Fatalf("New = %v, want an ErrConfig naming %s", err, test.field)
			}
		})
	}
}

func TestContactAcceptsJoinerAndForwardsJoin(t *testing.T) {
	c := newTestCore(t, nil)
	withActive(c, epoch, 1, 2, 3)
	joiner := testInfo(50)
	c.Step(epoch, overlay.Received{From: joiner, Msg: &JoinMsg{}})
	out := c.Drain(nil)
	if !c.activeView.has(joiner.ID) {
		t.Fatalf("joiner not active: %v", c.ActiveView())
	}
	if !slices.Contains(out, any(overlay.Connect{Peer: joiner})) || !slices.Contains(out, any(NeighborUp{Peer: joiner})) {
		t.Fatalf("no Connect/NeighborUp for the joiner in %v", out)
	}
	if got := sends[*NeighborMsg](out)[joiner.ID]; len(got) != 1 || !got[0].HighPriority {
		t.Fatalf("joiner got NEIGHBOR %v, want one high-priority request", got)
	}
	forwards := sends[*ForwardJoinMsg](out)
	for _, i := range []int{1, 2, 3} {
		got := forwards[testInfo(i).ID]
		if len(got) != 1 || got[0].NewNode != joiner || got[0].TTL != DefaultActiveRandomWalkLength {
			t.Errorf("active peer %d got FORWARDJOIN %v, want one for the joiner with TTL ARWL", i, got)
		}
	}
	if len(forwards) != 3 {
		t.Errorf("FORWARDJOIN sent to %d peers, want the 3 other active peers", len(forwards))
	}
}

func TestForwardJoinWalk(t *testing.T) {
	joiner := testInfo(60)
	tests := []struct {
		name        string
		active      []int
		ttl         uint8
		wantActive  bool
		wantPassive bool
		wantForward uint8 // TTL of the forwarded walk, 0 for none
	}{
		{"TTL 0 ends the walk in the active view", []int{1, 2, 3}, 0, true, false, 0},
		{"only active peer is the sender", []int{1}, 5, true, false, 0},
		{"TTL equal to PRWL adds to the passive view", []int{1, 2, 3}, DefaultPassiveRandomWalkLength, false, true, DefaultPassiveRandomWalkLength - 1},
		{"other TTLs only forward", []int{1, 2, 3}, 5, false, false, 4},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			c := newTestCore(t, nil)
			withActive(c, epoch, test.active...)
			c.Step(epoch, overlay.Received{From: testInfo(1), Msg: &ForwardJoinMsg{NewNode: joiner, TTL: test.ttl}})
			out := c.Drain(nil)
			if got := c.activeView.has(joiner.ID); got != test.wantActive {
				t.Errorf("joiner active = %v, want %v", got, test.wantActive)
			}
			if got := c.passiveView.has(joiner.ID); got != test.wantPassive {
				t.Errorf("joiner passive = %v, want %v", got, test.wantPassive)
			}
			if test.wantActive {
				if got := sends[*NeighborMsg](out)[joiner.ID]; len(got) != 1 || !got[0].HighPriority {
					t.Errorf("joiner got %v, want a high-priority NEIGHBOR", got)
				}
			}
			forwards := sends[*ForwardJoinMsg](out)
			if test.wantForward == 0 {
				if len(forwards) != 0 {
					t.Errorf("walk forwarded: %v", forwards)
				}
				return
			}
			if len(forwards) != 1 {
				t.Fatalf("walk forwarded to %d peers, want 1", len(forwards))
			}
			for to, msgs := range forwards {
				if to == testInfo(1).ID {
					t.Errorf("walk went back to its sender")
				}
				if msgs[0].TTL != test.wantForward {
					t.Errorf("forwarded TTL %d, want %d", msgs[0].TTL, test.wantForward)
				}
			}
		})
	}
}

func TestNeighborPriority(t *testing.T) {
	tests := []struct {
		name       string
		active     []int
		high       bool
		wantAccept bool
		wantEvict  bool
	}{
		{"low priority accepted with room", []int{1, 2}, false, true, false},
		{"low priority rejected when full", []int{1, 2, 3, 4, 5}, false, false, false},
		{"high priority accepted with room", []int{1, 2}, true, true, false},
		{"high priority evicts when full", []int{1, 2, 3, 4, 5}, true, true, true},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			c := newTestCore(t, nil)
			withActive(c, epoch, test.active...)
			requester := testInfo(70)
			c.Step(epoch, overlay.Received{From: requester, Msg: &NeighborMsg{HighPriority: test.high}})
			out := c.Drain(nil)
			replies := sends[*NeighborReplyMsg](out)[requester.ID]
			if len(replies) != 1 || replies[0].Accept != test.wantAccept {
				t.Fatalf("reply %v, want Accept=%v", replies, test.wantAccept)
			}
			if got := c.activeView.has(requester.ID); got != test.wantAccept {
				t.Errorf("requester active = %v, want %v", got, test.wantAccept)
			}
			disconnects := sends[*DisconnectMsg](out)
			if !test.wantEvict {
				if len(disconnects) != 0 {
					t.Errorf("unexpected DISCONNECT to %v", disconnects)
				}
				return
			}
			if len(disconnects) != 1 {
				t.Fatalf("DISCONNECT sent to %d peers, want 1 evicted peer", len(disconnects))
			}
			for victim := range disconnects {
				if c.activeView.has(victim) || !c.passiveView.has(victim) {
					t.Errorf("evicted peer should move from the active to the passive view")
				}
			}
			if c.activeView.len() != DefaultActiveViewSize {
				t.Errorf("active view has %d peers, want %d", c.activeView.len(), DefaultActiveViewSize)
			}
		})
	}
}

func TestJoinedEmittedOnceOnFirstNeighbor(t *testing.T) {
	c := newTestCore(t, nil)
	c.Step(epoch, Join{Contacts: []string{"contact:1"}})
	out := c.Drain(nil)
	if got := sends[*JoinMsg](out); len(got[peer.ID{}]) != 1 {
		t.Fatalf("JOIN sends %v, want one to the contact address", got)
	}
	for i := 1; i <= 3; i++ {
		c.Step(epoch, overlay.Received{From: testInfo(i), Msg: &NeighborMsg{HighPriority: true}})
	}
	count := 0
	for _, output := range c.Drain(nil) {
		if _, ok := output.(Joined); ok {
			count++
		}
	}
	if count != 1 {
		t.Fatalf("Joined emitted %d times, want 1", count)
	}
}

// A node whose JOIN is still unanswered may already be the contact of a
// newcomer. That newcomer is not the network: the node must not report
// Joined (its broadcasts would reach only the newcomer) and must go on
// sending JOIN to its contact until the contact answers.
func TestJoinedWaitsForTheNetworkNotForNewcomers(t *testing.T) {
	c := newTestCore(t, nil)
	c.Step(epoch, Join{Contacts: []string{"contact:1"}})
	c.Drain(nil)
	joined := func(out []any) bool {
		for _, output := range out {
			if _, ok := output.(Joined); ok {
				return true
			}
		}
		return false
	}
	c.Step(epoch, overlay.Received{From: testInfo(1), Msg: &JoinMsg{}})
	if out := c.Drain(nil); joined(out) {
		t.Fatal("Joined emitted when a newcomer joined through the node")
	}
	// The newcomer answers the NEIGHBOR that accepted it.
	c.Step(epoch, overlay.Received{From: testInfo(1), Msg: &NeighborReplyMsg{Accept: true}})
	if out := c.Drain(nil); joined(out) {
		t.Fatal("Joined emitted when the newcomer answered the node's NEIGHBOR")
	}
	if ids(c.ActiveView())[0] != testInfo(1).ID {
		t.Fatalf("newcomer not taken into the active view: %v", c.ActiveView())
	}
	now := epoch.Add(c.cfg.NeighborRetry)
	c.Step(now, overlay.Tick{})
	if got := sends[*JoinMsg](c.Drain(nil)); len(got[peer.ID{}]) != 1 {
		t.Fatalf("JOIN sends after NeighborRetry %v, want one more to the contact", got)
	}
	c.Step(now, overlay.Received{From: testInfo(2), Msg: &NeighborMsg{HighPriority: true}})
	if out := c.Drain(nil); !joined(out) {
		t.Fatal("Joined not emitted when the contact answered")
	}
	c.Step(now.Add(c.cfg.NeighborRetry), overlay.Tick{})
	if got := sends[*JoinMsg](c.Drain(nil)); len(got) != 0 {
		t.Fatalf("JOIN sent again after joining: %v", got)
	}
}

// A newcomer that joined through a node whose own JOIN was lost walks its
// FORWARDJOIN back through that node, and other newcomers fill its active
// view: neither is the network. Taken for joined (by the end of the walk)
// or left without a free slot, the node stopped asking its contact, and
// every later join through it grew an island that never met the network
// (the simulator with 1 % message loss lost 3 % of the nodes that way).
func TestJoinedNotFooledByWalksOfItsOwnNewcomers(t *testing.T) {
	c := newTestCore(t, nil)
	c.Step(epoch, Join{Contacts: []string{"contact:1"}})
	c.Drain(nil) // the JOIN is lost
	c.Step(epoch, overlay.Received{From: testInfo(1), Msg: &JoinMsg{}})
	c.Step(epoch, overlay.Received{From: testInfo(1), Msg: &NeighborReplyMsg{Accept: true}})
	// The newcomer's own newcomer's walk ends here (one active peer).
	c.Step(epoch, overlay.Received{From: testInfo(1), Msg: &ForwardJoinMsg{NewNode: testInfo(2), TTL: 6}})
	out := c.Drain(nil)
	if len(sends[*NeighborMsg](out)[testInfo(2).ID]) != 1 {
		t.Fatalf("walker not asked to be a neighbour: %v", out)
	}
	for _, output := range out {
		if _, ok := output.(Joined); ok {
			t.Fatal("Joined emitted at the end of a walk from the node's own newcomer")
		}
	}
	// More newcomers fill the active view.
	for i := 3; i <= 5; i++ {
		c.Step(epoch, overlay.Received{From: testInfo(i), Msg: &JoinMsg{}})
	}
	c.Drain(nil)
	if n := len(c.ActiveView()); n != c.cfg.ActiveViewSize {
		t.Fatalf("active view of %d, want it full (%d)", n, c.cfg.ActiveViewSize)
	}
	now := epoch.Add(c.cfg.NeighborRetry)
	c.Step(now, overlay.Tick{})
	if got := sends[*JoinMsg](c.Drain(nil)); len(got[peer.ID{}]) != 1 {
		t.Fatalf("JOIN sends after NeighborRetry with a full view %v, want one more to the contact", got)
	}
}

func TestKeepalivesSkippedOnBusyLinks(t *testing.T) {
	c := newTestCore(t, nil)
	withActive(c, epoch, 1, 2)
	busy, idle := testInfo(1), testInfo(2)
	pings := map[peer.ID]int{}
	for now := epoch; now.Before(epoch.Add(3500 * time.Millisecond)); now = now.Add(250 * time.Millisecond) {
		c.Heard(now, busy.ID)
		c.Step(now, overlay.Tick{})
		if !now.After(epoch.Add(2 * time.Second)) {
			c.Step(now, overlay.Received{From: idle, Msg: &KeepaliveMsg{Reply: true}})
		}
		for id, msgs := range sends[*KeepaliveMsg](c.Drain(nil)) {
			pings[id] += len(msgs)
		}
	}
	if pings[busy.ID] != 0 {
		t.Errorf("busy peer pinged %d times, want 0", pings[busy.ID])
	}
	if pings[idle.ID] == 0 {
		t.Errorf("idle peer never pinged")
	}
	if !c.activeView.has(busy.ID) || !c.activeView.has(idle.ID) {
		t.Errorf("a live peer was dropped: %v", c.ActiveView())
	}
}

func TestOneSidedLinkIsClosedByKeepalive(t *testing.T) {
	n := newTestNet(t, 3)
	a, b, c := n.add(), n.add(), n.add()
	n.join(a, nil)
	n.join(b, a)
	n.join(c, a)
	n.run(time.Second)
	if !a.core.activeView.has(b.info.ID) || !b.core.activeView.has(a.info.ID) || b.core.activeView.len() < 2 {
		t.Fatalf("unexpected views: a %v, b %v", a.core.ActiveView(), b.core.ActiveView())
	}
	// b drops a without telling it (as if its DISCONNECT were lost).
	b.core.removeActive(a.info.ID)
	b.core.Drain(nil)
	n.run(2*DefaultKeepaliveInterval + 100*time.Millisecond)
	if a.core.activeView.has(b.info.ID) && !b.core.activeView.has(a.info.ID) {
		t.Fatalf("one-sided link survived two keepalive intervals")
	}
	if problems := n.persistentAsymmetries(); len(problems) != 0 {
		t.Fatalf("asymmetric views: %v", problems)
	}
}

func TestRepairPriorityDependsOnActiveViewSize(t *testing.T) {
	for active := 0; active < DefaultActiveViewSize; active++ {
		t.Run(fmt.Sprint(active, " active"), func(t *testing.T) {
			c := newTestCore(t, nil)
			var peers []int
			for i := 1; i <= active; i++ {
				peers = append(peers, i)
			}
			withActive(c, epoch, peers...)
			// A passive peer, then the failure of another active one.
			c.Step(epoch, overlay.Received{From: testInfo(50), Msg: &NeighborMsg{HighPriority: true}})
			c.Step(epoch, overlay.Received{From: testInfo(50), Msg: &DisconnectMsg{}})
			out := c.Drain(nil)
			requests := sends[*NeighborMsg](out)[testInfo(50).ID]
			if len(requests) != 1 {
				t.Fatalf("got %d NEIGHBOR requests to the passive peer, want 1", len(requests))
			}
			wantHigh := 2*active < DefaultActiveViewSize
			if requests[0].HighPriority != wantHigh {
				t.Fatalf("with %d active peers: HighPriority %v, want %v", active, requests[0].HighPriority, wantHigh)
			}
		})
	}
}

func TestLeaveSendsDisconnect(t *testing.T) {
	n := newTestNet(t, 4)
	n.grow(20, 50*time.Millisecond)
	n.run(5 * time.Second)
	leaver := n.order[7]
	neighbours := leaver.core.ActiveView()
	if len(neighbours) == 0 {
		t.Fatalf("leaver has no neighbours")
	}
	leaver.core.Step(n.now, Leave{})
	out := leaver.core.Drain(nil)
	disconnects := sends[*DisconnectMsg](out)
	for _, info := range neighbours {
		if msgs := disconnects[info.ID]; len(msgs) != 1 || !msgs[0].Leave {
			t.Errorf("neighbour %s got %v, want one DISCONNECT with Leave", info, msgs)
		}
		if !slices.Contains(out, any(overlay.Disconnect{Peer: info.ID})) || !slices.Contains(out, any(NeighborDown{Peer: info.ID})) {
			t.Errorf("no Disconnect/NeighborDown output for %s", info)
		}
	}
	if _, ok := leaver.core.NextDeadline(); ok {
		t.Errorf("a core that left still has a deadline")
	}
	for _, output := range out {
		leaver.core.Step(n.now, output) // nothing a departed core receives has any effect
	}
	if len(leaver.core.Drain(nil)) != 0 || len(leaver.core.ActiveView()) != 0 {
		t.Errorf("a core that left still acts")
	}
	n.deliverNow(leaver, out)
	n.crash(leaver)
	n.run(100 * time.Millisecond)
	for _, info := range neighbours {
		neighbour := n.nodes[info.ID].core
		if neighbour.activeView.has(leaver.info.ID) || neighbour.passiveView.has(leaver.info.ID) {
			t.Errorf("%s still knows the departed node", info)
		}
	}
	n.run(3 * time.Second)
	if problems := n.persistentAsymmetries(); len(problems) != 0 || n.components() != 1 {
		t.Errorf("after the leave: %d components, asymmetries %v", n.components(), problems)
	}
}

// A node whose contacts cannot be reached (its JOIN fails, rather than
// going unanswered) has no other network to join than the one growing
// through it: the end of a newcomer's walk joins it, as before.
func TestJoinedByAWalkWhenTheContactIsUnreachable(t *testing.T) {
	c := newTestCore(t, nil)
	c.Step(epoch, Join{Contacts: []string{"contact:1"}})
	c.Drain(nil)
	c.Step(epoch, overlay.LinkDown{Addr: "contact:1", Err: overlay.ErrDialFailed})
	c.Step(epoch, overlay.Received{From: testInfo(1), Msg: &JoinMsg{}})
	c.Step(epoch, overlay.Received{From: testInfo(1), Msg: &ForwardJoinMsg{NewNode: testInfo(2), TTL: 6}})
	joined := false
	for _, output := range c.Drain(nil) {
		if _, ok := output.(Joined); ok {
			joined = true
		}
	}
	if !joined {
		t.Fatal("Joined not emitted at the end of a walk while the contact is unreachable")
	}
}
