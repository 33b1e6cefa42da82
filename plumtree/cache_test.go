package plumtree

import (
	"math/rand/v2"
	"testing"
	"time"
)

// modelCache is the bounded cache's specification, as simple as it gets:
// entries in insertion order in a slice, each with its expiry.
type modelCache struct {
	limit    int
	ttl      time.Duration
	maxBytes int
	entries  []modelEntry
}

type modelEntry struct {
	id      MessageID
	expires time.Time
	value   int
}

func (m *modelCache) expire(now time.Time) {
	for len(m.entries) > 0 && !now.Before(m.entries[0].expires) {
		m.entries = m.entries[1:]
	}
}

func (m *modelCache) bytes() (sum int) {
	for _, e := range m.entries {
		sum += e.value
	}
	return sum
}

func (m *modelCache) find(id MessageID) int {
	for i, e := range m.entries {
		if e.id == id {
			return i
		}
	}
	return -1
}

func (m *modelCache) get(now time.Time, id MessageID) (int, bool) {
	if i := m.find(id); i >= 0 && now.Before(m.entries[i].expires) {
		return m.entries[i].value, true
	}
	return 0, false
}

func (m *modelCache) put(now time.Time, id MessageID, value int) {
	m.expire(now)
	if i := m.find(id); i >= 0 {
		m.entries[i].value = value
		return
	}
	for len(m.entries) > 0 && (len(m.entries) >= m.limit || m.bytes()+value > m.maxBytes) {
		m.entries = m.entries[1:]
	}
	m.entries = append(m.entries, modelEntry{id: id, expires: now.Add(m.ttl), value: value})
}

// The bounded cache (the seen IDs and the cached payloads) answers as its
// specification does under random inserts, updates, lookups and time
// steps, with a count and a byte limit, evicting the oldest first; and its
// ring never holds more entries than the limit.
func TestBoundedCacheMatchesItsSpecification(t *testing.T) {
	for _, limit := range []int{1, 5, 64, 1000} {
		rng := rand.New(rand.NewPCG(uint64(limit), 9))
		maxBytes := 40 * limit
		cache := newBoundedCache[int](limit, time.Second).withByteLimit(maxBytes, func(v int) int { return v })
		model := &modelCache{limit: limit, ttl: time.Second, maxBytes: maxBytes}
		now := time.Unix(100, 0)
		ids := make([]MessageID, 3*limit+10)
		for i := range ids {
			ids[i][0], ids[i][1], ids[i][15] = byte(i), byte(i>>8), 7
		}
		for step := range 20000 {
			id := ids[rng.IntN(len(ids))]
			switch rng.IntN(5) {
			case 0:
				now = now.Add(time.Duration(rng.IntN(100)) * time.Millisecond)
				cache.expire(now)
				model.expire(now)
			case 1:
				value := rng.IntN(80)
				cache.put(now, id, value)
				model.put(now, id, value)
			case 2:
				value := rng.IntN(80)
				cache.update(id, value)
				if i := model.find(id); i >= 0 {
					model.entries[i].value = value
				}
			default:
				got, ok := cache.get(now, id)
				want, wantOK := model.get(now, id)
				if got != want || ok != wantOK {
					t.Fatalf("limit %d, step %d: get = %d, %v; want %d, %v", limit, step, got, ok, want, wantOK)
				}
			}
			if cache.len() != len(model.entries) || cache.bytes != model.bytes() {
				t.Fatalf("limit %d, step %d: %d entries of %d bytes, want %d of %d",
					limit, step, cache.len(), cache.bytes, len(model.entries), model.bytes())
			}
			if len(cache.queue) > limit {
				t.Fatalf("limit %d: the ring grew to %d", limit, len(cache.queue))
			}
		}
		var order []MessageID
		cache.each(now, func(id MessageID, _ int) bool { order = append(order, id); return true })
		var want []MessageID
		for _, e := range model.entries {
			if now.Before(e.expires) {
				want = append(want, e.id)
			}
		}
		if len(order) != len(want) {
			t.Fatalf("limit %d: each visited %d entries, want %d", limit, len(order), len(want))
		}
		for i := range order {
			if order[i] != want[i] {
				t.Fatalf("limit %d: each's entry %d is not the %d-th oldest", limit, i, i)
			}
		}
	}
}
