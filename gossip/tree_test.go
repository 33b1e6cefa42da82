package gossip

import (
	"testing"
	"time"
)

// TestRootedTreeDeliversEveryBroadcastOnceWithoutPrunes runs the composed
// core with Config.RootedTree: once the overlay has settled, broadcasts from
// random nodes, one every 5 ms so that they overlap, reach every node exactly
// once, and no duplicate prunes a link.
func TestRootedTreeDeliversEveryBroadcastOnceWithoutPrunes(t *testing.T) {
	net := newTestNet(t, 21)
	got := deliveries{}
	net.onOutput = got.record
	net.joinAll(60, Config{RootedTree: true})
	if took, ok := net.runUntil(time.Minute, func() bool { return net.connected() && allMembersKnown(net) }); !ok {
		t.Fatalf("overlay not connected with full member lists after %v", took)
	}
	net.run(10 * time.Second)
	clear(got)
	var prunes uint64
	for _, n := range net.nodes {
		prunes += n.core.Plumtree().Stats().PrunesSent
	}
	for i := range 20 {
		net.step(net.nodes[net.rand.IntN(len(net.nodes))], Broadcast{Topic: 1, Payload: []byte{byte(i)}})
		net.run(5 * time.Millisecond)
	}
	net.run(5 * time.Second)
	if len(got) != 20 {
		t.Fatalf("%d broadcasts delivered, want 20", len(got))
	}
	for id, byNode := range got {
		if len(byNode) != 59 {
			t.Fatalf("broadcast %v reached %d nodes, want 59", id, len(byNode))
		}
		for node, count := range byNode {
			if count != 1 {
				t.Fatalf("node %v delivered broadcast %v %d times", node, id, count)
			}
		}
	}
	for _, n := range net.nodes {
		prunes -= n.core.Plumtree().Stats().PrunesSent
	}
	if prunes != 0 {
		t.Fatalf("%d PRUNEs with the rooted tree, want none", -int64(prunes))
	}
}
