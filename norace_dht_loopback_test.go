//go:build !race

package p2p

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/p2p-go/p2p/kademlia"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport/tcp"
)

// Issue 10: 140 DHT nodes in one process held about 14,000 sockets (about
// 50 connections per node) and 200 ran out of file descriptors. With the
// connection manager's default marks (DefaultDHTHighWater) and the
// transport's default caps, 500 nodes in one process on loopback, each on
// its own port with the encrypted handshake, answer lookups with the true K
// closest nodes.
//
//	go test -run TestLoopback500NodesLookupsReturnTheTrueKClosest -v .
func TestLoopback500NodesLookupsReturnTheTrueKClosest(t *testing.T) {
	const (
		nodes   = 500
		lookups = 200
	)
	// Two descriptors per loopback connection (both ends are in this
	// process), one per listener, and some for the test binary.
	need := uint64(nodes + nodes*DefaultDHTHighWater + 1000)
	var limit syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &limit); err == nil && limit.Cur < need {
		t.Skipf("open-file limit %d (Go raises the soft limit to the hard one): %d nodes at %d connections each need up to %d", limit.Cur, nodes, DefaultDHTHighWater, need)
	}
	secret := make([]byte, tcp.SecretLen)
	for i := range secret {
		secret[i] = byte(i * 5)
	}
	rng := rand.New(rand.NewPCG(51, 52))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var dhts []*DHT
	var trs []*tcp.Transport
	defer func() {
		var wg sync.WaitGroup
		for _, d := range dhts {
			wg.Go(func() { d.Close() })
		}
		wg.Wait()
	}()
	maxFDs := 0
	sampleFDs := func() int {
		entries, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			return 0
		}
		maxFDs = max(maxFDs, len(entries))
		return len(entries)
	}
	dataDir := t.TempDir()
	fdsBefore := sampleFDs()
	start := time.Now()
	for i := range nodes {
		key := kadKey(t, 5000+i)
		tr, err := tcp.Listen(tcp.Config{ListenAddr: "127.0.0.1:0", Key: key, Secret: secret})
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		trs = append(trs, tr)
		d, err := NewDHT(DHTConfig{Key: key, Transport: tr, DataDir: dataDir, Seed: uint64(i + 1)})
		if err != nil {
			t.Fatal(err)
		}
		dhts = append(dhts, d)
		if err := d.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			contact := rng.IntN(i)
			if _, err := d.Bootstrap(ctx, []string{dhts[contact].Addr()}); err != nil {
				t.Fatalf("node %d: bootstrap through node %d: %v\nnew node: %+v %+v\ncontact: %+v %+v", i, contact, err,
					tr.Stats(), d.rt.Stats(), trs[contact].Stats(), dhts[contact].rt.Stats())
			}
		}
		if i%50 == 0 {
			sampleFDs()
		}
	}
	joined := time.Since(start)
	ids := make([]peer.ID, len(dhts))
	for i, d := range dhts {
		ids[i] = d.ID()
	}
	exact := 0
	var missed []string
	start = time.Now()
	for n := range lookups {
		from := rng.IntN(len(dhts))
		var target peer.ID
		for i := range target {
			target[i] = byte(rng.Uint32())
		}
		closest, err := dhts[from].Lookup(ctx, target)
		if err != nil {
			t.Fatalf("lookup %d from node %d: %v", n, from, err)
		}
		want := slices.DeleteFunc(slices.Clone(ids), func(id peer.ID) bool { return id == ids[from] })
		slices.SortFunc(want, func(a, b peer.ID) int {
			da, db := kademlia.Distance(target, a), kademlia.Distance(target, b)
			return bytes.Compare(da[:], db[:])
		})
		want = want[:kademlia.DefaultK]
		got := make([]peer.ID, len(closest))
		for i, m := range closest {
			got[i] = m.ID
		}
		if slices.Equal(got, want) {
			exact++
		} else {
			missed = append(missed, target.Short())
		}
		if n%20 == 0 {
			sampleFDs()
		}
	}
	looked := time.Since(start)
	maxConns, totalConns, trimmed := int64(0), int64(0), uint64(0)
	for _, d := range dhts {
		st := d.rt.Stats()
		maxConns = max(maxConns, st.ConnectionsOpen)
		totalConns += st.ConnectionsOpen
		trimmed += st.ConnsTrimmed
	}
	var kad kademlia.Stats
	for _, d := range dhts {
		st := d.Stats().Kademlia
		kad.RPCsSent += st.RPCsSent
		kad.RPCsLate += st.RPCsLate
		kad.LateReplies += st.LateReplies
		kad.RPCsResent += st.RPCsResent
		kad.RPCTimeouts += st.RPCTimeouts
	}
	fds := sampleFDs()
	t.Logf("%d nodes joined in %v; %d lookups in %v: %d returned the true %d closest",
		nodes, joined.Round(time.Millisecond), lookups, looked.Round(time.Millisecond), exact, kademlia.DefaultK)
	t.Logf("sockets: %d descriptors open at the end (%d before, peak sampled %d), %.1f connection ends per node (max %d), %d trimmed",
		fds, fdsBefore, maxFDs, float64(totalConns)/float64(nodes), maxConns, trimmed)
	t.Logf("requests: %d sent, %d late (no reply within the RPC timeout), %d of them answered later, %d sent again after a link down, %d failed by timeout",
		kad.RPCsSent, kad.RPCsLate, kad.LateReplies, kad.RPCsResent, kad.RPCTimeouts)
	if exact != lookups {
		t.Fatalf("%d of %d lookups returned the true %d closest; missed targets %v", exact, lookups, kademlia.DefaultK, missed)
	}
	// A node may exceed the high-water mark with connections in use (within
	// the grace period), but the process stays within the budget the marks
	// promise: a listener and DefaultDHTHighWater connection ends per node.
	if budget := nodes + nodes*DefaultDHTHighWater + fdsBefore; maxFDs > budget {
		t.Fatalf("%d descriptors open at the peak, over the %d the high-water mark allows", maxFDs, budget)
	}
}
