package hyparview

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
)

// stateOf captures what a message may not change when it is refused.
type coreState struct {
	active, passive []peer.Info
	pending         int
	shuffleAwaiting bool
}

func stateOf(c *Core) coreState {
	return coreState{c.ActiveView(), c.PassiveView(), len(c.pendingNeighbors), c.shuffleAwaiting}
}

func (s coreState) equal(other coreState) bool {
	return slices.Equal(s.active, other.active) && slices.Equal(s.passive, other.passive) &&
		s.pending == other.pending && s.shuffleAwaiting == other.shuffleAwaiting
}

func TestMalformedMessagesAreIgnored(t *testing.T) {
	active := testInfo(1)
	stranger := testInfo(90)
	longAddr := peer.Info{ID: testInfo(91).ID, Addr: strings.Repeat("x", MaxAddrLen+1)}
	noAddr := peer.Info{ID: testInfo(92).ID}
	many := func(count int) []peer.Info {
		var list []peer.Info
		for i := 0; i < count; i++ {
			list = append(list, testInfo(100+i))
		}
		return list
	}
	tests := []struct {
		name string
		from peer.Info
		msg  any
	}{
		{"sender with zero ID", peer.Info{Addr: "x:1"}, &NeighborMsg{HighPriority: true}},
		{"sender is this node", testSelf, &NeighborMsg{HighPriority: true}},
		{"sender without address", noAddr, &JoinMsg{}},
		{"sender address too long", longAddr, &JoinMsg{}},
		{"nil JOIN", stranger, (*JoinMsg)(nil)},
		{"nil FORWARDJOIN", active, (*ForwardJoinMsg)(nil)},
		{"nil DISCONNECT", active, (*DisconnectMsg)(nil)},
		{"nil NEIGHBOR", stranger, (*NeighborMsg)(nil)},
		{"nil NEIGHBORREPLY", stranger, (*NeighborReplyMsg)(nil)},
		{"nil SHUFFLE", active, (*ShuffleMsg)(nil)},
		{"nil SHUFFLEREPLY", stranger, (*ShuffleReplyMsg)(nil)},
		{"nil KEEPALIVE", active, (*KeepaliveMsg)(nil)},
		{"nil message", active, nil},
		{"foreign message", active, "not a hyparview message"},
		{"FORWARDJOIN with zero new node", active, &ForwardJoinMsg{NewNode: peer.Info{Addr: "x:1"}, TTL: 0}},
		{"FORWARDJOIN with long address", active, &ForwardJoinMsg{NewNode: longAddr, TTL: 0}},
		{"FORWARDJOIN with TTL above ARWL", active, &ForwardJoinMsg{NewNode: stranger, TTL: DefaultActiveRandomWalkLength + 1}},
		{"FORWARDJOIN from a non-neighbour", stranger, &ForwardJoinMsg{NewNode: testInfo(93), TTL: 0}},
		{"FORWARDJOIN announcing this node", active, &ForwardJoinMsg{NewNode: testSelf, TTL: 0}},
		{"SHUFFLE from a non-neighbour", stranger, &ShuffleMsg{Origin: stranger, TTL: 0, Peers: many(2)}},
		{"SHUFFLE with zero origin", active, &ShuffleMsg{Origin: peer.Info{Addr: "x:1"}, Peers: many(2)}},
		{"SHUFFLE with TTL above ShuffleTTL", active, &ShuffleMsg{Origin: stranger, TTL: 200, Peers: many(2)}},
		{"SHUFFLE with too many peers", active, &ShuffleMsg{Origin: stranger, Peers: many(DefaultShuffleActive + DefaultShufflePassive + 1)}},
		{"SHUFFLE with a zero peer", active, &ShuffleMsg{Origin: stranger, Peers: []peer.Info{testInfo(94), {Addr: "x:1"}}}},
		{"SHUFFLE with a long address", active, &ShuffleMsg{Origin: stranger, Peers: []peer.Info{longAddr}}},
		{"unsolicited SHUFFLEREPLY", stranger, &ShuffleReplyMsg{Peers: many(3)}},
		{"DISCONNECT from a non-neighbour", stranger, &DisconnectMsg{}},
		{"unsolicited NEIGHBORREPLY reject", stranger, &NeighborReplyMsg{Accept: false}},
		{"KEEPALIVE reply from a non-neighbour", stranger, &KeepaliveMsg{Reply: true}},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			c := newTestCore(t, nil)
			withActive(c, epoch, 1, 2, 3)
			c.Step(epoch, overlay.Received{From: testInfo(4), Msg: &DisconnectMsg{}}) // unknown: no effect
			before := stateOf(c)
			c.Step(epoch.Add(time.Millisecond), overlay.Received{From: test.from, Msg: test.msg})
			if out := c.Drain(nil); len(out) != 0 {
				t.Errorf("refused message produced outputs %v", out)
			}
			if after := stateOf(c); !after.equal(before) {
				t.Errorf("refused message changed the state:\nbefore %+v\n after %+v", before, after)
			}
			if err := c.checkInvariants(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestShuffleReplyTooLongIsIgnored(t *testing.T) {
	c := newTestCore(t, nil)
	withActive(c, epoch, 1, 2, 3)
	c.shuffle()
	c.Drain(nil)
	long := make([]peer.Info, DefaultShuffleActive+DefaultShufflePassive+2)
	for i := range long {
		long[i] = testInfo(200 + i)
	}
	c.Step(epoch, overlay.Received{From: testInfo(90), Msg: &ShuffleReplyMsg{Peers: long}})
	if c.passiveView.len() != 0 || !c.shuffleAwaiting {
		t.Fatalf("an over-long SHUFFLEREPLY was used: passive %d, awaiting %v", c.passiveView.len(), c.shuffleAwaiting)
	}
	fine := long[:4]
	c.Step(epoch, overlay.Received{From: testInfo(90), Msg: &ShuffleReplyMsg{Peers: fine}})
	if c.passiveView.len() != len(fine) || c.shuffleAwaiting {
		t.Fatalf("a valid SHUFFLEREPLY was not merged: passive %d", c.passiveView.len())
	}
	c.Step(epoch, overlay.Received{From: testInfo(90), Msg: &ShuffleReplyMsg{Peers: long[5:8]}})
	if c.passiveView.len() != len(fine) {
		t.Fatalf("a second reply to one shuffle was merged")
	}
}

func TestStateStaysBoundedUnderFlood(t *testing.T) {
	c := newTestCore(t, nil)
	withActive(c, epoch, 1)
	now := epoch
	for i := 0; i < 5000; i++ {
		now = now.Add(time.Millisecond)
		from := testInfo(2 + i%3000)
		switch i % 4 {
		case 0:
			c.Step(now, overlay.Received{From: from, Msg: &NeighborMsg{HighPriority: i%8 == 0}})
		case 1:
			c.Step(now, overlay.Received{From: testInfo(1), Msg: &ForwardJoinMsg{NewNode: from, TTL: DefaultPassiveRandomWalkLength}})
		case 2:
			peers := []peer.Info{testInfo(3000 + i), testInfo(4000 + i), testInfo(5000 + i)}
			c.Step(now, overlay.Received{From: testInfo(1), Msg: &ShuffleMsg{Origin: from, TTL: 1, Peers: peers}})
		case 3:
			c.Step(now, overlay.Tick{})
		}
		c.Drain(nil)
		if err := c.checkInvariants(); err != nil {
			t.Fatalf("after %d messages: %v", i, err)
		}
	}
	if len(c.rejectedAt) > DefaultPassiveViewSize || len(c.lastHeard.entries) > DefaultActiveViewSize {
		t.Fatalf("bookkeeping grew: %d rejected, %d last-heard", len(c.rejectedAt), len(c.lastHeard.entries))
	}
}
