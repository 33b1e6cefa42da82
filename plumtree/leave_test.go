package plumtree

import (
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
)

// A node that leaves right after broadcasting hands the payloads of its
// recent broadcasts to its lazy neighbours, which could otherwise only have
// grafted them from it once it is gone; eager neighbours already have them,
// and older broadcasts had time to be grafted.
func TestLeavePushesRecentOwnBroadcastsToLazyNeighbours(t *testing.T) {
	c := newTestCore(t, nil, peerA, peerB)
	c.Step(simEpoch, overlay.Received{From: peerB, Msg: &Prune{}}) // B lazy
	c.Drain(nil)
	c.Step(simEpoch, Broadcast{Payload: []byte("old")})
	later := simEpoch.Add(c.leaveWindow() + time.Second)
	for _, p := range []string{"one", "two", "three"} {
		c.Step(later, Broadcast{Payload: []byte(p)})
	}
	c.Drain(nil)
	c.Step(later.Add(time.Millisecond), Leave{})
	outs := c.Drain(nil)
	toB := sentTo[*Gossip](outs, peerB)
	if len(toB) != 3 {
		t.Fatalf("%d payloads pushed to the lazy neighbour on Leave, want the 3 recent ones", len(toB))
	}
	for i, want := range []string{"one", "two", "three"} {
		if string(toB[i].Payload) != want || toB[i].Round != 1 {
			t.Fatalf("payload %d: %q round %d, want %q round 1", i, toB[i].Payload, toB[i].Round, want)
		}
	}
	if got := sentTo[*Gossip](outs, peerA); len(got) != 0 {
		t.Fatalf("%d payloads pushed again to the eager neighbour", len(got))
	}
	for _, ihave := range sentTo[*IHave](outs, peerB) {
		for _, a := range ihave.Announcements {
			for _, g := range toB {
				if a.ID == g.ID {
					t.Fatalf("announced %x, which was pushed", a.ID)
				}
			}
		}
	}
}
