//go:build !race

package p2p_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

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
