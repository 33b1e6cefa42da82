package gossip

import (
	"testing"
	"time"

	"github.com/p2p-go/p2p/peer"
)

// TestRestartedContactsFindTheOthersThroughKnownMembers restarts the only
// two contacts of a network, each given the other as its contact: without
// the members they knew before (Join.Known) the two form a network of their
// own that the others do not hear of; with them, every member list is whole
// again within a second.
func TestRestartedContactsFindTheOthersThroughKnownMembers(t *testing.T) {
	for _, withKnown := range []bool{false, true} {
		// Without Known, the others still reach the restarted contacts
		// within the second for about half the seeds (19 of seeds 61-100),
		// through passive views that still hold them: seed 64 is one where
		// only Known brings them back.
		net := newTestNet(t, 64)
		net.joinAll(2, Config{})
		for range 10 {
			node := net.addNode(Config{})
			net.step(node, Join{Contacts: []string{net.nodes[0].info.Addr, net.nodes[1].info.Addr}})
			net.run(20 * time.Millisecond)
		}
		if took, ok := net.runUntil(time.Minute, func() bool { return net.connected() && allMembersKnown(net) }); !ok {
			t.Fatalf("not settled after %v", took)
		}
		contacts := net.nodes[:2]
		var known []peer.Info
		if withKnown {
			known = net.nodes[0].core.Members()
		}
		for _, n := range contacts {
			net.kill(n)
		}
		net.run(30 * time.Second) // long enough for the others to drop them
		for i, n := range contacts {
			net.restart(n, Join{Contacts: []string{contacts[1-i].info.Addr}, Known: known})
		}
		took, whole := net.runUntil(time.Second, func() bool { return allMembersKnown(net) })
		if whole != withKnown {
			t.Fatalf("with known members %v: member lists whole after %v: %v", withKnown, took, whole)
		}
		t.Logf("with known members %v: member lists whole after %v: %v", withKnown, took, whole)
	}
}
