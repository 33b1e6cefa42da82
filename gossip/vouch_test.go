package gossip

import (
	"testing"
	"time"

	"github.com/p2p-go/p2p/hyparview"
	"github.com/p2p-go/p2p/peer"
)

// A NeighborUp held until a record vouches for the peer's address, then
// overtaken by HyParView's NeighborDown of that peer, is forgotten: released
// after the NeighborDown, it left Plumtree with a neighbour that HyParView
// no longer had, on this end only (seen over the real transport, where the
// rooted tree then cut a subtree off behind such a link).
func TestNeighborDroppedWhileHeldNeverReachesPlumtree(t *testing.T) {
	key, err := peer.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Self: peer.Info{ID: key.ID(), Addr: "self:1"}, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	other := peer.Info{ID: peer.ID{7}, Addr: "other:1"}
	c.routeHyParView(now, hyparview.NeighborUp{Peer: other})
	if len(c.held) != 1 {
		t.Fatalf("%d outputs held, want the NeighborUp of a peer no record vouches for", len(c.held))
	}
	c.routeHyParView(now, hyparview.NeighborDown{Peer: other.ID})
	c.run(now)
	// A link from that address now vouches for it.
	c.linked[other.ID] = other.Addr
	c.releaseHeld(now)
	c.run(now)
	if n := len(c.pt.EagerPeers()) + len(c.pt.LazyPeers()); n != 0 {
		t.Fatalf("Plumtree has %d neighbours after the peer's NeighborDown, want none", n)
	}
	for _, out := range c.Drain(nil) {
		if up, ok := out.(NeighborUp); ok {
			t.Fatalf("NeighborUp of %v output after its NeighborDown", up.Peer.ID.Short())
		}
	}
}
