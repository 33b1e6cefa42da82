package p2p

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2p-go/p2p/kv"
	"github.com/p2p-go/p2p/kv/watch"
	"github.com/p2p-go/p2p/node"
)

// DefaultWatchBuffer is the number of changes a watcher may fall behind
// before it is dropped with watch.ErrTooSlow.
const DefaultWatchBuffer = 1024

// Record is one key of the store with the version of the write that set it.
type Record = kv.Record

// WatchEvent is one item of a watch: first the records under the prefix
// (Initial set), then one event with Synced set, then every change (a delete
// is a Record with Deleted set). A watcher that falls DefaultWatchBuffer
// changes behind gets a last event with Err set, and its channel closes.
type WatchEvent = watch.Event

// ErrNotFound is returned by Store.Get for a key the store does not hold
// (or holds only as a tombstone), and by Store.Delete for a key it does not
// hold.
var ErrNotFound = kv.ErrNotFound

// Store is the node's replicated configuration store: a key/value map held by
// every member, written on any member and pushed to all of them.
//
// Semantics: every write carries a hybrid logical clock timestamp and the
// writer's ID; the later write wins per key, ties broken by writer ID, so all
// nodes pick the same winner. A write is durable on the writing node (bbolt,
// fsync) when Put returns, is broadcast to every member at once, and reaches
// members that missed it (down, partitioned, joining later) through
// anti-entropy with a neighbour. Concurrent writers to one key on two sides
// of a partition both succeed; after the partition heals every node holds
// the later of the two. Keys are at most kv.MaxKeyLen bytes of UTF-8 without
// NUL; values at most kv.MaxValueLen bytes.
type Store struct {
	b        *Broadcaster
	core     *kv.Store
	backend  kv.Backend
	watchers *watch.Hub
	writer   *diskWriter   // carries out the core's Persist outputs
	closing  chan struct{} // closed when the node closes: writes waiting for their Result end

	nextReq atomic.Uint64
	mu      sync.Mutex // guards pending
	pending map[uint64]chan kv.Result
}

func newStore(b *Broadcaster, core *kv.Store, backend kv.Backend) *Store {
	s := &Store{
		b:        b,
		core:     core,
		backend:  backend,
		watchers: watch.New(DefaultWatchBuffer),
		writer:   newDiskWriter(backend),
		closing:  make(chan struct{}),
		pending:  map[uint64]chan kv.Result{},
	}
	s.watchers.Publish(core.List("")...)
	return s
}

// Get returns the live record of key, or ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) (Record, error) {
	if err := kv.ValidateKey(key); err != nil {
		return Record{}, err
	}
	var rec Record
	var ok bool
	if err := s.b.do(ctx, func(time.Time) { rec, ok = s.core.Get(key) }); err != nil {
		return Record{}, err
	}
	if !ok {
		return Record{}, fmt.Errorf("%w: %q", ErrNotFound, key)
	}
	return rec, nil
}

// GetJSON decodes the JSON value of key into v.
func (s *Store) GetJSON(ctx context.Context, key string, v any) error {
	rec, err := s.Get(ctx, key)
	if err != nil {
		return err
	}
	return rec.DecodeJSON(v)
}

// List returns the live records whose keys start with prefix, in key order.
func (s *Store) List(ctx context.Context, prefix string) ([]Record, error) {
	var recs []Record
	if err := s.b.do(ctx, func(time.Time) { recs = s.core.List(prefix) }); err != nil {
		return nil, err
	}
	return recs, nil
}

// Put writes value under key. When Put returns without error the write is on
// this node's disk and on its way to every member.
func (s *Store) Put(ctx context.Context, key string, value []byte) (Record, error) {
	return s.write(ctx, func(id uint64) any { return kv.Put{ReqID: id, Key: key, Value: value} })
}

// PutJSON writes v, encoded as JSON, under key.
func (s *Store) PutJSON(ctx context.Context, key string, v any) (Record, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return Record{}, fmt.Errorf("p2p: encode value of %q: %w", key, err)
	}
	return s.Put(ctx, key, data)
}

// Delete removes key everywhere (it leaves a tombstone, removed after the
// store's retention).
func (s *Store) Delete(ctx context.Context, key string) error {
	_, err := s.write(ctx, func(id uint64) any { return kv.Delete{ReqID: id, Key: key} })
	return err
}

// Watch returns a stream of the records under prefix, then of every change to
// them, local or remote, without a gap between the two. The stream ends when
// ctx ends or the node closes.
func (s *Store) Watch(ctx context.Context, prefix string) (<-chan WatchEvent, error) {
	return s.watchers.Watch(ctx, prefix)
}

// Digest returns a hash of the whole store: nodes holding identical stores
// have equal digests.
func (s *Store) Digest(ctx context.Context) ([32]byte, error) {
	var d [32]byte
	err := s.b.do(ctx, func(time.Time) { d = s.core.Digest() })
	return d, err
}

// Stats returns the store's counters (anti-entropy rounds and bytes, ...).
func (s *Store) Stats(ctx context.Context) (kv.Stats, int, error) {
	var st kv.Stats
	var n int
	err := s.b.do(ctx, func(time.Time) { st, n = s.core.Stats(), s.core.Len() })
	return st, n, err
}

func (s *Store) write(ctx context.Context, request func(id uint64) any) (Record, error) {
	id := s.nextReq.Add(1)
	done := make(chan kv.Result, 1)
	s.mu.Lock()
	s.pending[id] = done
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, id)
		s.mu.Unlock()
	}()
	if err := s.b.step(ctx, request(id)); err != nil {
		return Record{}, err
	}
	select {
	case res := <-done:
		return res.Record, res.Err
	case <-ctx.Done():
		return Record{}, ctx.Err()
	case <-s.closing:
		// The node closed while the write was on its way to the disk: it
		// may or may not have been written.
		return Record{}, ErrClosed
	}
}

// persist hands the core's Persist output to the disk writer, on the
// runtime's loop goroutine, which goes on at once: records and removals are
// written in one backend transaction, with one fsync when it is durable, off
// the loop, together with the Persist outputs of the steps that came while
// the previous write was under way (see diskWriter; the stack merges those of
// one step already). A Persist that is not durable is only queued by Bolt
// (see kv.LazyWriter). The outcome is stepped into the stack once written:
// it releases the writes' Results and broadcasts on success; on failure the
// store rolls the changes back, the Results carry the error and nothing is
// broadcast.
func (s *Store) persist(p kv.Persist) { s.writer.add(p) }

// startWriter starts the disk writer once the runtime it reports to exists.
func (s *Store) startWriter(rt *node.Runtime) {
	s.writer.start(func(p kv.Persisted) {
		_ = rt.Step(context.Background(), p) // fails only once the node is closed
	}, func(p kv.Persist, err error) {
		s.b.logger.Error("store: write to disk failed", "records", len(p.Put), "removals", len(p.Remove), "durable", p.Durable, "err", err)
	})
}

// result runs on the runtime's loop goroutine, once the write's Persist is
// written or has failed.
func (s *Store) result(res kv.Result) {
	s.mu.Lock()
	done := s.pending[res.ReqID]
	s.mu.Unlock()
	if done != nil {
		done <- res
	}
}

// changed runs on the runtime's loop goroutine; Publish never blocks.
func (s *Store) changed(c kv.Changed) { s.watchers.Publish(c.Record) }

func (s *Store) close() error {
	close(s.closing)
	s.writer.close()
	s.watchers.Close()
	err := s.backend.Close()
	if errors.Is(err, kv.ErrClosed) {
		return nil
	}
	return err
}
