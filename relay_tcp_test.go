package p2p_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/p2p-go/p2p"
	"github.com/p2p-go/p2p/internal/testutil"
)

// TestRelayToRootOverTCP: with the default tree (rooted, with the relay to
// its root), broadcasts from nodes that are not the root reach the root
// over a connection dialled for the relay (its address from the root's
// signed member record), and every node delivers every broadcast once.
func TestRelayToRootOverTCP(t *testing.T) {
	const nodes, messages = 8, 10
	c := startLoopbackCluster(t, nodes)
	var mu sync.Mutex
	got := map[int]map[int]int{} // message -> node -> deliveries
	for i, n := range c.nodes {
		n.React(func(m *p2p.Message) {
			var p benchPayload
			if m.Decode(&p) != nil {
				return
			}
			mu.Lock()
			if got[p.I] == nil {
				got[p.I] = map[int]int{}
			}
			got[p.I][i]++
			mu.Unlock()
		})
	}
	// Every node agrees on the root before the broadcasts.
	rootOf := func(b *p2p.Broadcaster) string { return p2p.TreeRootForTest(b).String() }
	testutil.Eventually(t, 20*time.Second, "every node to know the same root", func() bool {
		first := rootOf(c.nodes[0])
		for _, n := range c.nodes[1:] {
			if rootOf(n) != first {
				return false
			}
		}
		return true
	})
	// The senders are the nodes that are not the root's neighbours, so
	// that their relays reach it over a direct connection. The root has at
	// most an active view's worth of neighbours (HyParView's views are
	// symmetric), fewer than the other nodes: there is always one.
	root := rootOf(c.nodes[0])
	var senders []*p2p.Broadcaster
	testutil.Eventually(t, 20*time.Second, "a node that is not the root's neighbour", func() bool {
		senders = senders[:0]
		neighbors := map[string]bool{root: true}
		for _, n := range c.nodes {
			if n.ID().String() != root {
				continue
			}
			list, err := n.Neighbors(context.Background())
			if err != nil {
				return false
			}
			for _, m := range list {
				neighbors[m.ID.String()] = true
			}
		}
		for _, n := range c.nodes {
			if !neighbors[n.ID().String()] {
				senders = append(senders, n)
			}
		}
		return len(senders) > 0
	})
	// The nodes' own membership broadcasts while they joined may have met a
	// root they did not hold yet (relayed through the tree instead): count
	// from here, with every member list complete.
	relays := func() (sent, received, unresolved uint64) {
		for _, n := range c.nodes {
			st := n.Stats()
			sent += st.Plumtree.RelaysSent
			received += st.Plumtree.RelaysReceived
			unresolved += st.Gossip.RelaysUnresolved
		}
		return sent, received, unresolved
	}
	sent0, received0, unresolved0 := relays()
	for i := range messages {
		sender := senders[i%len(senders)]
		if err := sender.Send(context.Background(), makePayload(i, time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 20*time.Second, "every broadcast at every other node", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for i := range messages {
			if len(got[i]) != nodes-1 {
				return false
			}
		}
		return true
	})
	mu.Lock()
	for i, byNode := range got {
		for node, count := range byNode {
			if count != 1 {
				t.Errorf("node %d delivered broadcast %d %d times", node, i, count)
			}
		}
	}
	mu.Unlock()
	// A relay dials the root first, so the tree may carry a broadcast
	// everywhere before its relay arrives: wait for the relays too.
	var sent, received, unresolved uint64
	testutil.Eventually(t, 20*time.Second, "the relays to reach the root", func() bool {
		sent, received, unresolved = relays()
		sent, received, unresolved = sent-sent0, received-received0, unresolved-unresolved0
		return received > 0
	})
	t.Logf("relays: %d sent, %d received over a direct connection, %d unresolved", sent, received, unresolved)
	if sent == 0 || received == 0 || unresolved != 0 {
		t.Fatalf("relays: %d sent, %d received by the root over a direct connection, %d unresolved: want some, some, none", sent, received, unresolved)
	}
}
