package kademlia

import (
	"encoding/binary"
	"slices"
	"time"

	"github.com/p2p-go/p2p/peer"
)

// contact is one routing-table entry.
type contact struct {
	info     peer.Info
	lastSeen time.Time
	// failures counts consecutive requests the contact did not answer.
	failures int
}

// bucket is a k-bucket (paper section 2.2): contacts sharing the same common
// prefix length with the node, least recently seen first.
type bucket struct {
	contacts []contact
	// replacements holds contacts seen while the bucket was full, most
	// recently seen last; they replace contacts that fail (section 4.1).
	replacements []contact
	// probing is the least-recently-seen contact being PINGed before it may
	// be evicted in favour of a newcomer, zero when no probe is in flight.
	probing peer.ID
	// lastLookup is when a lookup last targeted this bucket's range.
	lastLookup time.Time
}

// table is the routing table: one bucket per common prefix length with the
// node's own ID. Bucket i holds contacts whose IDs agree with the node's on
// the first i bits and differ at bit i; bucket 0 covers the far half of the
// ID space. This is the paper's binary tree of buckets with the buckets that
// do not contain the node's own ID never split, the layout most
// implementations use.
type table struct {
	self            peer.ID
	k               int
	replacementSize int
	staleAfter      int
	probeAfter      time.Duration
	buckets         [IDBits]*bucket
	size            int
	// maxIndex is the highest index of an allocated bucket (-1: none).
	maxIndex int
	// created is the baseline for refresh of buckets never looked up.
	created time.Time
}

func newTable(self peer.ID, k, replacementSize, staleAfter int, probeAfter time.Duration) *table {
	return &table{self: self, k: k, replacementSize: replacementSize, staleAfter: staleAfter, probeAfter: probeAfter, maxIndex: -1}
}

// bucketIndex returns the index of the bucket id belongs in, or -1 for the
// node's own ID.
func (t *table) bucketIndex(id peer.ID) int {
	i := CommonPrefixLen(t.self, id)
	if i == IDBits {
		return -1
	}
	return i
}

func (t *table) bucketFor(i int) *bucket {
	b := t.buckets[i]
	if b == nil {
		b = &bucket{lastLookup: t.created}
		t.buckets[i] = b
		t.maxIndex = max(t.maxIndex, i)
	}
	return b
}

func (b *bucket) find(id peer.ID) int {
	for i := range b.contacts {
		if b.contacts[i].info.ID == id {
			return i
		}
	}
	return -1
}

func (b *bucket) findReplacement(id peer.ID) int {
	for i := range b.replacements {
		if b.replacements[i].info.ID == id {
			return i
		}
	}
	return -1
}

// stale reports whether c has failed often enough to be evicted for any
// newcomer.
func (t *table) stale(c *contact) bool { return c.failures >= t.staleAfter }

// seen records that info was heard from at now: a message from it arrived
// (paper section 2.2). A known contact moves to the tail; a new one is
// appended when its bucket has room or replaces a stale contact; otherwise it
// waits in the replacement cache and probe returns the least recently seen
// contact to PING before evicting it, unless that contact was heard from
// within probeAfter (probe.ID is zero when no new probe is needed).
func (t *table) seen(info peer.Info, now time.Time) (probe peer.Info) {
	i := t.bucketIndex(info.ID)
	if i < 0 || info.Addr == "" {
		return peer.Info{}
	}
	b := t.bucketFor(i)
	if j := b.find(info.ID); j >= 0 {
		c := b.contacts[j]
		c.info = info
		c.lastSeen = now
		c.failures = 0
		b.contacts = append(append(b.contacts[:j], b.contacts[j+1:]...), c)
		if b.probing == info.ID {
			b.probing = peer.ID{}
		}
		return peer.Info{}
	}
	entry := contact{info: info, lastSeen: now}
	if len(b.contacts) < t.k {
		b.contacts = append(b.contacts, entry)
		t.size++
		b.removeReplacement(info.ID)
		return peer.Info{}
	}
	for j := range b.contacts {
		if t.stale(&b.contacts[j]) {
			if b.contacts[j].info.ID == b.probing {
				b.probing = peer.ID{}
			}
			b.contacts = append(append(b.contacts[:j], b.contacts[j+1:]...), entry)
			b.removeReplacement(info.ID)
			return peer.Info{}
		}
	}
	b.addReplacement(entry, t.replacementSize)
	if b.probing.IsZero() && now.Sub(b.contacts[0].lastSeen) >= t.probeAfter {
		b.probing = b.contacts[0].info.ID
		return b.contacts[0].info
	}
	return peer.Info{}
}

func (b *bucket) removeReplacement(id peer.ID) {
	if j := b.findReplacement(id); j >= 0 {
		b.replacements = append(b.replacements[:j], b.replacements[j+1:]...)
	}
}

func (b *bucket) addReplacement(entry contact, max int) {
	b.removeReplacement(entry.info.ID)
	if len(b.replacements) >= max {
		b.replacements = append(b.replacements[:0], b.replacements[1:]...)
	}
	b.replacements = append(b.replacements, entry)
}

// failed records that id did not answer a request. A contact that becomes
// stale is replaced at once by the most recent replacement, if any.
func (t *table) failed(id peer.ID) {
	i := t.bucketIndex(id)
	if i < 0 || t.buckets[i] == nil {
		return
	}
	b := t.buckets[i]
	j := b.find(id)
	if j < 0 {
		b.removeReplacement(id)
		return
	}
	b.contacts[j].failures++
	if t.stale(&b.contacts[j]) && len(b.replacements) > 0 {
		t.evict(b, j)
	}
}

// probeFailed evicts id after it failed the PING that a newcomer's arrival
// triggered (paper section 2.2), promoting the newest replacement.
func (t *table) probeFailed(id peer.ID) {
	i := t.bucketIndex(id)
	if i < 0 || t.buckets[i] == nil {
		return
	}
	b := t.buckets[i]
	if b.probing == id {
		b.probing = peer.ID{}
	}
	if j := b.find(id); j >= 0 {
		t.evict(b, j)
	}
}

// evict removes contact j from b and promotes the newest replacement.
func (t *table) evict(b *bucket, j int) {
	if b.contacts[j].info.ID == b.probing {
		b.probing = peer.ID{}
	}
	b.contacts = append(b.contacts[:j], b.contacts[j+1:]...)
	t.size--
	if n := len(b.replacements); n > 0 {
		repl := b.replacements[n-1]
		b.replacements = b.replacements[:n-1]
		// The replacement was seen when it was cached: it goes in its
		// place in least-recently-seen order.
		pos, _ := slices.BinarySearchFunc(b.contacts, repl.lastSeen, func(c contact, at time.Time) int {
			if c.lastSeen.After(at) {
				return 1
			}
			return -1
		})
		b.contacts = slices.Insert(b.contacts, pos, repl)
		t.size++
	}
}

// get returns the contact for id, or nil.
func (t *table) get(id peer.ID) *contact {
	i := t.bucketIndex(id)
	if i < 0 || t.buckets[i] == nil {
		return nil
	}
	b := t.buckets[i]
	if j := b.find(id); j >= 0 {
		return &b.contacts[j]
	}
	return nil
}

// deepest returns the index of the deepest non-empty bucket, -1 when the
// table is empty.
func (t *table) deepest() int {
	for i := t.maxIndex; i >= 0; i-- {
		if b := t.buckets[i]; b != nil && len(b.contacts) > 0 {
			return i
		}
	}
	return -1
}

// touch records a lookup for target at now, for bucket refresh.
func (t *table) touch(target peer.ID, now time.Time) {
	if i := t.bucketIndex(target); i >= 0 {
		t.bucketFor(i).lastLookup = now
	}
}

// closest returns up to n contacts closest to target by XOR distance,
// closest first, leaving out stale contacts when skipStale is set.
//
// It visits buckets in distance order instead of sorting the whole table.
// With d the common prefix length of the node and target, bucket d holds the
// closest contacts; buckets i > d all differ from target first at bit d and
// then at bit i, where their bit is the opposite of target's relative to the
// node, so they come in increasing i where bit i of (self XOR target) is 1,
// then in decreasing i where it is 0; buckets i < d come last, deepest first.
func (t *table) closest(target peer.ID, n int, skipStale bool) []peer.Info {
	if n <= 0 {
		return nil
	}
	out := make([]peer.Info, 0, min(n, t.size))
	// ranked holds one bucket's contacts by distance: the first 8 bytes
	// of the distance decide almost always, the full ID breaks ties.
	type ranked struct {
		prefix uint64
		c      *contact
	}
	var scratch [256]ranked
	take := func(i int) bool {
		b := t.buckets[i]
		if b == nil || len(b.contacts) == 0 {
			return len(out) >= n
		}
		list := scratch[:0]
		for j := range b.contacts {
			c := &b.contacts[j]
			if skipStale && t.stale(c) {
				continue
			}
			list = append(list, ranked{prefix: binary.BigEndian.Uint64(c.info.ID[:8]) ^ binary.BigEndian.Uint64(target[:8]), c: c})
		}
		slices.SortFunc(list, func(a, b ranked) int {
			if a.prefix != b.prefix {
				if a.prefix < b.prefix {
					return -1
				}
				return 1
			}
			return compareDistance(target, a.c.info.ID, b.c.info.ID)
		})
		for _, r := range list {
			if len(out) >= n {
				break
			}
			out = append(out, r.c.info)
		}
		return len(out) >= n
	}
	d := CommonPrefixLen(t.self, target)
	rel := Distance(t.self, target)
	if d < IDBits {
		if take(d) {
			return out
		}
		// Buckets past maxIndex do not exist.
		for i := d + 1; i <= t.maxIndex; i++ {
			if bit(rel, i) == 1 && take(i) {
				return out
			}
		}
		for i := t.maxIndex; i > d; i-- {
			if bit(rel, i) == 0 && take(i) {
				return out
			}
		}
	}
	for i := min(d, IDBits) - 1; i >= 0; i-- {
		if take(i) {
			return out
		}
	}
	return out
}

// forEach calls fn for every contact, bucket by bucket.
func (t *table) forEach(fn func(bucketIndex int, c *contact)) {
	for i, b := range t.buckets {
		if b == nil {
			continue
		}
		for j := range b.contacts {
			fn(i, &b.contacts[j])
		}
	}
}
