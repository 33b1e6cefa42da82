package plumtree

import (
	"time"

	"github.com/p2p-go/p2p/peer"
)

// boundedCache maps message IDs to values, forgetting the oldest entry when
// it holds limit entries (or, with a cost function, more than maxBytes in
// all) and every entry older than its TTL. Entries are
// evicted in insertion order, which is also expiry order since the TTL is the
// same for all: a FIFO queue beside the map makes both O(1) amortised. The
// queue grows only as entries are added, so a large limit costs nothing
// until it is used.
type boundedCache[V any] struct {
	limit   int
	ttl     time.Duration
	entries map[MessageID]cacheEntry[V]
	queue   []queuedID
	head    int // index of the oldest live element of queue
	// cost, when set, gives the bytes an entry holds; the cache then keeps
	// bytes (their sum) at most maxBytes, evicting the oldest entries.
	cost     func(V) int
	maxBytes int
	bytes    int
}

// Expiry times are kept as Unix nanoseconds rather than time.Time: the
// seen cache holds hundreds of thousands of IDs under load, and an int64
// makes its map and queue smaller and free of pointers for the garbage
// collector to scan.
type cacheEntry[V any] struct {
	value   V
	expires int64
}

type queuedID struct {
	id      MessageID
	expires int64
}

func newBoundedCache[V any](limit int, ttl time.Duration) *boundedCache[V] {
	return &boundedCache[V]{limit: limit, ttl: ttl, entries: make(map[MessageID]cacheEntry[V])}
}

// withByteLimit makes the cache keep the total cost of its entries at most
// maxBytes. An entry costlier than maxBytes on its own is still kept, alone.
func (c *boundedCache[V]) withByteLimit(maxBytes int, cost func(V) int) *boundedCache[V] {
	c.maxBytes, c.cost = maxBytes, cost
	return c
}

func (c *boundedCache[V]) costOf(v V) int {
	if c.cost == nil {
		return 0
	}
	return c.cost(v)
}

// get returns the value of id if it is present and not expired at now.
func (c *boundedCache[V]) get(now time.Time, id MessageID) (V, bool) {
	entry, ok := c.entries[id]
	if !ok || now.UnixNano() >= entry.expires {
		var zero V
		return zero, false
	}
	return entry.value, true
}

// contains reports whether id is present and not expired at now.
func (c *boundedCache[V]) contains(now time.Time, id MessageID) bool {
	_, ok := c.get(now, id)
	return ok
}

// put adds id, or replaces its value keeping its age. It evicts expired
// entries first, then the oldest ones while the cache is full.
func (c *boundedCache[V]) put(now time.Time, id MessageID, value V) {
	c.expire(now)
	if entry, ok := c.entries[id]; ok {
		c.bytes += c.costOf(value) - c.costOf(entry.value)
		entry.value = value
		c.entries[id] = entry
		return
	}
	cost := c.costOf(value)
	for len(c.entries) > 0 && (len(c.entries) >= c.limit || (c.cost != nil && c.bytes+cost > c.maxBytes)) {
		c.popOldest()
	}
	expires := now.Add(c.ttl).UnixNano()
	c.bytes += cost
	c.entries[id] = cacheEntry[V]{value: value, expires: expires}
	c.queue = append(c.queue, queuedID{id: id, expires: expires})
}

// update replaces the value of a present id; it does nothing otherwise.
func (c *boundedCache[V]) update(id MessageID, value V) {
	if entry, ok := c.entries[id]; ok {
		c.bytes += c.costOf(value) - c.costOf(entry.value)
		entry.value = value
		c.entries[id] = entry
	}
}

// expire removes every entry whose TTL has passed at now.
func (c *boundedCache[V]) expire(now time.Time) {
	t := now.UnixNano()
	for c.head < len(c.queue) && t >= c.queue[c.head].expires {
		c.popOldest()
	}
}

// len returns the number of entries held, expired or not.
func (c *boundedCache[V]) len() int { return len(c.entries) }

// each calls fn for every entry live at now, oldest first, until fn returns
// false.
func (c *boundedCache[V]) each(now time.Time, fn func(MessageID, V) bool) {
	t := now.UnixNano()
	for _, q := range c.queue[c.head:] {
		entry, ok := c.entries[q.id]
		if !ok || entry.expires != q.expires || t >= entry.expires {
			continue
		}
		if !fn(q.id, entry.value) {
			return
		}
	}
}

func (c *boundedCache[V]) popOldest() {
	if c.head >= len(c.queue) {
		return
	}
	oldest := c.queue[c.head]
	c.queue[c.head] = queuedID{}
	c.head++
	if entry, ok := c.entries[oldest.id]; ok && entry.expires == oldest.expires {
		c.bytes -= c.costOf(entry.value)
		delete(c.entries, oldest.id)
	}
	// Compact once the dead prefix is at least half of the queue, so the
	// queue never holds more than twice the live entries.
	if c.head >= 64 && c.head*2 >= len(c.queue) {
		live := copy(c.queue, c.queue[c.head:])
		clear(c.queue[live:])
		c.queue = c.queue[:live]
		c.head = 0
	}
}

// cachedPayload is what is kept of a delivered message to answer GRAFTs and
// to apply the optimisation.
type cachedPayload struct {
	// forward is the GOSSIP as this node sends it on (round already
	// incremented).
	forward *Gossip
	// hops is the round the payload arrived with (0 for an own broadcast).
	hops uint16
	// from is the neighbour the payload came from (zero for an own
	// broadcast).
	from peer.ID
}
