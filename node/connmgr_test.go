package node

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/p2p-go/p2p/internal/testutil"
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport/memnet"
)

// startHub starts a node with a connection manager of the given marks.
func startHub(t *testing.T, net *memnet.Network, high, low int) (*Runtime, *echoCore) {
	t.Helper()
	key, err := peer.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := net.Listen(key, "hub")
	if err != nil {
		t.Fatal(err)
	}
	core := &echoCore{}
	rt, err := Start(Config{Core: core, Transport: tr, HighWater: high, LowWater: low, GracePeriod: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt, core
}

// openConnsTo reports which of peers the runtime holds a usable connection to.
func openConnsTo(t *testing.T, rt *Runtime, peers []peer.Info) []bool {
	t.Helper()
	open := make([]bool, len(peers))
	if err := rt.Do(context.Background(), func(time.Time) {
		for i, p := range peers {
			open[i] = rt.usable(p.ID) != nil
		}
	}); err != nil {
		t.Fatal(err)
	}
	return open
}

// The connection manager (libp2p's connmgr as the model): above HighWater
// open connections it closes the least recently used ones down to
// LowWater, and spares the links the core asked to keep.
func TestConnectionManagerTrimsOldestIdleFirstAndSparesKeptLinks(t *testing.T) {
	for _, keepFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep first peer %v", keepFirst), func(t *testing.T) {
			net := memnet.New(memnet.Config{Seed: 1})
			defer net.Close()
			hub, hubCore := startHub(t, net, 4, 2)
			hubInfo := peer.Info{Addr: "hub"}
			var peers []peer.Info
			for i := range 5 {
				rt, _, info := startNode(t, net, fmt.Sprintf("p%d", i))
				peers = append(peers, info)
				if err := rt.Step(context.Background(), sendRequest{to: hubInfo, text: info.Addr}); err != nil {
					t.Fatal(err)
				}
				// One at a time, so that the hub used them in this order.
				testutil.Eventually(t, 10*time.Second, "the hub to receive from "+info.Addr, func() bool { got, _ := hubCore.snapshot(); return len(got) == i+1 })
				if i == 0 && keepFirst {
					if err := hub.Step(context.Background(), overlay.Connect{Peer: info}); err != nil {
						t.Fatal(err)
					}
				}
			}
			// The fifth connection took the hub over 4: it closed the
			// three used the longest ago (or, sparing p0, the next three).
			want := []bool{false, false, false, true, true}
			if keepFirst {
				want = []bool{true, false, false, false, true}
			}
			testutil.Eventually(t, 10*time.Second, "the hub to settle at the low-water mark", func() bool { return hub.Stats().ConnectionsOpen == 2 })
			if got := openConnsTo(t, hub, peers); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("connections open to p0..p4: %v, want %v", got, want)
			}
			if st := hub.Stats(); st.ConnsTrimmed != 3 {
				t.Fatalf("stats %+v, want 3 connections trimmed", st)
			}
		})
	}
}

// A connection used within the grace period is never trimmed, whatever the
// count: a request waiting for its reply must not lose it.
func TestConnectionManagerSparesConnectionsInUse(t *testing.T) {
	net := memnet.New(memnet.Config{Seed: 1})
	defer net.Close()
	key, err := peer.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := net.Listen(key, "hub")
	if err != nil {
		t.Fatal(err)
	}
	hubCore := &echoCore{}
	hub, err := Start(Config{Core: hubCore, Transport: tr, HighWater: 2, LowWater: 1, GracePeriod: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	for i := range 4 {
		rt, _, info := startNode(t, net, fmt.Sprintf("p%d", i))
		if err := rt.Step(context.Background(), sendRequest{to: peer.Info{Addr: "hub"}, text: info.Addr}); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, "the hub to receive from all", func() bool { got, _ := hubCore.snapshot(); return len(got) == 4 })
	if st := hub.Stats(); st.ConnsTrimmed != 0 || st.ConnectionsOpen != 4 {
		t.Fatalf("stats %+v, want nothing trimmed within the grace period", st)
	}
}

// gatedCore counts what it receives, each Received waiting for the gate
// to open: a loop slower than its peers.
// holdTurn keeps a turn of r's loop under way until gate is closed, so
// that readers queue what they read for the loop rather than step it
// themselves (receiveInline), as they do while the loop is busy. The
// connections must be open: accepting one takes a turn.
func holdTurn(r *Runtime, gate <-chan struct{}) {
	held := make(chan struct{})
	go r.Do(context.Background(), func(time.Time) {
		close(held)
		<-gate
	})
	<-held
}

// Messages waiting for a busy loop are bounded in bytes, not only in
// number: readers wait beyond MaxQueuedBytes, and every message arrives
// once the loop catches up.
func TestQueuedMessagesAreBoundedInBytes(t *testing.T) {
	const limit = 1 << 20
	net := memnet.New(memnet.Config{Seed: 1})
	defer net.Close()
	key, err := peer.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := net.Listen(key, "slow")
	if err != nil {
		t.Fatal(err)
	}
	core := &echoCore{}
	slow, err := Start(Config{Core: core, Transport: tr, MaxQueuedBytes: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	gate := make(chan struct{})
	openGate := sync.OnceFunc(func() { close(gate) })
	defer openGate() // before Close, should the test fail with the loop at the gate
	sender, _, _ := startNode(t, net, "sender")
	// A first message opens the connection; then the loop is kept busy.
	if err := sender.Step(context.Background(), sendRequest{to: peer.Info{Addr: "slow"}, text: "first"}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the first message", func() bool { got, _ := core.snapshot(); return len(got) == 1 })
	holdTurn(slow, gate)
	text := string(make([]byte, 100<<10))
	const count = 40 // 4 MB in all
	for range count {
		if err := sender.Step(context.Background(), sendRequest{to: peer.Info{Addr: "slow"}, text: text}); err != nil {
			t.Fatal(err)
		}
	}
	// The loop waits at the gate; the queue fills up to the limit and the
	// reader waits.
	testutil.Eventually(t, 10*time.Second, "the queue to fill", func() bool { return int(slow.queued.InUse()) > limit-200<<10 })
	if used := int(slow.queued.InUse()); used > limit {
		t.Fatalf("%d bytes queued, limit %d", used, limit)
	}
	if n := len(slow.inbound); n >= count-1 {
		t.Fatalf("%d messages queued: the byte bound did not hold the reader back", n)
	}
	openGate()
	testutil.Eventually(t, 10*time.Second, "every message", func() bool { got, _ := core.snapshot(); return len(got) == 1+count })
	if used := int(slow.queued.InUse()); used != 0 {
		t.Fatalf("%d bytes still counted as queued", used)
	}
}
