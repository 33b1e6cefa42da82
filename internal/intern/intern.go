package intern

import (
	"runtime"
	"sync"
	"weak"
)

// Table hands out one shared *T per key while some holder keeps it alive;
// a value nobody holds is collected, and its key forgotten. The zero Table
// is ready to use and safe for concurrent use.
type Table[T any] struct {
	mu sync.Mutex
	m  map[string]weak.Pointer[T]
}

// Get returns the value held for key, or the one make builds (and the table
// then holds weakly). make must return a value that depends on key only and
// that nobody modifies afterwards; it runs under the table's lock.
func (t *Table[T]) Get(key string, make func() *T) *T {
	t.mu.Lock()
	defer t.mu.Unlock()
	if w, ok := t.m[key]; ok {
		if v := w.Value(); v != nil {
			return v
		}
	}
	if t.m == nil {
		t.m = map[string]weak.Pointer[T]{}
	}
	v := make()
	t.m[key] = weak.Make(v)
	runtime.AddCleanup(v, t.forget, key)
	return v
}

// forget removes a collected value's key (unless a new value took the key
// meanwhile).
func (t *Table[T]) forget(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if w, ok := t.m[key]; ok && w.Value() == nil {
		delete(t.m, key)
	}
}

// Held reports whether a value for key is held and not yet collected.
func (t *Table[T]) Held(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	w, ok := t.m[key]
	return ok && w.Value() != nil
}

// Len returns the number of keys the table holds (some of whose values may
// be collected but not yet forgotten).
func (t *Table[T]) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// Memo remembers the values computed from the latest Size keys, oldest
// forgotten first. The zero Memo remembers nothing; it is safe for
// concurrent use.
type Memo[V any] struct {
	// Size is the number of keys remembered.
	Size int

	mu    sync.Mutex
	m     map[string]V
	order []string // keys in insertion order, a ring
	next  int
}

// Get returns the value remembered for key.
func (m *Memo[V]) Get(key string) (V, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[key]
	return v, ok
}

// Put remembers v for key, unless a value is remembered for it already (both
// computed from key, they are alike), forgetting the oldest key when Size
// are remembered.
func (m *Memo[V]) Put(key string, v V) {
	if m.Size <= 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.m[key]; ok {
		return
	}
	if m.m == nil {
		m.m = map[string]V{}
	}
	if len(m.order) < m.Size {
		m.order = append(m.order, key)
	} else {
		delete(m.m, m.order[m.next])
		m.order[m.next] = key
		m.next = (m.next + 1) % m.Size
	}
	m.m[key] = v
}
