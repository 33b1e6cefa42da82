package sim

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"
)

// runFlood runs the broadcast scenario with floodCores on graph.
func runFlood(t *testing.T, graph [][]int, messages int, simCfg Config) *BroadcastResult {
	t.Helper()
	simCfg.Seed = max(simCfg.Seed, 1)
	if simCfg.Latency.IsZero() {
		simCfg.Latency = FixedLatency(10 * time.Millisecond)
	}
	result, err := RunBroadcast(BroadcastConfig{
		Sim:      simCfg,
		Protocol: floodProtocol{graph: graph, seed: simCfg.Seed},
		Nodes:    len(graph), Messages: messages,
		JoinInterval: time.Millisecond, Settle: time.Second, MessageInterval: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return result
}

// TestRMRHopsAndDeliveryOnHandCheckedGraphs floods on small graphs whose
// message counts are worked out by hand: on a tree every node receives the
// payload once (RMR 0); on a ring of 6 the two fronts meet at the far node,
// which forwards once more (7 receptions for 5 recipients: RMR 0.4); on the
// complete graph K4 the origin sends 3 and each receiver forwards 2 (9
// receptions: RMR 2).
func TestRMRHopsAndDeliveryOnHandCheckedGraphs(t *testing.T) {
	line := undirected(5, [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}})
	star := undirected(5, [][2]int{{0, 1}, {0, 2}, {0, 3}, {0, 4}})
	ring := undirected(6, [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 0}})
	complete := undirected(4, [][2]int{{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}})
	for _, tc := range []struct {
		name       string
		graph      [][]int
		receptions int64
		rmr        float64
		maxHops    func(origin int) int
	}{
		{"line", line, 4, 0, func(o int) int { return max(o, 4-o) }},
		{"star", star, 4, 0, func(o int) int { return map[bool]int{true: 1, false: 2}[o == 0] }},
		{"ring", ring, 7, 0.4, func(int) int { return 3 }},
		{"complete", complete, 9, 2, func(int) int { return 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runFlood(t, tc.graph, 12, Config{})
			if r.Summary.Messages != 12 || r.Summary.DeliveryRatio != 1 || r.Summary.DuplicateDeliveries != 0 {
				t.Fatalf("summary %+v", r.Summary)
			}
			origins := map[int]bool{}
			for _, m := range r.PerMessage {
				origins[m.Origin] = true
				n := len(tc.graph)
				if m.Expected != n-1 || m.Delivered != n-1 || m.Ratio != 1 {
					t.Errorf("message %d: expected %d delivered %d ratio %v", m.Index, m.Expected, m.Delivered, m.Ratio)
				}
				if m.Receptions != tc.receptions || math.Abs(m.RMR-tc.rmr) > 1e-9 {
					t.Errorf("message %d from %d: %d receptions, RMR %v; want %d, %v", m.Index, m.Origin, m.Receptions, m.RMR, tc.receptions, tc.rmr)
				}
				hops := tc.maxHops(m.Origin)
				if m.MaxHops != hops {
					t.Errorf("message %d from %d: max hops %d, want %d", m.Index, m.Origin, m.MaxHops, hops)
				}
				if m.LastMs != float64(10*hops) {
					t.Errorf("message %d from %d: last delivery after %vms, want %d (hops × 10ms)", m.Index, m.Origin, m.LastMs, 10*hops)
				}
			}
			if len(origins) < 2 {
				t.Errorf("all 12 messages came from the same origin %v", origins)
			}
			if math.Abs(r.Summary.RMR-tc.rmr) > 1e-9 {
				t.Errorf("mean RMR %v, want %v", r.Summary.RMR, tc.rmr)
			}
			var deliveries int64
			for _, c := range r.Summary.HopHistogram {
				deliveries += c
			}
			if deliveries != int64(12*(len(tc.graph)-1)) {
				t.Errorf("hop histogram %v counts %d deliveries", r.Summary.HopHistogram, deliveries)
			}
		})
	}
}

// TestDeliveryRatioCountsOnlyNodesThatShouldDeliver feeds the tracker by
// hand: nodes dead at send are not expected; nodes that died later without
// delivering are not expected either; deliveries by nodes that were not
// eligible, and second deliveries, do not count.
func TestDeliveryRatioCountsOnlyNodesThatShouldDeliver(t *testing.T) {
	tr := newTracker()
	epoch := DefaultEpoch
	alive := map[int]bool{0: true, 1: true, 2: true, 3: false, 4: true}
	tr.sent(0, 0, epoch, []int{0, 1, 2, 3, 4}) // 3 dies after the send
	tr.sent(1, 1, epoch.Add(time.Second), []int{0, 1, 2, 4})
	id0, id1 := MessageID{1}, MessageID{2}
	tr.deliveredAt(0, 1, id0, 1, epoch.Add(10*time.Millisecond))
	tr.deliveredAt(0, 2, id0, 2, epoch.Add(20*time.Millisecond))
	tr.deliveredAt(0, 2, id0, 2, epoch.Add(30*time.Millisecond)) // duplicate
	tr.deliveredAt(1, 0, id1, 1, epoch.Add(time.Second+10*time.Millisecond))
	tr.deliveredAt(1, 3, id1, 1, epoch.Add(time.Second+10*time.Millisecond)) // not eligible
	for range 5 {
		tr.payload(id0)
	}
	tr.payload(id1)
	per, sum := tr.results(func(i int) bool { return alive[i] }, epoch)
	// Message 0: expected {1, 2, 4} (3 died undelivered), delivered 2.
	// Message 1: expected {0, 2, 4}, delivered 1.
	if per[0].Expected != 3 || per[0].Delivered != 2 || per[1].Expected != 3 || per[1].Delivered != 1 {
		t.Fatalf("per message %+v", per)
	}
	if sum.DeliveryRatio != 0.5 || sum.MinRatio != 1.0/3 {
		t.Fatalf("ratio %v min %v, want 0.5 and 1/3", sum.DeliveryRatio, sum.MinRatio)
	}
	if math.Abs(per[0].RMR-2.0/3) > 1e-12 || math.Abs(per[1].RMR+2.0/3) > 1e-12 {
		t.Fatalf("RMR %v %v", per[0].RMR, per[1].RMR)
	}
	if sum.DuplicateDeliveries != 1 || sum.MaxHops != 2 || !reflect.DeepEqual(sum.HopHistogram, []int64{0, 2, 1}) {
		t.Fatalf("summary %+v", sum)
	}
	if per[0].LastMs != 20 || sum.LastMaxMs != 20 || sum.LastP50Ms != 10 {
		t.Fatalf("times: %+v, %+v", per[0], sum)
	}
}

// TestBroadcastIsDeterministicForASeed runs a lossy, jittery scenario twice
// with the same seed and once with another: the first two agree exactly.
func TestBroadcastIsDeterministicForASeed(t *testing.T) {
	graph := randomGraph(60, 4, 11)
	run := func(seed uint64) []byte {
		r := runFlood(t, graph, 20, Config{Seed: seed, Latency: NormalLatency(20*time.Millisecond, 8*time.Millisecond), Loss: 0.05, CountBytes: true})
		r.Resources = Resources{}
		data, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	a, b, c := run(42), run(42), run(43)
	if string(a) != string(b) {
		t.Fatal("two runs with seed 42 differ")
	}
	if string(a) == string(c) {
		t.Fatal("runs with seeds 42 and 43 are identical: the seed drives nothing")
	}
}

// randomGraph returns a connected graph: a ring plus random chords.
func randomGraph(n, extra int, seed uint64) [][]int {
	var edges [][2]int
	for i := range n {
		edges = append(edges, [2]int{i, (i + 1) % n})
	}
	x := seed
	for i := range n {
		for range extra / 2 {
			x = x*6364136223846793005 + 1442695040888963407
			j := int(x>>33) % n
			if j != i && j != (i+1)%n && i != (j+1)%n {
				edges = append(edges, [2]int{i, j})
			}
		}
	}
	return undirected(n, edges)
}

func TestPayloadIndexRoundTrips(t *testing.T) {
	p := encodePayload(123456, 256)
	if len(p) != 256 {
		t.Fatalf("len %d", len(p))
	}
	if i, ok := decodePayload(p); !ok || i != 123456 {
		t.Fatalf("decode = %d, %v", i, ok)
	}
	if _, ok := decodePayload([]byte("SIM1")); ok {
		t.Fatal("decoded a truncated payload")
	}
	if _, ok := decodePayload([]byte("XXXX\x00\x00\x00\x01")); ok {
		t.Fatal("decoded a foreign payload")
	}
}
