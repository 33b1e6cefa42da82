//go:build !race

package kademlia

import (
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/sim/engine"
)

// Benchmarks on a simulated network of 1,000 nodes with fixed 20 ms links.
// The figures that matter are the reported metrics (hops, messages, virtual
// lookup time, bytes), not ns/op, which measures the simulator.

const benchNodes = 1000

func benchNet(b *testing.B, encode bool) *simNet {
	b.Helper()
	s := newSimNet(b, 1000)
	s.latency = engine.FixedLatency(20 * time.Millisecond)
	s.encode = encode
	s.build(benchNodes)
	s.runFor(time.Minute)
	return s
}

func BenchmarkLookup1000Nodes(b *testing.B) {
	s := benchNet(b, false)
	var hops, requests, messages, millis []int
	b.ResetTimer()
	for b.Loop() {
		from := s.randomAlive()
		start := s.now()
		res := s.lookup(from, s.randomID())
		if res.Err != nil {
			b.Fatal(res.Err)
		}
		hops = append(hops, res.Hops)
		requests = append(requests, res.Contacted)
		// One request and one reply per node asked.
		messages = append(messages, 2*res.Contacted)
		millis = append(millis, int(s.now().Sub(start)/time.Millisecond))
	}
	b.ReportMetric(float64(percentile(hops, .5)), "hops-p50")
	b.ReportMetric(float64(percentile(hops, .99)), "hops-p99")
	b.ReportMetric(float64(percentile(messages, .5)), "msgs-p50")
	b.ReportMetric(float64(percentile(messages, .99)), "msgs-p99")
	b.ReportMetric(float64(percentile(requests, .5)), "requests-p50")
	b.ReportMetric(float64(percentile(millis, .5)), "lookup-ms-p50")
	b.ReportMetric(float64(percentile(millis, .99)), "lookup-ms-p99")
}

func BenchmarkGet1000Nodes(b *testing.B) {
	s := benchNet(b, false)
	var keys []Record
	for i := range 100 {
		res := s.put(s.randomAlive(), Record{Value: []byte{byte(i), byte(i >> 8), 1}})
		if res.Err != nil {
			b.Fatal(res.Err)
		}
		keys = append(keys, NewImmutableRecord([]byte{byte(i), byte(i >> 8), 1}))
	}
	var hops, millis []int
	b.ResetTimer()
	i := 0
	for b.Loop() {
		start := s.now()
		res := s.get(s.randomAlive(), keys[i%len(keys)].Key)
		i++
		if res.Err != nil {
			b.Fatal(res.Err)
		}
		hops = append(hops, res.Hops)
		millis = append(millis, int(s.now().Sub(start)/time.Millisecond))
	}
	b.ReportMetric(float64(percentile(hops, .5)), "hops-p50")
	b.ReportMetric(float64(percentile(millis, .5)), "get-ms-p50")
	b.ReportMetric(float64(percentile(millis, .99)), "get-ms-p99")
}

func BenchmarkBroadcast1000Nodes(b *testing.B) {
	s := benchNet(b, true)
	typ := reflect.TypeOf(&BroadcastMessage{})
	delivered := 0
	s.onDeliver = func(int, Deliver) { delivered++ }
	payload := make([]byte, 256)
	var sent, bytesSent int
	b.ResetTimer()
	for b.Loop() {
		before, beforeBytes := s.sent(typ), s.bytes()
		s.step(s.randomAlive(), Broadcast{Payload: payload})
		s.runFor(5 * time.Second)
		sent += s.sent(typ) - before
		bytesSent += s.bytes() - beforeBytes
	}
	// Bytes include the maintenance traffic of those 5 s (little).
	n := float64(b.N)
	b.ReportMetric(float64(sent)/n/benchNodes, "msgs/node")
	b.ReportMetric(float64(bytesSent)/n/benchNodes, "bytes/node")
	b.ReportMetric(float64(delivered)/n/(benchNodes-1), "delivered-ratio")
}

// BenchmarkMemoryPerNode builds the network once, whatever b.N: the
// figure is the heap per node, measured with runtime.MemStats.
func BenchmarkMemoryPerNode(b *testing.B) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := benchNet(b, false)
	s.sim = nil // the engine's state (pending events, links) is not the nodes'
	runtime.GC()
	runtime.ReadMemStats(&after)
	contacts := 0
	for _, n := range s.nodes {
		contacts += n.core.TableSize()
	}
	for b.Loop() {
		s.nodes[0].core.Closest(peer.ID{1}, DefaultK)
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/benchNodes, "heap-bytes/node")
	b.ReportMetric(float64(contacts)/benchNodes, "contacts/node")
	runtime.KeepAlive(s)
}
