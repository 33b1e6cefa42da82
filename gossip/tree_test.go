package gossip

import (
	"testing"
	"time"
)

// TestRootedTreeDeliversEveryBroadcastOnceWithoutPrunes runs the composed
// core with the rooted tree, with the relay to the root (TreeRootedRelay,
// the default) and without (TreeRooted): once the overlay has settled,
// broadcasts from random nodes, one every 5 ms so that they overlap, reach
// every node exactly once, and no duplicate prunes a link. With the relay,
// the origins find the root's address in its signed member record: every
// broadcast not sent by the root is relayed, none fails to resolve, and the
// root receives them.
func TestRootedTreeDeliversEveryBroadcastOnceWithoutPrunes(t *testing.T) {
	for _, shape := range []TreeShape{TreeRooted, TreeRootedRelay} {
		t.Run(shape.String(), func(t *testing.T) {
			net := newTestNet(t, 21)
			got := deliveries{}
			net.onOutput = got.record
			net.joinAll(60, Config{Tree: shape})
			if took, ok := net.runUntil(time.Minute, func() bool { return net.connected() && allMembersKnown(net) }); !ok {
				t.Fatalf("overlay not connected with full member lists after %v", took)
			}
			net.run(10 * time.Second)
			clear(got)
			var prunes, relaysSent, relaysReceived, unresolved uint64
			for _, n := range net.nodes {
				st := n.core.Plumtree().Stats()
				prunes += st.PrunesSent
				relaysSent += st.RelaysSent
				relaysReceived += st.RelaysReceived
				unresolved += n.core.Stats().RelaysUnresolved
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
				st := n.core.Plumtree().Stats()
				prunes -= st.PrunesSent
				relaysSent -= st.RelaysSent
				relaysReceived -= st.RelaysReceived
				unresolved -= n.core.Stats().RelaysUnresolved
			}
			if prunes != 0 {
				t.Fatalf("%d PRUNEs with the rooted tree, want none", -int64(prunes))
			}
			sent, received, failed := -int64(relaysSent), -int64(relaysReceived), -int64(unresolved)
			t.Logf("%v: %d relays sent, %d received by a root over a direct link, %d unresolved", shape, sent, received, failed)
			switch {
			case shape == TreeRooted && sent != 0:
				t.Fatalf("%d relays without the relay", sent)
			case shape == TreeRootedRelay && (sent < 15 || failed != 0 || received == 0):
				t.Fatalf("relay: %d of 20 broadcasts relayed, %d unresolved, %d received: want most relayed, none unresolved", sent, failed, received)
			}
		})
	}
}
