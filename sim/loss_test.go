package sim

import (
	"fmt"
	"testing"
)

// TestLossyBroadcastsReachEveryNodeWithoutExtraTraffic runs the Broadcaster
// core with 1 % of the messages lost. Two mechanisms used to break it:
//
//   - a node whose JOIN was lost took the join walks of the newcomers that
//     joined through it for its own join and stopped asking its contact,
//     so that every later join through it grew an island that knew nothing
//     of the rest (seeds 1 and 5: about 4 and 10 nodes of 200, which got
//     no broadcast of the others', and whose own broadcasts reached only
//     them);
//   - every random probe left unanswered once (2 % of them) broadcast a
//     SUSPECT claim, and the member a refutation: 0.4 to 0.9 messages per
//     node per message more than Plumtree over HyParView alone (3.5 to 3.6
//     at 200 nodes, 4 more at 1,000 nodes).
func TestLossyBroadcastsReachEveryNodeWithoutExtraTraffic(t *testing.T) {
	for _, seed := range []uint64{1, 5} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r, err := RunBroadcast(BroadcastConfig{
				Sim:      Config{Seed: seed, Loss: 0.01},
				Protocol: GossipProtocol{},
				Nodes:    200,
			})
			if err != nil {
				t.Fatal(err)
			}
			if r.Summary.DeliveryRatio != 1 {
				t.Errorf("delivery ratio %v, worst message %v", r.Summary.DeliveryRatio, r.Summary.MinRatio)
			}
			if r.MessagesPerNodePerMessage > 3.8 {
				t.Errorf("%.2f messages per node per message, want at most 3.8", r.MessagesPerNodePerMessage)
			}
			t.Logf("delivery ratio %v, %.2f messages per node per message", r.Summary.DeliveryRatio, r.MessagesPerNodePerMessage)
		})
	}
}
