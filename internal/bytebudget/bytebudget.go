package bytebudget

import "sync"

// Budget is a number of bytes shared by its users: they take bytes before
// holding data and give them back after. It is safe for concurrent use.
type Budget struct {
	limit int64

	mu   sync.Mutex // guards the fields below
	used int64
	// freed is closed (and replaced) when bytes are released and someone
	// was given it (waited is set): most releases wait for nobody, and a
	// new channel per release is an allocation per message.
	freed  chan struct{}
	waited bool
}

// New returns a budget of limit bytes.
func New(limit int) *Budget {
	return &Budget{limit: int64(limit), freed: make(chan struct{})}
}

// TryAcquire takes n bytes and returns true when they fit within the limit;
// otherwise it takes nothing and returns false and a channel closed at the
// next Release.
func (b *Budget) TryAcquire(n int) (bool, <-chan struct{}) {
	return b.take(n, false)
}

// Acquire takes n bytes, waiting while they do not fit; n larger than the
// whole limit is taken when nothing else is. It returns false, having taken
// nothing, when done is closed first.
func (b *Budget) Acquire(n int, done <-chan struct{}) bool {
	for {
		ok, freed := b.take(n, true)
		if ok {
			return true
		}
		select {
		case <-freed:
		case <-done:
			return false
		}
	}
}

// take takes n bytes if they fit (or, with emptyPasses, if nothing is
// taken), else returns the channel closed at the next release.
func (b *Budget) take(n int, emptyPasses bool) (bool, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+int64(n) > b.limit && !(emptyPasses && b.used == 0) {
		b.waited = true
		return false, b.freed
	}
	b.used += int64(n)
	return true, nil
}

// Release gives back n bytes taken before.
func (b *Budget) Release(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= int64(n)
	if b.waited {
		b.waited = false
		close(b.freed)
		b.freed = make(chan struct{})
	}
}

// InUse returns the bytes taken.
func (b *Budget) InUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
