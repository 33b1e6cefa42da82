package plumtree

import (
	"hash/maphash"
	"time"
)

// seenSet is the seen cache: the message IDs delivered, each remembered for
// its TTL and at most limit of them, the oldest forgotten first. Every node
// remembers every broadcast of the last SeenTTL (five minutes by default),
// so in a 10,000-node simulation, where each join is a membership
// broadcast, the seen caches hold 10⁸ IDs: this set keeps them in a ring
// in arrival order (24 bytes an ID, the ring half as large again when
// full) with an open-addressing index of 4-byte ring positions, about 34
// bytes an ID where a map beside a queue took about 42 (issue 14).
type seenSet struct {
	limit int
	ttl   time.Duration
	seed  maphash.Seed // keys the index: peers choose message IDs
	// queue is the ring of IDs in arrival order: the live ones are the
	// count from head on, wrapping around.
	queue []seenID
	head  int
	count int
	// index holds 1 + the ring position of each live ID (0: a free slot),
	// by the ID's hash with linear probing; its length is a power of two
	// at least 4/3 of the ring's.
	index []uint32
}

type seenID struct {
	id      MessageID
	expires int64 // Unix nanoseconds
}

func newSeenSet(limit int, ttl time.Duration) *seenSet {
	return &seenSet{limit: limit, ttl: ttl, seed: maphash.MakeSeed()}
}

func (s *seenSet) home(id MessageID) int {
	return int(maphash.Comparable(s.seed, id) & uint64(len(s.index)-1))
}

// find returns the index slot holding id, or the free slot where it would
// go; the index must not be empty.
func (s *seenSet) find(id MessageID) (int, bool) {
	mask := len(s.index) - 1
	for i := s.home(id); ; i = (i + 1) & mask {
		pos := s.index[i]
		if pos == 0 {
			return i, false
		}
		if s.queue[pos-1].id == id {
			return i, true
		}
	}
}

// contains reports whether id is present and not expired at now.
func (s *seenSet) contains(now time.Time, id MessageID) bool {
	if s.count == 0 {
		return false
	}
	i, ok := s.find(id)
	return ok && now.UnixNano() < s.queue[s.index[i]-1].expires
}

// put adds id (an ID present already keeps its age). It evicts expired IDs
// first, then the oldest ones while the set is full.
func (s *seenSet) put(now time.Time, id MessageID, _ struct{}) {
	s.expire(now)
	if s.count > 0 {
		if _, ok := s.find(id); ok {
			return
		}
	}
	for s.count > 0 && s.count >= s.limit {
		s.popOldest()
	}
	if s.count == len(s.queue) {
		s.grow()
	}
	pos := (s.head + s.count) % len(s.queue)
	s.queue[pos] = seenID{id: id, expires: now.Add(s.ttl).UnixNano()}
	s.count++
	i, _ := s.find(id)
	s.index[i] = uint32(pos + 1)
}

// grow makes the ring half as large again (eight IDs at first, never above
// limit) and rebuilds the index for it.
func (s *seenSet) grow() {
	size := min(max(8, len(s.queue)+len(s.queue)/2), max(s.limit, 1))
	queue := make([]seenID, size)
	for k := range s.count {
		queue[k] = s.queue[(s.head+k)%len(s.queue)]
	}
	s.queue, s.head = queue, 0
	indexSize := 8
	for indexSize*3 < size*4 {
		indexSize *= 2
	}
	s.index = make([]uint32, indexSize)
	for k := range s.count {
		i, _ := s.find(queue[k].id)
		s.index[i] = uint32(k + 1)
	}
}

// expire removes every ID whose TTL has passed at now.
func (s *seenSet) expire(now time.Time) {
	t := now.UnixNano()
	for s.count > 0 && t >= s.queue[s.head].expires {
		s.popOldest()
	}
}

// popOldest forgets the oldest ID.
func (s *seenSet) popOldest() {
	oldest := s.queue[s.head]
	i, _ := s.find(oldest.id)
	s.queue[s.head] = seenID{}
	s.head = (s.head + 1) % len(s.queue)
	s.count--
	// Backward-shift deletion: move later entries of the probe run back
	// into the hole when their home slot is not after it.
	mask := len(s.index) - 1
	s.index[i] = 0
	for j := (i + 1) & mask; s.index[j] != 0; j = (j + 1) & mask {
		home := s.home(s.queue[s.index[j]-1].id)
		if (i < j && (home <= i || home > j)) || (i > j && home <= i && home > j) {
			s.index[i], s.index[j] = s.index[j], 0
			i = j
		}
	}
}

// len returns the number of IDs held, expired or not.
func (s *seenSet) len() int { return s.count }
