package p2p_test

import (
	"context"
	"testing"
	"time"
)

// TestSilentHostsLeaveEveryMemberList loses three of sixteen hosts without
// a connection reset (every message from or to them vanishes, on links
// open or new, as when links are cut and the hosts then die), with the
// real node runtime, its timers and its links: every survivor's member list
// drops them. The virtual-clock test in package gossip holds the bound
// (10 s); this one reports what the runtime takes.
func TestSilentHostsLeaveEveryMemberList(t *testing.T) {
	c := startMemCluster(t, 16, 4)
	victims := map[string]bool{c.addrs[2]: true, c.addrs[7]: true, c.addrs[12]: true}
	for i, addr := range c.addrs {
		if victims[addr] {
			c.dead[i] = true
		}
	}
	c.net.SetHook(func(from, to string, _ []byte) bool { return !victims[from] && !victims[to] })
	took := c.waitFor(time.Minute, "every survivor to drop the silent hosts", func() bool {
		for _, i := range c.live() {
			members, err := c.nodes[i].Members(context.Background())
			if err != nil {
				return false
			}
			for _, m := range members {
				if victims[m.Addr] {
					return false
				}
			}
		}
		return true
	})
	t.Logf("3 silent hosts of 16 left every member list %v after they fell silent (documented bound 10 s)", took.Round(100*time.Millisecond))
}
