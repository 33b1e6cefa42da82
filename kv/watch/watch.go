package watch

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/p2p-go/p2p/kv"
)

// Record is the store's record, as package kv defines it.
type Record = kv.Record

// DefaultBuffer is the number of change events a watcher may fall behind
// before it is dropped.
const DefaultBuffer = 256

// ErrTooSlow is the error of the last event of a watcher that fell
// more than its buffer behind; its channel is closed after it.
var ErrTooSlow = errors.New("kv: watcher too slow, dropped")

// Event is one item of a watch. A watch first yields the current records of
// its prefix (Initial set), then one event with Synced set, then every
// change (a delete is a Record with Deleted set). If the watcher falls
// behind, a last event carries Err = ErrTooSlow and the channel closes.
type Event struct {
	Record  Record
	Initial bool
	Synced  bool
	Err     error
}

// Hub is a goroutine-safe hub that fans the store's changes out to
// watchers. The runtime that owns a [kv.Store] feeds it: [Hub.Publish] with
// the store's List("") once at start, then with the Record of every
// [kv.Changed] output, once the Persist before it is carried out. The hub keeps its own copy of the live records so that
// Watch can take a snapshot and register under the lock Publish takes: no
// change is missed or seen twice between the snapshot and the first event.
//
// A slow watcher does not slow the store: Publish never blocks. Each watcher
// has a buffer (DefaultBuffer events beyond its snapshot); a watcher
// whose buffer is full when a change arrives is dropped: it receives a last
// event with ErrTooSlow and its channel is closed. It may watch again
// to get a fresh snapshot.
type Hub struct {
	buffer int

	mu       sync.Mutex
	records  map[string]Record     // guarded by mu: live records by key
	watchers map[*watcher]struct{} // guarded by mu
	closed   bool                  // guarded by mu
}

type watcher struct {
	prefix string
	events chan Event
	stop   func() bool // unregisters the context callback
}

// New returns an empty hub whose watchers may fall buffer change
// events behind (DefaultBuffer when buffer <= 0).
func New(buffer int) *Hub {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	return &Hub{
		buffer:   buffer,
		records:  make(map[string]Record),
		watchers: make(map[*watcher]struct{}),
	}
}

// Publish records changes and sends them to the watchers of matching
// prefixes. A record older than the one the hub holds for its key is
// ignored. Publish never blocks.
func (w *Hub) Publish(records ...Record) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	for _, rec := range records {
		if current, ok := w.records[rec.Key]; ok && !rec.Supersedes(current) {
			continue
		}
		if rec.Deleted {
			delete(w.records, rec.Key)
		} else {
			w.records[rec.Key] = rec
		}
		for sub := range w.watchers {
			if !strings.HasPrefix(rec.Key, sub.prefix) {
				continue
			}
			// The last slot is kept for the error event.
			if len(sub.events) >= cap(sub.events)-1 {
				sub.events <- Event{Err: ErrTooSlow}
				w.dropLocked(sub)
				continue
			}
			sub.events <- Event{Record: rec}
		}
	}
}

// Watch returns a channel yielding the live records under prefix, a Synced
// event, then every change under prefix until ctx is done or the hub is
// closed (the channel is then closed). It fails with ErrClosed on a closed
// hub.
func (w *Hub) Watch(ctx context.Context, prefix string) (<-chan Event, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, kv.ErrClosed
	}
	var snapshot []Record
	for key, rec := range w.records {
		if strings.HasPrefix(key, prefix) {
			snapshot = append(snapshot, rec)
		}
	}
	slices.SortFunc(snapshot, func(a, b Record) int { return strings.Compare(a.Key, b.Key) })
	sub := &watcher{prefix: prefix, events: make(chan Event, len(snapshot)+1+w.buffer+1)}
	for _, rec := range snapshot {
		sub.events <- Event{Record: rec, Initial: true}
	}
	sub.events <- Event{Synced: true}
	w.watchers[sub] = struct{}{}
	sub.stop = context.AfterFunc(ctx, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.dropLocked(sub)
	})
	return sub.events, nil
}

// Len returns the number of registered watchers.
func (w *Hub) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.watchers)
}

// Close closes every watcher's channel; later Watch calls fail and Publish
// does nothing. It may be called more than once.
func (w *Hub) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	for sub := range w.watchers {
		w.dropLocked(sub)
	}
	w.records = nil
}

// dropLocked unregisters a watcher and closes its channel; w.mu is held.
func (w *Hub) dropLocked(sub *watcher) {
	if _, ok := w.watchers[sub]; !ok {
		return
	}
	delete(w.watchers, sub)
	if sub.stop != nil {
		sub.stop()
	}
	close(sub.events)
}
