package hyparview

import (
	"testing"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/wire"
)

// fuzzSeeds returns one encoded sample of every message, valid and not.
func fuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, msg := range []any{
		&JoinMsg{},
		&ForwardJoinMsg{NewNode: testInfo(60), TTL: 0},
		&ForwardJoinMsg{NewNode: testInfo(61), TTL: DefaultPassiveRandomWalkLength},
		&ForwardJoinMsg{NewNode: peer.Info{Addr: "x:1"}, TTL: 255},
		&DisconnectMsg{},
		&DisconnectMsg{Leave: true},
		&NeighborMsg{HighPriority: true},
		&NeighborMsg{},
		&NeighborReplyMsg{Accept: true},
		&NeighborReplyMsg{},
		&ShuffleMsg{Origin: testInfo(62), TTL: 1, Peers: []peer.Info{testInfo(63), testInfo(64)}},
		&ShuffleMsg{Origin: testInfo(62), TTL: 4, Peers: []peer.Info{testSelf, testInfo(1)}},
		&ShuffleReplyMsg{Peers: []peer.Info{testInfo(65), testInfo(66), testInfo(67)}},
		&KeepaliveMsg{},
		&KeepaliveMsg{Reply: true},
	} {
		data, err := wire.Marshal(msg)
		if err != nil {
			t.Fatalf("marshal %T: %v", msg, err)
		}
		seeds = append(seeds, data)
	}
	return seeds
}

// FuzzStep decodes arbitrary bytes as a message and steps a core that has
// neighbours, passive peers and an outstanding shuffle with it, from an
// active peer or from a stranger: nothing may panic or break an invariant.
func FuzzStep(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(true, seed)
		f.Add(false, seed)
	}
	f.Fuzz(func(t *testing.T, fromActive bool, data []byte) {
		msg, err := wire.Unmarshal(data)
		if err != nil {
			return
		}
		if _, err := wire.Marshal(msg); err != nil {
			t.Fatalf("decoded message does not encode again: %v", err)
		}
		c, err := New(Config{Self: testSelf, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		withActive(c, epoch, 1, 2, 3)
		c.Step(epoch, overlay.Received{From: testInfo(1), Msg: &ForwardJoinMsg{NewNode: testInfo(70), TTL: DefaultPassiveRandomWalkLength}})
		c.Step(epoch, overlay.Received{From: testInfo(2), Msg: &DisconnectMsg{}})
		c.shuffle()
		c.Drain(nil)
		from := testInfo(90)
		if fromActive {
			from = testInfo(1)
		}
		c.Step(epoch, overlay.Received{From: from, Msg: msg})
		c.Step(epoch.Add(DefaultFailureTimeout), overlay.Tick{})
		for _, output := range c.Drain(nil) {
			if send, ok := output.(overlay.Send); ok {
				if send.To.ID == testSelf.ID {
					t.Fatalf("core sends %T to itself", send.Msg)
				}
				if _, err := wire.Marshal(send.Msg); err != nil {
					t.Fatalf("core sends an unencodable %T: %v", send.Msg, err)
				}
			}
		}
		if err := c.checkInvariants(); err != nil {
			t.Fatal(err)
		}
	})
}
