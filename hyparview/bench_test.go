package hyparview

import (
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
)

// BenchmarkCoreStep measures one core's Step on a mix of the messages a
// busy node receives: keepalives, NEIGHBOR requests, shuffles, ticks.
func BenchmarkCoreStep(b *testing.B) {
	c, err := New(Config{Self: testSelf, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	now := epoch
	for i := 1; i <= 5; i++ {
		c.Step(now, overlay.Received{From: testInfo(i), Msg: &NeighborMsg{HighPriority: true}})
	}
	for i := 0; i < 30; i++ {
		c.Step(now, overlay.Received{From: testInfo(1), Msg: &ForwardJoinMsg{NewNode: testInfo(100 + i), TTL: DefaultPassiveRandomWalkLength}})
	}
	shufflePeers := []peer.Info{testInfo(300), testInfo(301), testInfo(302), testInfo(303)}
	inputs := []any{
		overlay.Received{From: testInfo(1), Msg: &KeepaliveMsg{}},
		overlay.Received{From: testInfo(2), Msg: &KeepaliveMsg{Reply: true}},
		overlay.Received{From: testInfo(50), Msg: &NeighborMsg{}},
		overlay.Received{From: testInfo(3), Msg: &ShuffleMsg{Origin: testInfo(51), TTL: 1, Peers: shufflePeers}},
		overlay.Received{From: testInfo(4), Msg: &ForwardJoinMsg{NewNode: testInfo(52), TTL: 4}},
		overlay.Tick{},
	}
	var out []any
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now = now.Add(time.Millisecond)
		c.Heard(now, testInfo(1+i%5).ID)
		c.Step(now, inputs[i%len(inputs)])
		out = c.Drain(out[:0])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "steps/s")
}

// BenchmarkOverlay runs a 200-node overlay for 10 virtual seconds per
// iteration (joins, keepalives, shuffles, repairs), through the wire codec.
func BenchmarkOverlay(b *testing.B) {
	n := newTestNet(b, 1)
	n.grow(200, 10*time.Millisecond)
	n.run(10 * time.Second)
	steps := n.steps
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n.run(10 * time.Second)
	}
	b.ReportMetric(float64(n.steps-steps)/b.Elapsed().Seconds(), "steps/s")
}
