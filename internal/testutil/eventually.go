package testutil

import (
	"testing"
	"time"
)

// Polling bounds of Eventually: the first check is repeated after
// firstPoll, the interval then doubles up to the timeout's two-hundredth,
// kept within [firstPoll, maxPoll], so a condition that holds quickly is
// seen quickly and a benchmark that waits with Eventually before it stops
// its timer loses at most maxPoll (the 20 ms most former helpers polled at).
const (
	firstPoll = time.Millisecond
	maxPoll   = 20 * time.Millisecond
)

// Eventually calls cond until it returns true and returns how long that
// took. When timeout passes first it fails tb with "timed out after
// <timeout> waiting for <what>". It never sleeps past the deadline by more
// than one poll interval and is meant for runtime tests (real goroutines,
// sockets, processes); cores are tested on a virtual clock instead.
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	tb.Helper()
	return EventuallyWhy(tb, timeout, what, func() (bool, string) { return cond(), "" })
}

// EventuallyWhy is [Eventually] for a condition that explains itself: cond
// returns whether it holds and, when it does not, why; the failure message
// ends with the last reason given ("timed out after 10s waiting for
// convergence: node 2 lacks key a").
func EventuallyWhy(tb testing.TB, timeout time.Duration, what string, cond func() (ok bool, why string)) time.Duration {
	tb.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	interval := firstPoll
	longest := min(max(timeout/200, firstPoll), maxPoll)
	for {
		ok, why := cond()
		if ok {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			if why != "" {
				tb.Fatalf("timed out after %v waiting for %s: %s", timeout, what, why)
			}
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(interval)
		interval = min(interval*2, longest)
	}
}
