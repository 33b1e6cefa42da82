//go:build !race

package p2p_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// These tests run 100 to 200 nodes of goroutines in one process: under the
// race detector, on a shared 2-core machine, the nodes' loops fall seconds
// behind and the tests measure the machine rather than the protocols. CI
// runs them without -race.

// TestBroadcastReachesSurvivorsAfter30PercentFail: in a 200-node network
// where 30% of the nodes crash at once, HyParView repairs the overlay from the
// passive views, and every message sent after the repair reaches every
// survivor. The test reports how long the repair took.
func TestBroadcastReachesSurvivorsAfter30PercentFail(t *testing.T) {
	c := newMemCluster(t, 200, 2)
	c.waitFor(2*time.Minute, "a connected overlay", c.overlayConnected)
	rng := rand.New(rand.NewPCG(7, 8))
	for _, i := range rng.Perm(len(c.nodes))[:60] {
		c.dead[i] = true
		c.net.Kill(c.addrs[i])
	}
	repair := c.waitFor(2*time.Minute, "the overlay to drop the dead and reconnect", c.overlayConnected)
	t.Logf("overlay repaired %v after 60 of 200 nodes crashed at once", repair)
	live := c.live()
	for m := range 10 {
		sender := live[rng.IntN(len(live))]
		c.broadcast(sender, m)
		c.waitFor(time.Minute, fmt.Sprintf("message %d at every survivor", m), func() bool { return c.deliveredEverywhere(m, sender) })
	}
}

// TestSendReachesEveryReactorExactlyOnce: in a 100-node network every Send
// reaches every other node's reactors exactly once (Plumtree's reliability
// claim with its duplicate suppression), whoever sends it.
func TestSendReachesEveryReactorExactlyOnce(t *testing.T) {
	c := startMemCluster(t, 100, 1)
	rng := rand.New(rand.NewPCG(5, 6))
	const messages = 20
	senders := make([]int, messages)
	for m := range messages {
		senders[m] = rng.IntN(len(c.nodes))
		c.broadcast(senders[m], m)
	}
	for m := range messages {
		c.waitFor(time.Minute, fmt.Sprintf("message %d everywhere", m), func() bool { return c.deliveredEverywhere(m, senders[m]) })
	}
	// A last message from every node flushes what is still in flight on
	// each link before the counts are checked.
	for i := range c.nodes {
		c.broadcast(i, 1000+i)
	}
	for i := range c.nodes {
		c.waitFor(time.Minute, "the fence messages", func() bool { return c.deliveredEverywhere(1000+i, i) })
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, seen := range c.seen {
		for m := range messages {
			want := 1
			if senders[m] == i {
				want = 0 // a node does not deliver its own broadcast
			}
			if seen[m] != want {
				t.Errorf("node %d delivered message %d %d times, want %d", i, m, seen[m], want)
			}
		}
	}
}
