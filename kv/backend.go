package kv

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"sync"
)

// ErrClosed is returned by a closed backend or watcher hub.
var ErrClosed = errors.New("kv: closed")

// Backend persists the records of one replica. The core only reads it (Get
// and Scan, from Step and its read methods); the runtime writes it, carrying
// out the core's [Persist] outputs ([Persist.WriteTo]). Implementations must
// be safe for concurrent use so that a runtime may also read them from other
// goroutines.
//
// Two implementations exist: boltstore.Bolt (package kv/boltstore,
// go.etcd.io/bbolt, the embedded default) and [Memory] (for the simulator
// and tests). Both pass the same contract test (package kv/kvtest).
type Backend interface {
	// Get returns the record stored under key, tombstones included.
	Get(key string) (Record, bool, error)
	// Write stores put and removes the keys in remove, atomically. The
	// change is durable when Write returns nil.
	Write(put []Record, remove []string) error
	// Scan calls fn for every record whose key starts with prefix, in key
	// order, until fn returns false. fn must not call the backend.
	Scan(prefix string, fn func(Record) bool) error
	// Close releases the backend; it may be called more than once.
	Close() error
}

// LazyWriter is an optional Backend capability. WriteLazy stores like Write
// but need not be durable, nor even written, when it returns: Get and Scan
// must see the change at once, a later Write must be ordered after it, and
// Close must keep it; a crash may lose it. [Persist.WriteTo] uses it for
// Persist outputs that are not Durable: records learnt from peers and
// purges, which a crash can only lose to anti-entropy's next round, so that
// applying a broadcast update does not wait for the disk on every node it
// crosses (a wait that the node's loop, and with it the forwarding of the
// broadcast, would share). Local writes always go through Write: they are
// durable when Put returns.
type LazyWriter interface {
	WriteLazy(put []Record, remove []string) error
}

// Memory is an in-memory Backend. Records survive as long as the value does,
// so a simulated node can restart over the same Memory. Create one with
// [NewMemory].
type Memory struct {
	mu      sync.Mutex
	records map[string]Record // guarded by mu; values are private copies
	closed  bool              // guarded by mu
}

var _ Backend = (*Memory)(nil)

// NewMemory returns an empty in-memory backend.
func NewMemory() *Memory { return &Memory{records: make(map[string]Record)} }

// Get implements Backend.
func (m *Memory) Get(key string) (Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Record{}, false, ErrClosed
	}
	rec, ok := m.records[key]
	if !ok {
		return Record{}, false, nil
	}
	rec.Value = bytes.Clone(rec.Value)
	return rec, true, nil
}

// Write implements Backend.
func (m *Memory) Write(put []Record, remove []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	for _, rec := range put {
		rec.Value = bytes.Clone(rec.Value)
		m.records[rec.Key] = rec.Normalize()
	}
	for _, key := range remove {
		delete(m.records, key)
	}
	return nil
}

// Scan implements Backend.
func (m *Memory) Scan(prefix string, fn func(Record) bool) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	matched := make([]Record, 0, len(m.records))
	for key, rec := range m.records {
		if strings.HasPrefix(key, prefix) {
			rec.Value = bytes.Clone(rec.Value)
			matched = append(matched, rec)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(matched, func(a, b Record) int { return strings.Compare(a.Key, b.Key) })
	for _, rec := range matched {
		if !fn(rec) {
			break
		}
	}
	return nil
}

// Close implements Backend. A closed Memory refuses every call; its records
// are dropped.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.records = nil
	return nil
}
