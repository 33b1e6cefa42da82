package gossip

// The member table (issue 14): every node holds an entry for every member,
// so a network of N nodes holds N² entries, 10⁸ in a 10,000-node simulation.
// A member's record (its ID and address, incarnation, name, tags, key and
// signature) is immutable once signed, so it is interned: one copy per
// record version per process, shared by every core that holds it (the
// simulator's 10,000 cores, or a real node's one), and forgotten once no
// core holds it. A core's table holds only a pointer to the shared record
// and a byte (the state it holds the member in, and 6 bits of the ID's hash
// that spare most lookups a visit to the record): 9 bytes a slot, in an open-addressing
// table whose hash is keyed by the core's seed (a peer cannot choose IDs that
// collide in it): about 13 bytes per member and per node, 1.3 GB for the
// simulator's 10⁸ entries.
//
// Push-pull syncs compare digests of the member list by bucket (members
// grouped by the first bits of their IDs) and send each other only the
// entries of the buckets that differ: while a thousand nodes join a
// 10,000-node network, every list changes every few milliseconds, and whole
// lists of 10,000 entries each way at every sync were most of the
// simulator's CPU. A bucket's digest is a sum of per-entry hashes, kept up
// to date as entries change rather than recomputed at every sync.

import (
	"crypto/sha256"
	"encoding/binary"
	"maps"
	"slices"
	"strings"

	"github.com/p2p-go/p2p/internal/intern"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/plumtree"
	"github.com/p2p-go/p2p/wire"
)

// record is a member's record as its member signed it, shared by every core
// of the process that holds it. It is never modified: a new incarnation, a
// new address or a departure is another record.
type record struct {
	// entry is the record; its State is the signed state (alive or left),
	// not the state a core holds the member in.
	entry Entry
	// key is the record's whole content, its identity in the intern table.
	key string
	// sum is the hash of the fields the member-list digest covers (ID,
	// incarnation, address).
	sum uint64
}

// recordKey returns e's content as a string: two entries have the same key
// exactly when they are the same record (the same signed bytes, key and
// signature), whatever state a node holds them in.
func recordKey(e Entry) string {
	buf := recordBytes(e)[len(recordDomain):]
	buf = appendString(buf, string(e.PublicKey))
	buf = appendString(buf, string(e.Signature))
	for _, w := range e.Witnesses {
		buf = append(buf, w.By[:]...)
		buf = appendString(buf, string(w.Signature))
	}
	return string(buf)
}

// internedRecords holds the shared records by key; a record no core holds
// any more is collected.
var internedRecords intern.Table[record]

// internRecord returns the shared record of e, making it if no core holds
// it. The record owns copies of e's tags, key and signature: nothing the
// caller keeps can change it.
func internRecord(e Entry) *record {
	key := recordKey(e)
	return internedRecords.Get(key, func() *record {
		r := &record{key: key, entry: Entry{
			Peer:        peer.Info{ID: e.Peer.ID, Addr: strings.Clone(e.Peer.Addr)},
			Incarnation: e.Incarnation,
			State:       signedState(e.State),
			Name:        strings.Clone(e.Name),
			Tags:        maps.Clone(e.Tags),
			PublicKey:   slices.Clone(e.PublicKey),
			Signature:   slices.Clone(e.Signature),
			Witnesses:   cloneWitnesses(e.Witnesses),
		}}
		r.sum = entrySum(r.entry.Peer, r.entry.Incarnation)
		return r
	})
}

// entrySum hashes what the member-list digest covers of one entry, but its
// state: its ID, incarnation and address.
func entrySum(p peer.Info, incarnation uint64) uint64 {
	h := sha256.New()
	var buf [peer.IDLen + 8]byte
	copy(buf[:], p.ID[:])
	binary.BigEndian.PutUint64(buf[peer.IDLen:], incarnation)
	h.Write(buf[:])
	h.Write([]byte(p.Addr))
	var digest [sha256.Size]byte
	return binary.BigEndian.Uint64(h.Sum(digest[:0]))
}

// contribution is one entry's share of its bucket's digest: its record's
// sum mixed with the state it is held in.
func contribution(sum uint64, state uint8) uint64 {
	return mix64(sum + uint64(state)*0x9e3779b97f4a7c15)
}

// Digest buckets: a member's bucket is given by the first bits of its ID.
// A table keeps the sums of maxBuckets buckets; a digest of fewer buckets
// adds them up, so that any two nodes can compare at the bucket count the
// initiator chose.
const (
	maxBuckets = 1024
	minBuckets = 4
	// bucketTarget is the number of members per bucket the initiator aims
	// at: a differing bucket costs about that many entries. While 100
	// nodes a second join a 10,000-node network, two lists synced a
	// second apart differ in about 100 entries: in 1,024 buckets of 10,
	// about a tenth of the list crosses each way, rather than all of it.
	bucketTarget = 16
	// bucketDigestLen is the bytes of one bucket's digest.
	bucketDigestLen = 8
	// maxDigestLen bounds a Sync's digest (8 KiB).
	maxDigestLen = maxBuckets * bucketDigestLen
)

// bucketOf returns id's bucket among buckets (a power of two up to
// maxBuckets).
func bucketOf(id peer.ID, buckets int) int {
	return (int(id[0])<<8 | int(id[1])) * buckets >> 16
}

// validBuckets reports whether a digest of n bytes has a bucket count a node
// can compare with: a power of two from 1 to maxBuckets.
func validBuckets(n int) bool {
	b := n / bucketDigestLen
	return n%bucketDigestLen == 0 && b >= 1 && b <= maxBuckets && b&(b-1) == 0
}

// mix64 is SplitMix64's finalizer: a bijection that spreads every input bit.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// member is one slot of a core's table: a shared record and the state this
// core holds the member in (alive, dead or left).
type member struct {
	rec   *record
	state uint8
}

// id returns the member's ID.
func (m member) id() peer.ID { return m.rec.entry.Peer.ID }

// incarnation returns the incarnation of the member's record.
func (m member) incarnation() uint64 { return m.rec.entry.Incarnation }

// entry returns the member as an Entry, in the state this core holds it in.
// Its tags, key and signature are the shared record's: read them, never
// modify them.
func (m member) entry() Entry {
	e := m.rec.entry
	e.State = m.state
	return e
}

// memberTable is a core's member list: an open-addressing hash table (linear
// probing, backward-shift deletion) of members by ID.
//
// Beside each slot's record pointer, a byte holds the state the member is
// held in (2 bits) and 6 bits of the hash of its ID (its tag). A lookup
// follows a record pointer only when the tags match: the records are spread
// over the heap, and in a simulation of 10,000 nodes following one is a
// cache miss, where the slots of a probe run share a cache line or two.
type memberTable struct {
	k0, k1 uint64    // hash keys, from the core's seed
	recs   []*record // nil: a free slot
	// slotBytes holds each slot's state (slotState) and tag (the rest).
	slotBytes []uint8
	count     int
	alive     int
	// signedOnly: only records with a signature count in the digest (a
	// core with a key sends only those).
	signedOnly bool
	// sums are the digests of the entries a member list carries, without
	// the node itself, by bucket: the sums of their contributions.
	sums [maxBuckets]uint64
}

func newMemberTable(seed uint64, signedOnly bool) *memberTable {
	return &memberTable{k0: mix64(seed ^ 0x6a09e667f3bcc909), k1: mix64(seed ^ 0xbb67ae8584caa73b), signedOnly: signedOnly}
}

func (t *memberTable) hash(id peer.ID) uint64 {
	return mix64(binary.LittleEndian.Uint64(id[0:8])^t.k0) ^ mix64(binary.LittleEndian.Uint64(id[8:16])^t.k1)
}

// home returns the slot where id's probe sequence starts.
func (t *memberTable) home(id peer.ID) int { return t.homeOf(t.hash(id)) }

// homeOf returns the home slot of a hash, drawn from its upper 32 bits.
func (t *memberTable) homeOf(h uint64) int {
	return int((h >> 32) * uint64(len(t.recs)) >> 32)
}

// slotState masks a slot byte's state; the other bits are the tag.
const slotState = 0b11

// tagOf returns the tag of a hash: 6 bits the home slot is not drawn from.
func tagOf(h uint64) uint8 { return uint8(h) &^ slotState }

// find returns the slot holding id, or the free slot where it would go.
func (t *memberTable) find(id peer.ID) (int, bool) {
	h := t.hash(id)
	tag := tagOf(h)
	for i := t.homeOf(h); ; i = t.next(i) {
		r := t.recs[i]
		if r == nil {
			return i, false
		}
		if t.slotBytes[i]&^slotState == tag && r.entry.Peer.ID == id {
			return i, true
		}
	}
}

// state returns the state of the member in slot i.
func (t *memberTable) state(i int) uint8 { return t.slotBytes[i] & slotState }

// slotByte returns what slot i holds beside m's record: its state and tag.
func (t *memberTable) slotByte(m member) uint8 {
	return m.state&slotState | tagOf(t.hash(m.id()))
}

// next returns the slot after i, wrapping around.
func (t *memberTable) next(i int) int {
	if i++; i == len(t.recs) {
		return 0
	}
	return i
}

// len returns the number of members.
func (t *memberTable) len() int { return t.count }

// slots returns the number of slots (for the probe round).
func (t *memberTable) slots() int { return len(t.recs) }

// at returns the member in slot i, if any.
func (t *memberTable) at(i int) (member, bool) {
	if r := t.recs[i]; r != nil {
		return member{rec: r, state: t.state(i)}, true
	}
	return member{}, false
}

// get returns the member with ID id.
func (t *memberTable) get(id peer.ID) (member, bool) {
	if t.count == 0 {
		return member{}, false
	}
	i, ok := t.find(id)
	if !ok {
		return member{}, false
	}
	return member{rec: t.recs[i], state: t.state(i)}, true
}

// counted reports whether m counts in the digest.
func (t *memberTable) counted(m member) bool {
	return !t.signedOnly || len(m.rec.entry.Signature) > 0
}

// account adds (sign 1) or removes (sign -1) m's share of the digest and of
// the alive count.
func (t *memberTable) account(m member, add bool) {
	if m.state == StateAlive {
		if add {
			t.alive++
		} else {
			t.alive--
		}
	}
	if !t.counted(m) {
		return
	}
	b := bucketOf(m.id(), maxBuckets)
	if add {
		t.sums[b] += contribution(m.rec.sum, m.state)
	} else {
		t.sums[b] -= contribution(m.rec.sum, m.state)
	}
}

// put adds m, or replaces the member with its ID.
func (t *memberTable) put(m member) {
	if (t.count+1)*8 > len(t.recs)*7 {
		t.grow()
	}
	i, ok := t.find(m.id())
	if ok {
		t.account(member{rec: t.recs[i], state: t.state(i)}, false)
	} else {
		t.count++
	}
	t.recs[i], t.slotBytes[i] = m.rec, t.slotByte(m)
	t.account(m, true)
}

// grow makes the table half as large again (eight slots at first): at most
// 7/8 and at least 7/12 of the slots are used, 9 bytes each.
func (t *memberTable) grow() {
	oldRecs, oldSlotBytes := t.recs, t.slotBytes
	size := max(8, len(oldRecs)+len(oldRecs)/2)
	t.recs, t.slotBytes = make([]*record, size), make([]uint8, size)
	for j, r := range oldRecs {
		if r != nil {
			i, _ := t.find(r.entry.Peer.ID)
			t.recs[i], t.slotBytes[i] = r, oldSlotBytes[j]
		}
	}
}

// remove deletes the member with ID id, if any.
func (t *memberTable) remove(id peer.ID) {
	if t.count == 0 {
		return
	}
	i, ok := t.find(id)
	if !ok {
		return
	}
	t.account(member{rec: t.recs[i], state: t.state(i)}, false)
	t.count--
	// Backward-shift deletion: move later members of the run back into
	// the hole when their home slot is not after it.
	t.recs[i], t.slotBytes[i] = nil, 0
	for j := t.next(i); t.recs[j] != nil; j = t.next(j) {
		home := t.home(t.recs[j].entry.Peer.ID)
		// j's member may move to i when home is not in (i, j] cyclically.
		if (i < j && (home <= i || home > j)) || (i > j && home <= i && home > j) {
			t.recs[i], t.slotBytes[i] = t.recs[j], t.slotBytes[j]
			t.recs[j], t.slotBytes[j] = nil, 0
			i = j
		}
	}
}

// each calls fn for every member, in slot order, until fn returns false.
func (t *memberTable) each(fn func(member) bool) {
	for i, r := range t.recs {
		if r != nil && !fn(member{rec: r, state: t.state(i)}) {
			return
		}
	}
}

// digest returns the member-list digest of the table plus self in buckets
// buckets: equal lists (whoever holds them) give equal digests, and lists
// that differ only in some buckets differ only in those buckets' digests.
func (t *memberTable) digest(self Entry, buckets int) []byte {
	sums := make([]uint64, buckets)
	for b, sum := range t.sums {
		sums[b*buckets/maxBuckets] += sum
	}
	if !self.Peer.ID.IsZero() || self.Incarnation != 0 {
		sums[bucketOf(self.Peer.ID, buckets)] += contribution(entrySum(self.Peer, self.Incarnation), self.State)
	}
	out := make([]byte, 0, buckets*bucketDigestLen)
	for _, sum := range sums {
		out = binary.BigEndian.AppendUint64(out, sum)
	}
	return out
}

// digestBuckets returns the bucket count a node with members members
// proposes: about bucketTarget members per bucket, within [minBuckets,
// maxBuckets].
func digestBuckets(members int) int {
	b := minBuckets
	for b < maxBuckets && b*bucketTarget < members {
		b *= 2
	}
	return b
}

// differingBuckets returns, for a digest the peer sent, which of its buckets
// differ from this node's (nil when none does).
func (t *memberTable) differingBuckets(self Entry, theirs []byte) []bool {
	buckets := len(theirs) / bucketDigestLen
	ours := t.digest(self, buckets)
	var differ []bool
	for b := range buckets {
		at := b * bucketDigestLen
		if string(ours[at:at+bucketDigestLen]) != string(theirs[at:at+bucketDigestLen]) {
			if differ == nil {
				differ = make([]bool, buckets)
			}
			differ[b] = true
		}
	}
	return differ
}

// decodedMembership is a membership broadcast's body as decoded once per
// process: the entry it carries, with that entry's shared record, and the
// other island's broadcasts it names.
type decodedMembership struct {
	entry  Entry // the entry, its fields the record's (State the claim's)
	rec    *record
	missed []plumtree.MessageID
}

// maxDecodedMemberships bounds the membership bodies remembered decoded: a
// broadcast reaches every node of a large network within a second or so,
// while a thousand more broadcasts rarely start in that time.
const maxDecodedMemberships = 4096

// decodedMemberships remembers the latest membership bodies decoded, by
// their bytes, so that a process running many cores (the simulator) decodes
// each broadcast once rather than once per core. A body is a pure function
// of its bytes: a hit returns exactly what decoding them would.
var decodedMemberships = intern.Memo[*decodedMembership]{Size: maxDecodedMemberships}

// decodeMembership returns the event a membership broadcast's body carries,
// or nil if the body is malformed or out of bounds.
func decodeMembership(body []byte) *decodedMembership {
	if ev, ok := decodedMemberships.Get(string(body)); ok {
		return ev
	}
	var ev *decodedMembership
	var msg membershipEvent
	if err := wire.UnmarshalValue(body, &msg); err == nil && validEntry(msg.Entry) && len(msg.Missed) <= maxRecent {
		rec := internRecord(msg.Entry)
		entry := rec.entry
		entry.State = msg.Entry.State
		ev = &decodedMembership{entry: entry, rec: rec, missed: msg.Missed}
	}
	decodedMemberships.Put(string(body), ev)
	return ev
}
