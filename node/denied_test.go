package node

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2p-go/p2p/internal/testutil"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport/memnet"
)

// A denied peer (a revoked node) loses its links when CloseDenied is
// called, its new connections are closed right after the handshake without
// a message read, and messages to it are dropped without a dial; each
// refusal is counted.
func TestDeniedPeersAreDisconnectedAndRefused(t *testing.T) {
	net := memnet.New(memnet.Config{Seed: 1})
	defer net.Close()
	a, coreA, infoA := startNode(t, net, "a")
	keyB, err := peer.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := net.Listen(keyB, "b")
	if err != nil {
		t.Fatal(err)
	}
	var denyA atomic.Bool
	coreB := &echoCore{}
	b, err := Start(Config{Core: coreB, Transport: tr, Denied: func(id peer.ID) bool { return denyA.Load() && id == infoA.ID }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	infoB := peer.Info{ID: keyB.ID(), Addr: "b"}
	ctx := context.Background()

	if err := a.Step(ctx, sendRequest{to: infoB, text: "one"}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the first message", func() bool { got, _ := coreB.snapshot(); return len(got) == 1 })

	denyA.Store(true)
	b.CloseDenied()
	testutil.Eventually(t, 10*time.Second, "a's link closed", func() bool { _, downs := coreA.snapshot(); return len(downs) == 1 })
	if got := b.Stats().DeniedConns; got != 1 {
		t.Fatalf("DeniedConns = %d after CloseDenied, want 1", got)
	}

	// a dials again: the handshake completes, then b closes the connection.
	if err := a.Step(ctx, sendRequest{to: infoB, text: "two"}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the new connection refused", func() bool { return b.Stats().DeniedConns == 2 })
	testutil.Eventually(t, 10*time.Second, "a's second link down", func() bool { _, downs := coreA.snapshot(); return len(downs) == 2 })
	if got, _ := coreB.snapshot(); !slices.Equal(got, []string{"one"}) {
		t.Fatalf("b received %v from a denied peer", got)
	}

	// b's messages to a are dropped without a dial.
	dials := b.Stats().Dials
	if err := b.Step(ctx, sendRequest{to: infoA, text: "to a"}); err != nil {
		t.Fatal(err)
	}
	_, downs := coreB.snapshot()
	if st := b.Stats(); st.DeniedSends != 1 || st.Dials != dials || len(downs) == 0 || downs[len(downs)-1].Peer != infoA.ID {
		t.Fatalf("send to a denied peer: stats %+v, link downs %v", st, downs)
	}
}
