package sim

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/p2p-go/p2p/gossip"
	"github.com/p2p-go/p2p/plumtree"
)

// jsonWithoutResources encodes a result with its machine-dependent part
// zeroed, for comparisons between runs.
func jsonWithoutResources(t *testing.T, v any, clear func()) string {
	t.Helper()
	clear()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestGossipBroadcastReachesEveryNodeRepeatably runs the Broadcaster core
// twice with one seed: every node delivers every message, each delivery is
// paid by at least one payload (RMR ≥ 0), and the two runs agree exactly.
func TestGossipBroadcastReachesEveryNodeRepeatably(t *testing.T) {
	run := func() *BroadcastResult {
		r, err := RunBroadcast(BroadcastConfig{
			Sim:      Config{Seed: 5, Latency: UniformLatency(5*time.Millisecond, 30*time.Millisecond), CountBytes: true},
			Protocol: GossipProtocol{}, Nodes: 50, Messages: 10, Settle: 10 * time.Second, MessageInterval: 500 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := run(), run()
	if a.Summary.DeliveryRatio != 1 || a.Summary.DuplicateDeliveries != 0 {
		t.Fatalf("delivery ratio %v, %d duplicates", a.Summary.DeliveryRatio, a.Summary.DuplicateDeliveries)
	}
	for _, m := range a.PerMessage {
		if m.Receptions < int64(m.Delivered) || m.RMR < 0 {
			t.Errorf("message %d: %d payload receptions for %d deliveries", m.Index, m.Receptions, m.Delivered)
		}
	}
	if a.Summary.MaxHops < 1 || a.BytesPerNodePerMessage <= float64(a.Payload) {
		t.Errorf("max hops %d, %v bytes per node per message for a %d-byte payload", a.Summary.MaxHops, a.BytesPerNodePerMessage, a.Payload)
	}
	ja := jsonWithoutResources(t, a, func() { a.Resources = Resources{} })
	jb := jsonWithoutResources(t, b, func() { b.Resources = Resources{} })
	if ja != jb {
		t.Fatal("two gossip runs with the same seed differ")
	}
}

// TestMassFailOverlayHealsAndDeliversAgain kills half of a Plumtree over
// HyParView overlay at once (the HyParView paper's experiment): the overlay
// heals, and the message sent once it has reaches every survivor.
func TestMassFailOverlayHealsAndDeliversAgain(t *testing.T) {
	r, err := RunBroadcast(BroadcastConfig{
		Sim: Config{Seed: 3}, Protocol: PlumtreeProtocol{}, Nodes: 150, Messages: 8,
		Settle: 15 * time.Second, KillFraction: 0.5,
	})
	if err != nil {
		t.Fatal(err)
	}
	m := r.MassFail
	if m == nil || m.Killed != 75 || m.Survivors != 75 {
		t.Fatalf("massfail %+v", m)
	}
	if m.HealMs < 0 || m.HealedRatio != 1 {
		t.Fatalf("healed after %v ms, message sent then delivered to %v", m.HealMs, m.HealedRatio)
	}
	if last := r.PerMessage[len(r.PerMessage)-2]; last.Ratio != 1 {
		t.Fatalf("last scheduled message delivered to %v", last.Ratio)
	}
	if m.RecoveredMs < 0 || m.FirstRatio <= 0 {
		t.Fatalf("first ratio %v, recovered at %v ms", m.FirstRatio, m.RecoveredMs)
	}
}

// TestKademliaLookupsFindTheTrueKClosest checks the paper's central claim
// on a simulated network: iterative lookups return the k nodes closest to a
// random ID (compared with a brute-force sort), in a few hops; records
// stored are found.
func TestKademliaLookupsFindTheTrueKClosest(t *testing.T) {
	run := func() *KademliaResult {
		r, err := RunKademlia(KademliaConfig{Sim: Config{Seed: 2}, Nodes: 100, Lookups: 40, Records: 8})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := run()
	if r.Lookups.SuccessRate < 0.98 || r.Lookups.Errors != 0 {
		t.Fatalf("lookups %+v", r.Lookups)
	}
	if r.Lookups.HopsMax > 8 || r.Lookups.HopsP50 < 1 {
		t.Fatalf("lookup hops %+v", r.Lookups)
	}
	if r.Gets.SuccessRate != 1 || r.PutsStored < float64(min(r.K, r.Nodes)/2) {
		t.Fatalf("gets %+v, stored on %v nodes", r.Gets, r.PutsStored)
	}
	again := run()
	if jsonWithoutResources(t, r, func() { r.Resources = Resources{} }) != jsonWithoutResources(t, again, func() { again.Resources = Resources{} }) {
		t.Fatal("two kademlia runs with the same seed differ")
	}
}

// TestKVWritesReachEveryNodeAndPartitionsConverge checks the store's
// promise: every write reaches every node, and after a partition in which
// both sides wrote the same keys, every node ends with the same store.
func TestKVWritesReachEveryNodeAndPartitionsConverge(t *testing.T) {
	r, err := RunKV(KVConfig{Sim: Config{Seed: 4}, Nodes: 30, Writes: 4, PartitionWrites: 2, PartitionTime: 10 * time.Second, Settle: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r.Agreed != r.Writes || r.AgreeMaxMs <= 0 {
		t.Fatalf("%d of %d writes agreed, max %v ms", r.Agreed, r.Writes, r.AgreeMaxMs)
	}
	p := r.Partition
	if p == nil || !p.DivergedAtHeal || !p.Converged {
		t.Fatalf("partition %+v", p)
	}
}

// TestMassFailEveryMessageSentDuringRepairReachesEverySurvivor kills 90 % of
// the nodes at once and broadcasts from survivors every 100 ms from that
// instant (issue 9): every message, those sent while the overlay was still
// repairing included, reaches every survivor exactly once, through the
// summaries that new links exchange.
func TestMassFailEveryMessageSentDuringRepairReachesEverySurvivor(t *testing.T) {
	r, err := RunBroadcast(BroadcastConfig{
		Sim: Config{Seed: 1}, Protocol: PlumtreeProtocol{}, Nodes: 300, Messages: 20,
		Settle: 10 * time.Second, KillFraction: 0.9, MessageInterval: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	m := r.MassFail
	t.Logf("first message %.3f, healed after %v ms, %d recoveries", m.FirstRatio, m.HealMs, m.MessagesRecovered)
	if m.SinceFailureRatio != 1 || m.CompleteMessages != m.SinceFailureMessages || m.SinceFailureMessages != 20 {
		t.Errorf("messages since the failure: %.4f delivered, %d of %d complete", m.SinceFailureRatio, m.CompleteMessages, m.SinceFailureMessages)
	}
	if r.Summary.DuplicateDeliveries != 0 {
		t.Errorf("%d duplicate deliveries", r.Summary.DuplicateDeliveries)
	}
	if m.MessagesRecovered <= 0 {
		t.Errorf("%d messages recovered: the failure cut no survivor off, the test is too weak", m.MessagesRecovered)
	}
}

// TestBroadcastAfterChurnReachesEveryNode replaces a fifth of the nodes
// (crashes and new joins, one at a time) before the messages: the rooted
// tree (with the relay to its root) rebuilds around the newcomers, and every
// live node delivers every message with little redundancy.
func TestBroadcastAfterChurnReachesEveryNode(t *testing.T) {
	r, err := RunBroadcast(BroadcastConfig{
		Sim: Config{Seed: 4}, Protocol: PlumtreeProtocol{Plumtree: plumtree.Config{RootedTree: true, RelayToRoot: true}}, Nodes: 200,
		Messages: 20, Settle: 10 * time.Second, ChurnFraction: 0.2,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Churned != 40 || r.Summary.DeliveryRatio != 1 || r.Summary.RMR > 0.1 {
		t.Fatalf("%d nodes churned, delivery ratio %v, RMR %.3f: want 40, 1 and at most 0.1", r.Churned, r.Summary.DeliveryRatio, r.Summary.RMR)
	}
	if _, err := RunBroadcast(BroadcastConfig{Protocol: PlumtreeProtocol{}, ChurnFraction: 1}); err == nil {
		t.Fatal("ChurnFraction 1 accepted")
	}
}

// TestMassFailMembershipEventsLeaveTheRecoveryWindowToMessages: the same
// with the full Broadcaster core, whose survivors announce the deaths (two
// or three broadcasts per dead member). Its payload cache is cut to 128
// places, as 1,024 are to a 1,000-node failure (seed 2 at 90 % lost a
// message so before the fix; this test delivered 91.6 %, no message
// complete): membership events give up their place in the payload cache
// first, so the deaths never push out of the recovery window the messages
// that a survivor cut off meanwhile must recover.
func TestMassFailMembershipEventsLeaveTheRecoveryWindowToMessages(t *testing.T) {
	r, err := RunBroadcast(BroadcastConfig{
		Sim:      Config{Seed: 2},
		Protocol: GossipProtocol{Config: gossip.Config{Plumtree: plumtree.Config{PayloadCacheSize: 128}}},
		Nodes:    300, Messages: 20, Settle: 10 * time.Second, KillFraction: 0.9, MessageInterval: 100 * time.Millisecond,
		Drain: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	m := r.MassFail
	t.Logf("healed after %v ms, %d recoveries, %d of %d messages complete", m.HealMs, m.MessagesRecovered, m.CompleteMessages, m.SinceFailureMessages)
	if m.SinceFailureRatio != 1 || m.CompleteMessages != m.SinceFailureMessages || m.SinceFailureMessages != 20 {
		t.Errorf("messages since the failure: %.4f delivered, %d of %d complete", m.SinceFailureRatio, m.CompleteMessages, m.SinceFailureMessages)
	}
	if r.Summary.DuplicateDeliveries != 0 {
		t.Errorf("%d duplicate deliveries", r.Summary.DuplicateDeliveries)
	}
	if m.MessagesRecovered <= 0 {
		t.Errorf("%d messages recovered: the failure cut no survivor off, the test is too weak", m.MessagesRecovered)
	}
}
