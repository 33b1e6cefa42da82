package node

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/p2p-go/p2p/internal/testutil"
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport/memnet"
)

// fakeClock is a Clock that moves only when the test advances it; its
// timers and tickers fire from Advance.
type fakeClock struct {
	mu     sync.Mutex // guards the fields below
	now    time.Time
	timers []*fakeTimer
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer { return c.add(d, 0) }

func (c *fakeClock) NewTicker(d time.Duration) Ticker { return fakeTicker{c.add(d, d)} }

// fakeTicker is a fakeTimer that fires every period.
type fakeTicker struct{ t *fakeTimer }

func (t fakeTicker) C() <-chan time.Time { return t.t.ch }
func (t fakeTicker) Stop()               { t.t.Stop() }

func (c *fakeClock) add(d, period time.Duration) *fakeTimer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clock: c, ch: make(chan time.Time, 1), when: c.now.Add(d), period: period, active: true}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves the clock by d and fires, with the new time, the timers and
// tickers that fell due; like the time package's, a channel holds one
// value and a ticker drops the ticks nobody read.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.timers {
		if !t.active || t.when.After(c.now) {
			continue
		}
		select {
		case t.ch <- c.now:
		default:
		}
		if t.period == 0 {
			t.active = false
			continue
		}
		for !t.when.After(c.now) {
			t.when = t.when.Add(t.period)
		}
	}
}

type fakeTimer struct {
	clock  *fakeClock
	ch     chan time.Time
	when   time.Time     // guarded by clock.mu
	period time.Duration // zero for a timer
	active bool          // guarded by clock.mu
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := t.active
	t.active = false
	return was
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := t.active
	t.active, t.when = true, t.clock.now.Add(d)
	return was
}

func testKeyOf(t *testing.T) *peer.Key {
	t.Helper()
	key, err := peer.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

var (
	_ Clock = (*fakeClock)(nil)
	_ Clock = SystemClock{}
)

// deadlineCore asks to be ticked at a fixed time and records the times it
// was stepped with.
type deadlineCore struct {
	deadline time.Time
	mu       sync.Mutex // guards ticks
	ticks    []time.Time
}

func (c *deadlineCore) Step(now time.Time, input any) {
	if _, ok := input.(overlay.Tick); ok {
		c.mu.Lock()
		c.ticks = append(c.ticks, now)
		c.mu.Unlock()
		c.deadline = time.Time{}
	}
}

func (c *deadlineCore) Drain(dst []any) []any { return dst }

func (c *deadlineCore) NextDeadline() (time.Time, bool) { return c.deadline, !c.deadline.IsZero() }

func (c *deadlineCore) tickTimes() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.ticks...)
}

// The runtime reads no clock of its own: the core is stepped with the
// injected clock's time and ticked when that clock passes its deadline.
func TestRuntimeTakesTimeFromTheInjectedClock(t *testing.T) {
	net := memnet.New(memnet.Config{Seed: 1})
	defer net.Close()
	clock := newFakeClock()
	deadline := clock.Now().Add(time.Minute)
	core := &deadlineCore{deadline: deadline}
	tr, err := net.Listen(testKeyOf(t), "a")
	if err != nil {
		t.Fatal(err)
	}
	rt, err := Start(Config{Core: core, Transport: tr, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	ctx := context.Background()
	var seen time.Time
	if err := rt.Do(ctx, func(now time.Time) { seen = now }); err != nil {
		t.Fatal(err)
	}
	if !seen.Equal(clock.Now()) {
		t.Fatalf("Do ran at %v, want the injected clock's %v", seen, clock.Now())
	}
	clock.Advance(59 * time.Second)
	if err := rt.Do(ctx, func(time.Time) {}); err != nil {
		t.Fatal(err)
	}
	if ticks := core.tickTimes(); len(ticks) != 0 {
		t.Fatalf("ticked at %v, before the deadline", ticks)
	}
	clock.Advance(time.Second)
	testutil.Eventually(t, 10*time.Second, "the tick at the deadline", func() bool { return len(core.tickTimes()) == 1 })
	if got := core.tickTimes()[0]; !got.Equal(deadline) {
		t.Fatalf("ticked with time %v, want the clock's %v", got, deadline)
	}
}

// Links the core did not ask to keep close after IdleTimeout of the
// injected clock without traffic.
func TestIdleLinkClosesWhenTheInjectedClockPassesIdleTimeout(t *testing.T) {
	net := memnet.New(memnet.Config{Seed: 1})
	defer net.Close()
	clock := newFakeClock()
	start := clock.Now()
	trA, err := net.Listen(testKeyOf(t), "a")
	if err != nil {
		t.Fatal(err)
	}
	coreA := &echoCore{}
	a, err := Start(Config{Core: coreA, Transport: trA, Clock: clock, IdleTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	_, coreB, infoB := startNode(t, net, "b")
	ctx := context.Background()
	if err := a.Step(ctx, sendRequest{to: infoB, text: "hello"}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the message at b", func() bool { got, _ := coreB.snapshot(); return len(got) == 1 })
	clock.Advance(20 * time.Second)
	if err := a.Do(ctx, func(time.Time) {}); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.ConnectionsOpen != 1 {
		t.Fatalf("%d connections open 20 s after the last message, want 1", st.ConnectionsOpen)
	}
	// The loop reads the housekeeping ticker when it gets to it: move the
	// clock a second at a time until the link closes.
	testutil.Eventually(t, 10*time.Second, "the idle link's closure", func() bool {
		clock.Advance(time.Second)
		_, downs := coreA.snapshot()
		return len(downs) == 1
	})
	if idle := clock.Now().Sub(start); idle <= 30*time.Second {
		t.Fatalf("link closed after %v idle, before IdleTimeout", idle)
	}
}
