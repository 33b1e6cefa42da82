package p2p

import (
	"sync"

	"github.com/p2p-go/p2p/kv"
)

// diskWriter carries out the store core's kv.Persist outputs off the node's
// loop, in their order, as one group: the Persist outputs that arrive while
// a write is under way wait, merged into one (kv.Persist.Merge), and go to
// the backend in the next write, with one fsync when any of them is durable.
// Each write's outcome is stepped into the core as kv.Persisted with the
// merged Seq, which releases the outputs held for every Persist it holds
// (internal/stack) or rolls them back. A burst of Puts from many callers thus
// costs a few fsyncs, not one each, and the loop never waits for the disk.
type diskWriter struct {
	backend kv.Backend

	mu      sync.Mutex // guards queued and waiting
	queued  kv.Persist // the Persist outputs not yet handed to the backend, merged
	waiting bool       // queued holds at least one Persist

	wake     chan struct{} // one pending signal that queued changed
	stop     chan struct{}
	finished chan struct{}
	started  bool // set by start, read by close (both on the caller's goroutine)
}

func newDiskWriter(backend kv.Backend) *diskWriter {
	return &diskWriter{
		backend:  backend,
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		finished: make(chan struct{}),
	}
}

// add queues p behind the Persist outputs not yet written. It never blocks
// on the disk: the node's loop calls it.
func (w *diskWriter) add(p kv.Persist) {
	w.mu.Lock()
	if w.waiting {
		w.queued = w.queued.Merge(p)
	} else {
		w.queued, w.waiting = p, true
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// take returns the merged Persist outputs waiting, if any, and empties the
// queue.
func (w *diskWriter) take() (kv.Persist, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p, ok := w.queued, w.waiting
	w.queued, w.waiting = kv.Persist{}, false
	return p, ok
}

// pending returns the Seq of the last Persist waiting for a write, or 0.
func (w *diskWriter) pending() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.waiting {
		return 0
	}
	return w.queued.Seq
}

// start starts the goroutine that writes; written receives each write's
// outcome (it steps it into the runtime). Persist outputs added before
// start wait for it.
func (w *diskWriter) start(written func(kv.Persisted), onError func(kv.Persist, error)) {
	w.started = true
	go func() {
		defer close(w.finished)
		for {
			select {
			case <-w.wake:
			case <-w.stop:
				// What the core asked for before the node closed is
				// written; nobody is told any more.
				if p, ok := w.take(); ok {
					if err := p.WriteTo(w.backend); err != nil {
						onError(p, err)
					}
				}
				return
			}
			p, ok := w.take()
			if !ok {
				continue
			}
			err := p.WriteTo(w.backend)
			if err != nil {
				onError(p, err)
			}
			written(kv.Persisted{Seq: p.Seq, Err: err})
		}
	}()
}

// close writes what is still queued and returns once the writer's goroutine
// has ended. The node's loop must have ended first. Calling it again does
// nothing.
func (w *diskWriter) close() {
	if !w.started {
		return
	}
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.finished
}
