package plumtree

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkBroadcast1000 broadcasts 256-byte messages, one after the other
// from random nodes, on 1,000 simulated nodes of degree 5 (5–15 ms links)
// whose tree has converged (3 warm-up broadcasts), and reports per message:
// delivery ratio, payload receptions per node, largest hop count, virtual
// time until the last node had the message, and bytes sent per node
// (encoded messages with their 4-byte frame headers; no encryption).
func BenchmarkBroadcast1000(b *testing.B) {
	for _, mode := range []struct {
		name   string
		config func(int, *Config)
	}{
		{"paper", nil},
		{"announce-to-eager", func(_ int, cfg *Config) { cfg.AnnounceToEager = true }},
		{"optimization-3", func(_ int, cfg *Config) { cfg.OptimizationThreshold = 3 }},
	} {
		b.Run(mode.name, func(b *testing.B) {
			const nodes = 1000
			net := newSimNetwork(b, simOptions{nodes: nodes, degree: 5, seed: 42, config: mode.config})
			for range 3 {
				net.broadcast(net.rng.IntN(nodes), MessageID{}, payload256)
				net.settle()
			}
			bytesBefore := sumValues(net.bytesByType())
			gossipBefore := net.bytesByType()["*plumtree.Gossip"]
			var delivered, receivers, payloads, maxHops int
			var lastDelivery time.Duration
			messages := 0
			b.ResetTimer()
			for b.Loop() {
				id := net.broadcast(net.rng.IntN(nodes), MessageID{}, payload256)
				net.settle()
				r := net.report(id)
				delivered += r.delivered
				receivers += r.receivers
				payloads += r.payloads
				maxHops = max(maxHops, r.maxHops)
				lastDelivery = max(lastDelivery, r.lastDelivery)
				messages++
			}
			b.StopTimer()
			bytes := sumValues(net.bytesByType()) - bytesBefore
			b.ReportMetric(float64(delivered)/float64(receivers), "delivery-ratio")
			b.ReportMetric(float64(payloads)/float64(receivers), "payloads/node/msg")
			b.ReportMetric(float64(maxHops), "max-hops")
			b.ReportMetric(float64(lastDelivery.Microseconds())/1000, "last-delivery-ms")
			gossipBytes := net.bytesByType()["*plumtree.Gossip"] - gossipBefore
			b.ReportMetric(float64(bytes)/float64(nodes*messages), "bytes/node/msg")
			b.ReportMetric(float64(bytes-gossipBytes)/float64(nodes*messages), "control-bytes/node/msg")
		})
	}
}

func sumValues(m map[string]int) int {
	total := 0
	for _, v := range m {
		total += v
	}
	return total
}

// String renders a report for test logs.
func (r broadcastReport) String() string {
	return fmt.Sprintf("delivered %d/%d, RMR %.4f, max hops %d, last delivery %v", r.delivered, r.receivers, r.rmr, r.maxHops, r.lastDelivery)
}
