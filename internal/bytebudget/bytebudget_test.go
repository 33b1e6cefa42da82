package bytebudget

import "testing"

// TestTryAcquireRefusesWhatDoesNotFit: bytes over the limit are refused
// with a channel that the next release closes.
func TestTryAcquireRefusesWhatDoesNotFit(t *testing.T) {
	b := New(10)
	if ok, _ := b.TryAcquire(8); !ok {
		t.Fatal("8 of 10 bytes refused")
	}
	ok, freed := b.TryAcquire(3)
	if ok || freed == nil {
		t.Fatalf("3 more bytes over a 10-byte limit: ok %v", ok)
	}
	b.Release(8)
	select {
	case <-freed:
	default:
		t.Fatal("release did not close the channel")
	}
	if ok, _ := New(10).TryAcquire(11); ok {
		t.Fatal("TryAcquire took more than the whole limit")
	}
	if b.InUse() != 0 {
		t.Fatalf("in use %d after releasing everything", b.InUse())
	}
}

// TestAcquireTakesAnOversizeAmountOnlyWhenEmpty: Acquire lets a message
// larger than the budget through when nothing else is held, and gives up
// when done closes.
func TestAcquireTakesAnOversizeAmountOnlyWhenEmpty(t *testing.T) {
	b := New(10)
	done := make(chan struct{})
	if !b.Acquire(20, done) {
		t.Fatal("20 bytes refused on an empty 10-byte budget")
	}
	close(done)
	if b.Acquire(1, done) {
		t.Fatal("Acquire took a byte over a full budget")
	}
	b.Release(20)
	if !b.Acquire(10, make(chan struct{})) || b.InUse() != 10 {
		t.Fatalf("10 bytes of an empty budget: in use %d", b.InUse())
	}
}
