package p2p_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2p-go/p2p"
	"github.com/p2p-go/p2p/kv"
	"github.com/p2p-go/p2p/kv/boltstore"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport/memnet"
)

// countingBolt counts the durable writes (one fsync each) of a Bolt file.
type countingBolt struct {
	*boltstore.Bolt
	writes atomic.Int64
}

func (c *countingBolt) Write(put []kv.Record, remove []string) error {
	c.writes.Add(1)
	return c.Bolt.Write(put, remove)
}

// BenchmarkStorePutsConcurrent: one node with its bbolt file on the test's
// temporary directory, 64 callers putting keys at once. It reports Puts per
// second and durable writes (fsyncs) per Put: the disk writer merges the
// Persist outputs that wait for it.
func BenchmarkStorePutsConcurrent(b *testing.B) {
	net := memnet.New(memnet.Config{Seed: 1})
	defer net.Close()
	key, err := peer.GenerateKey(nil)
	if err != nil {
		b.Fatal(err)
	}
	tr, err := net.Listen(key, "node-0")
	if err != nil {
		b.Fatal(err)
	}
	bolt, err := boltstore.Open(filepath.Join(b.TempDir(), boltstore.File))
	if err != nil {
		b.Fatal(err)
	}
	backend := &countingBolt{Bolt: bolt}
	node, err := p2p.NewBroadcaster(p2p.Config{Key: key, Transport: tr, StoreBackend: backend, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer node.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := node.Start(ctx); err != nil {
		b.Fatal(err)
	}
	const callers = 64
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if _, err := node.Store().Put(ctx, fmt.Sprintf("bench/%d", i%1000), []byte("value")); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "puts/s")
	b.ReportMetric(float64(backend.writes.Load())/float64(b.N), "fsyncs/put")
}
