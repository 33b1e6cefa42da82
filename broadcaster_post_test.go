package p2p_test

import (
	"testing"
	"time"
)

// TestMessagesSentBeforeCloseLeave checks that Send, which returns once its
// message is queued on the node's loop, loses nothing queued when the node
// closes right after: Close sends what was queued before the node leaves.
func TestMessagesSentBeforeCloseLeave(t *testing.T) {
	c := startMemCluster(t, 3, 7)
	const n = 200
	for i := range n {
		c.broadcast(0, i)
	}
	if err := c.nodes[0].Close(); err != nil {
		t.Fatal(err)
	}
	c.dead[0] = true
	c.waitFor(30*time.Second, "every message queued before Close delivered", func() bool {
		for i := range n {
			if !c.deliveredEverywhere(i, 0) {
				return false
			}
		}
		return true
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, node := range c.live() {
		for i := range n {
			if got := c.seen[node][i]; got != 1 {
				t.Fatalf("node %d delivered message %d %d times, want once", node, i, got)
			}
		}
	}
}
