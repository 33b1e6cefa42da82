package sim

import (
	"testing"
	"time"
)

// windowedRun runs the Broadcaster core with the windowed engine on the
// given number of workers: jittery links, losses and churn, the delivery
// table encoded without its machine-dependent part.
func windowedRun(t *testing.T, nodes, workers int) (string, *BroadcastResult) {
	t.Helper()
	r, err := RunBroadcast(BroadcastConfig{
		Sim: Config{Seed: 7, Latency: UniformLatency(5*time.Millisecond, 50*time.Millisecond), Loss: 0.01,
			CountBytes: true, Workers: workers},
		Protocol: GossipProtocol{}, Nodes: nodes, Messages: 10, Settle: 10 * time.Second,
		MessageInterval: 100 * time.Millisecond, ChurnFraction: 0.2, ChurnPeriod: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return jsonWithoutResources(t, r, func() { r.Resources = Resources{} }), r
}

// TestWindowedEngineGivesOneRunWhateverTheWorkers runs one lossy, jittery
// scenario with churn on the windowed engine with 2, 3 and 4 workers, and
// twice with 2: every delivery, RMR, hop count, latency, traffic counter and
// the number of events agree exactly, and every message reaches every node.
func TestWindowedEngineGivesOneRunWhateverTheWorkers(t *testing.T) {
	nodes := 60
	if !testing.Short() && !raceEnabled {
		nodes = 200
	}
	want, r := windowedRun(t, nodes, 2)
	if r.Summary.DeliveryRatio != 1 || r.Churned == 0 || r.Events == 0 {
		t.Fatalf("delivery ratio %v, %d churned, %d events", r.Summary.DeliveryRatio, r.Churned, r.Events)
	}
	for _, workers := range []int{2, 3, 4} {
		if got, g := windowedRun(t, nodes, workers); got != want {
			t.Errorf("%d workers: the run differs from the first with 2 (%d events, want %d; RMR %v, want %v)",
				workers, g.Events, r.Events, g.Summary.RMR, r.Summary.RMR)
		}
	}
}
