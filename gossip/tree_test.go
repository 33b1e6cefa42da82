package gossip

import (
	"testing"
	"time"

	"github.com/p2p-go/p2p/plumtree"
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

// TestRootThatRelaysNothingLosesNoBroadcast: an insider can make a key whose
// ID is the smallest and so become the rooted tree's root, to which every
// origin also relays its broadcasts. A root that forwards nothing (no
// GOSSIP, not even for a GRAFT) delays the nodes below it, which graft the
// payload from lazy neighbours, but every broadcast still reaches every
// node exactly once.
func TestRootThatRelaysNothingLosesNoBroadcast(t *testing.T) {
	net := newTestNet(t, 23)
	got := deliveries{}
	net.onOutput = got.record
	net.joinAll(60, Config{})
	if took, ok := net.runUntil(time.Minute, func() bool { return net.connected() && allMembersKnown(net) }); !ok {
		t.Fatalf("overlay not connected with full member lists after %v", took)
	}
	root := net.nodes[0]
	for _, n := range net.nodes {
		if n.info.ID.Compare(root.info.ID) < 0 {
			root = n
		}
	}
	var dropped int
	net.drop = func(from, _ *testNode, msg any) bool {
		if _, ok := msg.(*plumtree.Gossip); ok && from == root {
			dropped++
			return true
		}
		return false
	}
	net.run(10 * time.Second)
	clear(got)
	const messages = 20
	for i := range messages {
		sender := net.nodes[net.rand.IntN(len(net.nodes))]
		for sender == root {
			sender = net.nodes[net.rand.IntN(len(net.nodes))]
		}
		net.step(sender, Broadcast{Topic: 1, Payload: []byte{byte(i)}})
		net.run(50 * time.Millisecond)
	}
	net.run(10 * time.Second)
	if len(got) != messages {
		t.Fatalf("%d broadcasts delivered, want %d", len(got), messages)
	}
	for id, byNode := range got {
		if len(byNode) != len(net.nodes)-1 {
			t.Fatalf("broadcast %v reached %d nodes, want %d", id, len(byNode), len(net.nodes)-1)
		}
		for node, count := range byNode {
			if count != 1 {
				t.Fatalf("node %d delivered broadcast %v %d times", node, id, count)
			}
		}
	}
	if dropped == 0 {
		t.Fatal("the root dropped nothing: it forwarded no broadcast at all")
	}
	t.Logf("the root dropped %d GOSSIP messages; every broadcast reached every node once", dropped)
}
