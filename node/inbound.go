package node

import "sync"

// DefaultMaxQueuedBytes bounds the encoded size of the received messages
// waiting for the loop. Readers wait beyond it, which pushes back on the
// senders through the transport, so that peers sending faster than the
// loop steps (an insider sending 1 MiB messages on hundreds of
// connections) cannot fill memory: the queue holds at most 256 messages,
// which at 1 MiB each would be 256 MiB without this bound.
const DefaultMaxQueuedBytes = 16 << 20

// queueBudget bounds the bytes of the messages queued for the loop.
type queueBudget struct {
	limit int

	mu   sync.Mutex // guards the fields below
	used int
	// freed is closed (and replaced) whenever bytes are released.
	freed chan struct{}
}

func newQueueBudget(limit int) *queueBudget {
	return &queueBudget{limit: limit, freed: make(chan struct{})}
}

// acquire takes n bytes, waiting while the queue holds too many; a message
// larger than the whole budget passes when the queue is empty. It returns
// false when done is closed first.
func (b *queueBudget) acquire(n int, done <-chan struct{}) bool {
	for {
		b.mu.Lock()
		if b.used == 0 || b.used+n <= b.limit {
			b.used += n
			b.mu.Unlock()
			return true
		}
		freed := b.freed
		b.mu.Unlock()
		select {
		case <-freed:
		case <-done:
			return false
		}
	}
}

// release gives back n bytes.
func (b *queueBudget) release(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	close(b.freed)
	b.freed = make(chan struct{})
}

// inUse returns the bytes queued.
func (b *queueBudget) inUse() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
