package testutil

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a testing.TB that records a fatal failure instead of ending
// the test, so that Eventually's failure can be checked.
type recorder struct {
	testing.TB
	failure string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failure = fmt.Sprintf(format, args...)
	panic(r)
}

// run calls f with a recorder and returns the failure it recorded.
func run(t *testing.T, f func(tb testing.TB)) (failure string) {
	r := &recorder{TB: t}
	defer func() {
		if p := recover(); p != nil && p != r {
			panic(p)
		}
		failure = r.failure
	}()
	f(r)
	return ""
}

// TestEventuallyReturnsOnceTheConditionHolds checks that Eventually keeps
// polling until the condition holds, and does not fail.
func TestEventuallyReturnsOnceTheConditionHolds(t *testing.T) {
	var calls atomic.Int32
	failure := run(t, func(tb testing.TB) {
		Eventually(tb, time.Minute, "the third call", func() bool { return calls.Add(1) == 3 })
	})
	if failure != "" || calls.Load() != 3 {
		t.Fatalf("failure %q after %d calls, want none after 3", failure, calls.Load())
	}
}

// TestEventuallyFailsAtTheDeadlineWithTheLastReason checks the failure
// message of a condition that never holds.
func TestEventuallyFailsAtTheDeadlineWithTheLastReason(t *testing.T) {
	failure := run(t, func(tb testing.TB) {
		Eventually(tb, 20*time.Millisecond, "nothing", func() bool { return false })
	})
	if failure != "timed out after 20ms waiting for nothing" {
		t.Fatalf("failure %q", failure)
	}
	calls := 0
	failure = run(t, func(tb testing.TB) {
		EventuallyWhy(tb, 20*time.Millisecond, "convergence", func() (bool, string) {
			calls++
			return false, fmt.Sprintf("call %d", calls)
		})
	})
	if want := fmt.Sprintf("timed out after 20ms waiting for convergence: call %d", calls); failure != want || !strings.HasSuffix(failure, fmt.Sprint(calls)) {
		t.Fatalf("failure %q, want %q", failure, want)
	}
}
