package p2p

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/p2p-go/p2p/kademlia"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport/tcp"
)

// Lookups over the real transport: 200 DHT nodes in one process, each on
// its own loopback TCP port with the encrypted, authenticated handshake.
// Targets: a lookup contacts at most 35 nodes and takes at most 5 ms, at
// the median, once the routing tables have settled.
//
//	go test -run '^$' -bench BenchmarkLookupLoopback200Nodes -benchtime 2000x .

const loopbackNodes = 200

// loopbackIdleTimeout closes idle links sooner than the runtime's default
// (30 s): the 200 nodes share one process's file descriptors (two per
// loopback connection, 20,000 here), which a full mesh would exceed.
const loopbackIdleTimeout = 10 * time.Second

// startLoopbackDHTs starts n DHT nodes on 127.0.0.1 sharing a cluster
// secret; node i joins through a random earlier node.
func startLoopbackDHTs(b *testing.B, n int) []*DHT {
	b.Helper()
	secret := make([]byte, tcp.SecretLen)
	for i := range secret {
		secret[i] = byte(i * 7)
	}
	rng := rand.New(rand.NewPCG(11, 12))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var dhts []*DHT
	b.Cleanup(func() {
		var wg sync.WaitGroup
		for _, d := range dhts {
			wg.Go(func() { d.Close() })
		}
		wg.Wait()
	})
	for i := range n {
		key := kadKey(b, 1000+i)
		tr, err := tcp.Listen(tcp.Config{ListenAddr: "127.0.0.1:0", Key: key, Secret: secret})
		if err != nil {
			b.Fatal(err)
		}
		d, err := NewDHT(DHTConfig{Key: key, Transport: tr, DataDir: b.TempDir(), Seed: uint64(i + 1), idleTimeout: loopbackIdleTimeout})
		if err != nil {
			b.Fatal(err)
		}
		dhts = append(dhts, d)
		if err := d.Start(ctx); err != nil {
			b.Fatal(err)
		}
		if i > 0 {
			if _, err := d.Bootstrap(ctx, []string{dhts[rng.IntN(i)].Addr()}); err != nil {
				b.Fatalf("node %d: bootstrap: %v", i, err)
			}
		}
	}
	return dhts
}

// lookupStats runs one lookup and returns its result.
func lookupStats(b *testing.B, d *DHT, target peer.ID) kademlia.LookupResult {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := d.lookup(ctx, target)
	if err != nil {
		b.Fatal(err)
	}
	return res
}

// percentile returns the value at fraction p of the sorted values.
func percentile(values []int, p float64) int {
	if len(values) == 0 {
		return 0
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	return sorted[int(p*float64(len(sorted)-1))]
}

func randomTarget(rng *rand.Rand) peer.ID {
	var id peer.ID
	for i := range id {
		id[i] = byte(rng.Uint32())
	}
	return id
}

func BenchmarkLookupLoopback200Nodes(b *testing.B) {
	dhts := startLoopbackDHTs(b, loopbackNodes)
	rng := rand.New(rand.NewPCG(21, 22))
	// Settling: the joins' bucket refreshes end, and every node runs
	// lookups as a node of a running network does.
	for range 2 {
		for _, d := range dhts {
			lookupStats(b, d, randomTarget(rng))
		}
	}
	tableSizes := 0
	for _, d := range dhts {
		_ = d.do(context.Background(), func(time.Time) { tableSizes += d.core.TableSize() })
	}
	dials := func() (total uint64) {
		for _, d := range dhts {
			total += d.rt.Stats().Dials
		}
		return total
	}
	var contacted []int
	var took, warm []time.Duration
	var dialed uint64
	b.ResetTimer()
	for b.Loop() {
		d := dhts[rng.IntN(len(dhts))]
		target := randomTarget(rng)
		dialsBefore := dials()
		start := time.Now()
		res := lookupStats(b, d, target)
		took = append(took, time.Since(start))
		dialed += dials() - dialsBefore
		contacted = append(contacted, res.Contacted)
		// The same lookup again, on the connections the first one opened:
		// the protocol's time without the handshakes.
		b.StopTimer()
		start = time.Now()
		lookupStats(b, d, target)
		warm = append(warm, time.Since(start))
		b.StartTimer()
	}
	b.StopTimer()
	durationAt := func(values []time.Duration, p float64) float64 {
		slices.Sort(values)
		return float64(values[int(p*float64(len(values)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(percentile(contacted, .5)), "contacted-p50")
	b.ReportMetric(float64(percentile(contacted, .99)), "contacted-p99")
	b.ReportMetric(durationAt(took, .5), "lookup-ms-p50")
	b.ReportMetric(durationAt(took, .99), "lookup-ms-p99")
	b.ReportMetric(durationAt(warm, .5), "warm-lookup-ms-p50")
	b.ReportMetric(durationAt(warm, .99), "warm-lookup-ms-p99")
	b.ReportMetric(float64(tableSizes)/float64(len(dhts)), "contacts/node")
	b.ReportMetric(float64(dialed)/float64(len(took)), "dials/lookup")
}
