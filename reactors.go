package p2p

import (
	"sync"
	"sync/atomic"
)

// listeners holds registered callbacks (reactors, member-event handlers).
// Each has its own goroutine and a queue of queueLen items; an item that finds
// a callback's queue full is dropped for that callback and counted, so one
// slow callback neither stalls the overlay nor delays the others.
type listeners[T any] struct {
	queueLen int

	mu      sync.Mutex // guards entries and closed
	entries map[uint64]*listener[T]
	nextID  uint64
	closed  bool

	wg      sync.WaitGroup
	dropped atomic.Uint64
}

type listener[T any] struct {
	fn func(T)
	// queue is closed, and stopped set, when the callback is removed
	// (under listeners.mu, so that dispatch never sends on it after): the
	// goroutine waits on the one channel, which costs less per item than a
	// select on two.
	queue   chan T
	stopped atomic.Bool
}

func newListeners[T any](queueLen int) *listeners[T] {
	return &listeners[T]{queueLen: queueLen, entries: map[uint64]*listener[T]{}}
}

// reactorSet holds the registered reactors.
type reactorSet = listeners[*Message]

func newReactorSet(queueLen int) *reactorSet { return newListeners[*Message](queueLen) }

// add registers fn and returns the function that removes it.
func (s *listeners[T]) add(fn func(T)) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return func() {}
	}
	id := s.nextID
	s.nextID++
	e := &listener[T]{fn: fn, queue: make(chan T, s.queueLen)}
	s.entries[id] = e
	s.wg.Add(1)
	go s.run(e)
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if _, ok := s.entries[id]; ok {
				delete(s.entries, id)
				e.stop()
			}
		})
	}
}

// stop ends e's goroutine once the call in progress, if any, returns; the
// items still queued are dropped. The caller holds listeners.mu.
func (e *listener[T]) stop() {
	e.stopped.Store(true)
	close(e.queue)
}

func (s *listeners[T]) run(e *listener[T]) {
	defer s.wg.Done()
	for m := range e.queue {
		if e.stopped.Load() {
			return
		}
		e.fn(m)
	}
}

// dispatch hands m to every reactor without blocking.
func (s *listeners[T]) dispatch(m T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.entries {
		select {
		case e.queue <- m:
		default:
			s.dropped.Add(1)
		}
	}
}

// close stops every reactor goroutine and waits for them; a reactor call in
// progress finishes first.
func (s *listeners[T]) close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		for id, e := range s.entries {
			e.stop()
			delete(s.entries, id)
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
}
