package kademlia

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"
	"os"
	"github.com/p2p-go/p2p/transport/tcp"
)

func BenchmarkZZDiag(b *testing.B) {
	ents, _ := os.ReadDir("/proc/self/fd")
	b.Logf("fds at start N=%d: %d", b.N, len(ents))
	dhts := startLoopbackDHTs(b, loopbackNodes)
	ents, _ = os.ReadDir("/proc/self/fd")
	b.Logf("fds after start: %d", len(ents))
	defer func() { ents, _ = os.ReadDir("/proc/self/fd"); b.Logf("fds at end: %d", len(ents)) }()
	rng := rand.New(rand.NewPCG(21, 22))
	for range 2 {
		for _, d := range dhts {
			lookupStats(b, d, randomTarget(rng))
		}
	}
	for i := range 10 {
		d := dhts[rng.IntN(len(dhts))]
		target := randomTarget(rng)
		t0 := time.Now()
		r1 := lookupStats(b, d, target)
		t1 := time.Now()
		r2 := lookupStats(b, d, target)
		t2 := time.Now()
		b.Logf("%d cold %v (%d) warm %v (%d)", i, t1.Sub(t0), r1.Contacted, t2.Sub(t1), r2.Contacted)
	}
	// raw handshake time
	k1, k2 := keyN(b, 5000), keyN(b, 5001)
	t1, _ := tcp.Listen(tcp.Config{ListenAddr: "127.0.0.1:0", Key: k1})
	t2, _ := tcp.Listen(tcp.Config{ListenAddr: "127.0.0.1:0", Key: k2})
	defer t1.Close(); defer t2.Close()
	go func() { for { c, err := t2.Accept(context.Background()); if err != nil { return }; _ = c } }()
	for range 5 {
		t0 := time.Now()
		c, err := t1.Dial(context.Background(), t2.LocalAddr())
		if err != nil { b.Fatal(err) }
		b.Logf("dial %v", time.Since(t0))
		c.Close()
	}
}
