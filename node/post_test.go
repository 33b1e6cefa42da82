package node

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/p2p-go/p2p/internal/testutil"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport/memnet"
)

// TestPostIsStepped checks Post: it returns without waiting for the loop,
// and its inputs are stepped in the order they were queued, before a later
// Do and before a later Step.
func TestPostIsStepped(t *testing.T) {
	net := memnet.New(memnet.Config{Seed: 1})
	defer net.Close()
	a, coreA, _ := startNode(t, net, "a")
	_, coreB, infoB := startNode(t, net, "b")
	ctx := context.Background()
	want := []string{"one", "two", "three"}
	for _, text := range want {
		if err := a.Post(ctx, sendRequest{to: infoB, text: text}); err != nil {
			t.Fatal(err)
		}
	}
	var asked int
	if err := a.Do(ctx, func(time.Time) { coreA.mu.Lock(); asked = coreA.asked; coreA.mu.Unlock() }); err != nil {
		t.Fatal(err)
	}
	if asked != 3 {
		t.Fatalf("a Do queued after three Posts saw %d of them stepped, want 3", asked)
	}
	if err := a.Step(ctx, sendRequest{to: infoB, text: "four"}); err != nil {
		t.Fatal(err)
	}
	want = append(want, "four")
	waitReceived(t, coreB, want)
}

// TestStepAbandonedWhileQueuedIsNotCarriedOut checks that a Step or Do whose
// context ends while the loop is busy returns the context's error and is
// never carried out, while Posts queued with it are.
func TestStepAbandonedWhileQueuedIsNotCarriedOut(t *testing.T) {
	net := memnet.New(memnet.Config{Seed: 1})
	defer net.Close()
	a, _, _ := startNode(t, net, "a")
	_, coreB, infoB := startNode(t, net, "b")
	ctx := context.Background()

	// Hold the loop in a Do until the abandoned requests are queued.
	release := make(chan struct{})
	held := make(chan struct{})
	heldDone := make(chan error, 1)
	go func() {
		heldDone <- a.Do(ctx, func(time.Time) { close(held); <-release })
	}()
	<-held
	if err := a.Post(ctx, sendRequest{to: infoB, text: "posted"}); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithCancel(ctx)
	stepDone := make(chan error, 1)
	go func() { stepDone <- a.Step(short, sendRequest{to: infoB, text: "abandoned"}) }()
	ran := false
	doDone := make(chan error, 1)
	go func() { doDone <- a.Do(short, func(time.Time) { ran = true }) }()
	// Both are queued behind the held Do once its Post is; cancel them.
	waitQueued(t, a, 3)
	cancel()
	if err := <-stepDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned Step returned %v, want context.Canceled", err)
	}
	if err := <-doDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned Do returned %v, want context.Canceled", err)
	}
	close(release)
	if err := <-heldDone; err != nil {
		t.Fatal(err)
	}
	if err := a.Step(ctx, sendRequest{to: infoB, text: "after"}); err != nil {
		t.Fatal(err)
	}
	waitReceived(t, coreB, []string{"posted", "after"})
	if ran {
		t.Fatal("an abandoned Do ran")
	}
}

// TestPostOnClosedRuntime checks that Post refuses once the runtime is closed.
func TestPostOnClosedRuntime(t *testing.T) {
	net := memnet.New(memnet.Config{Seed: 1})
	defer net.Close()
	a, _, _ := startNode(t, net, "a")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Post(context.Background(), sendRequest{to: peer.Info{Addr: "b"}, text: "x"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Post on a closed runtime returned %v, want ErrClosed", err)
	}
}

// waitQueued waits until n local inputs wait for the loop.
func waitQueued(t *testing.T, r *Runtime, n int) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, "requests queued", func() bool { return len(r.requests) >= n })
}

// waitReceived waits until core has received as many messages as want, and
// checks they are want, in order.
func waitReceived(t *testing.T, core *echoCore, want []string) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, "messages received", func() bool { got, _ := core.snapshot(); return len(got) >= len(want) })
	if got, _ := core.snapshot(); !slices.Equal(got, want) {
		t.Fatalf("received %v, want %v", got, want)
	}
}
