package plumtree

import (
	"hash/maphash"
	"time"

	"github.com/p2p-go/p2p/peer"
)

// boundedCache maps message IDs to values, forgetting the oldest entry when
// it holds limit entries (or, with a cost function, more than maxBytes in
// all) and every entry older than its TTL. Entries are evicted in insertion
// order, which is also expiry order since the TTL is the same for all.
//
// The entries live in a ring in insertion order, which grows by half when
// full (never past limit), beside an open-addressing index of ring
// positions (4 bytes each, linear probing keyed by a random seed: peers
// choose message IDs). Every node of a 10,000-node simulation remembers the
// IDs of about 10,000 membership broadcasts and caches 1,024 payloads: a
// ring entry costs its ID, expiry and value, where a map beside an eviction
// queue cost about twice that (issue 14).
type boundedCache[V any] struct {
	limit int
	ttl   time.Duration
	seed  maphash.Seed
	// queue is the ring of entries in insertion order: the live ones are
	// count from head on, wrapping around.
	queue []cacheEntry[V]
	head  int
	count int
	// index holds 1 + the ring position of each entry (0: a free slot);
	// its length is a power of two at least 4/3 of the ring's.
	index []uint32
	// cost, when set, gives the bytes an entry holds; the cache then keeps
	// bytes (their sum) at most maxBytes, evicting the oldest entries.
	cost     func(V) int
	maxBytes int
	bytes    int
}

// Expiry times are kept as Unix nanoseconds rather than time.Time: an
// int64 makes the ring smaller and free of pointers for the garbage
// collector to scan. The value comes first: a zero-size value (the seen
// cache's) last would pad every entry by 8 bytes.
type cacheEntry[V any] struct {
	value   V
	id      MessageID
	expires int64
}

func newBoundedCache[V any](limit int, ttl time.Duration) *boundedCache[V] {
	return &boundedCache[V]{limit: limit, ttl: ttl, seed: maphash.MakeSeed()}
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

func (c *boundedCache[V]) home(id MessageID) int {
	return int(maphash.Comparable(c.seed, id) & uint64(len(c.index)-1))
}

// find returns the index slot holding id, or the free slot where it would
// go; the index must not be empty.
func (c *boundedCache[V]) find(id MessageID) (int, bool) {
	mask := len(c.index) - 1
	for i := c.home(id); ; i = (i + 1) & mask {
		pos := c.index[i]
		if pos == 0 {
			return i, false
		}
		if c.queue[pos-1].id == id {
			return i, true
		}
	}
}

// lookup returns the ring entry of id, or nil.
func (c *boundedCache[V]) lookup(id MessageID) *cacheEntry[V] {
	if c.count == 0 {
		return nil
	}
	if i, ok := c.find(id); ok {
		return &c.queue[c.index[i]-1]
	}
	return nil
}

// get returns the value of id if it is present and not expired at now.
func (c *boundedCache[V]) get(now time.Time, id MessageID) (V, bool) {
	entry := c.lookup(id)
	if entry == nil || now.UnixNano() >= entry.expires {
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
	if entry := c.lookup(id); entry != nil {
		c.bytes += c.costOf(value) - c.costOf(entry.value)
		entry.value = value
		return
	}
	cost := c.costOf(value)
	for c.count > 0 && (c.count >= c.limit || (c.cost != nil && c.bytes+cost > c.maxBytes)) {
		c.popOldest()
	}
	if c.count == len(c.queue) {
		c.grow()
	}
	pos := (c.head + c.count) % len(c.queue)
	c.queue[pos] = cacheEntry[V]{id: id, expires: now.Add(c.ttl).UnixNano(), value: value}
	c.count++
	c.bytes += cost
	i, _ := c.find(id)
	c.index[i] = uint32(pos + 1)
}

// grow makes the ring half as large again (eight entries at first, never
// above limit) and rebuilds the index for it.
func (c *boundedCache[V]) grow() {
	size := min(max(8, len(c.queue)+len(c.queue)/2), max(c.limit, 1))
	if size <= len(c.queue) {
		size = len(c.queue) + 1
	}
	queue := make([]cacheEntry[V], size)
	for k := range c.count {
		queue[k] = c.queue[(c.head+k)%len(c.queue)]
	}
	c.queue, c.head = queue, 0
	indexSize := 8
	for indexSize*3 < size*4 {
		indexSize *= 2
	}
	c.index = make([]uint32, indexSize)
	for k := range c.count {
		i, _ := c.find(queue[k].id)
		c.index[i] = uint32(k + 1)
	}
}

// update replaces the value of a present id; it does nothing otherwise.
func (c *boundedCache[V]) update(id MessageID, value V) {
	if entry := c.lookup(id); entry != nil {
		c.bytes += c.costOf(value) - c.costOf(entry.value)
		entry.value = value
	}
}

// expire removes every entry whose TTL has passed at now.
func (c *boundedCache[V]) expire(now time.Time) {
	t := now.UnixNano()
	for c.count > 0 && t >= c.queue[c.head].expires {
		c.popOldest()
	}
}

// len returns the number of entries held, expired or not.
func (c *boundedCache[V]) len() int { return c.count }

// each calls fn for every entry live at now, oldest first, until fn returns
// false.
func (c *boundedCache[V]) each(now time.Time, fn func(MessageID, V) bool) {
	t := now.UnixNano()
	for k := range c.count {
		entry := &c.queue[(c.head+k)%len(c.queue)]
		if t >= entry.expires {
			continue
		}
		if !fn(entry.id, entry.value) {
			return
		}
	}
}

// popOldest forgets the oldest entry.
func (c *boundedCache[V]) popOldest() {
	if c.count == 0 {
		return
	}
	oldest := &c.queue[c.head]
	i, _ := c.find(oldest.id)
	c.bytes -= c.costOf(oldest.value)
	*oldest = cacheEntry[V]{}
	c.head = (c.head + 1) % len(c.queue)
	c.count--
	// Backward-shift deletion: move later entries of the probe run back
	// into the hole when their home slot is not after it.
	mask := len(c.index) - 1
	c.index[i] = 0
	for j := (i + 1) & mask; c.index[j] != 0; j = (j + 1) & mask {
		home := c.home(c.queue[c.index[j]-1].id)
		if (i < j && (home <= i || home > j)) || (i > j && home <= i && home > j) {
			c.index[i], c.index[j] = c.index[j], 0
			i = j
		}
	}
}

// cachedPayload is what is kept of a delivered message to answer GRAFTs and
// to apply the optimisation.
type cachedPayload struct {
	// msg is the GOSSIP as it arrived (an own broadcast: as sent). It is
	// never modified: the simulator hands one message to all of its
	// recipients, which then share it rather than each keeping a copy.
	msg *Gossip
	// hops is the round the payload arrived with (0 for an own broadcast).
	hops uint16
	// round is the round this node sends the payload on with.
	round uint16
	// from is the neighbour the payload came from (zero for an own
	// broadcast).
	from peer.ID
}

// forward returns the GOSSIP as this node sends it on: msg itself when its
// round is already the one to send (an own broadcast), else a copy with
// the round incremented.
func (p cachedPayload) forward() *Gossip {
	if p.msg.Round == p.round {
		return p.msg
	}
	f := *p.msg
	f.Round = p.round
	return &f
}
