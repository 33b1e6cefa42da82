package kademlia

import (
	"fmt"
	"slices"
	"time"

	"github.com/p2p-go/p2p/peer"
)

// bootstrap is a Bootstrap in progress.
type bootstrap struct {
	reqID   uint64
	pending int
	// seeds are the contacts the bootstrap nodes returned, which seed the
	// node's lookup of its own ID.
	seeds []peer.Info
}

func (c *Core) startBootstrap(now time.Time, in Bootstrap) {
	c.nextHandle++
	handle := c.nextHandle
	b := &bootstrap{reqID: in.ReqID}
	c.bootstraps[handle] = b
	self := c.cfg.Self.ID
	for _, addr := range in.Contacts {
		if addr == "" || len(addr) > c.cfg.MaxAddrLen || addr == c.cfg.Self.Addr {
			continue
		}
		b.pending++
		c.request(now, peer.Info{Addr: addr}, rpcBootstrap, handle, func(rpc uint64) any { return &FindNode{RPC: rpc, Target: self} })
	}
	if b.pending == 0 {
		b.pending = 1
		c.bootstrapReply(now, b, handle, nil)
	}
}

// bootstrapReply counts one bootstrap contact's answer (or failure) and
// starts the node's own lookup once all are in.
func (c *Core) bootstrapReply(now time.Time, b *bootstrap, handle uint64, contacts []peer.Info) {
	for _, info := range contacts {
		if info.ID != c.cfg.Self.ID {
			b.seeds = append(b.seeds, info)
		}
	}
	if b.pending--; b.pending > 0 {
		return
	}
	delete(c.bootstraps, handle)
	if c.table.size == 0 && len(b.seeds) == 0 {
		c.emit(BootstrapResult{ReqID: b.reqID, Err: fmt.Errorf("%w: no bootstrap contact answered", ErrNoContacts)})
		return
	}
	h, l := c.newLookup(now, lookupSelf, b.reqID, c.cfg.Self.ID)
	l.bootstrap = b
	l.merge(b.seeds, 2, c.cfg.K)
	b.seeds = nil
	c.advance(now, h, l)
}

// bootstrapJoined ends a Bootstrap once the node's own lookup is done: it
// refreshes every bucket farther than its closest neighbour (paper section
// 2.3), which fills the table and tells the nodes of those ranges about it.
func (c *Core) bootstrapJoined(now time.Time, b *bootstrap, closest []peer.Info) {
	if len(closest) > 0 {
		for i := range CommonPrefixLen(c.cfg.Self.ID, closest[0].ID) {
			c.refreshBucket(now, i)
		}
	}
	if c.table.size == 0 {
		c.emit(BootstrapResult{ReqID: b.reqID, Err: fmt.Errorf("%w: no node answered the lookup of %s", ErrNoContacts, c.cfg.Self.ID.Short())})
		return
	}
	c.emit(BootstrapResult{ReqID: b.reqID, Contacts: c.table.size})
}

// refreshBucket looks up a random ID in bucket i's range.
func (c *Core) refreshBucket(now time.Time, i int) {
	c.startLookup(now, lookupRefresh, 0, c.randomIDInBucket(i), nil)
}

// randomIDInBucket returns a random ID sharing exactly i leading bits with
// the node's own.
func (c *Core) randomIDInBucket(i int) peer.ID {
	var id peer.ID
	for j := 0; j < peer.IDLen; j += 8 {
		v := c.rng.Uint64()
		for k := range 8 {
			id[j+k] = byte(v >> (8 * k))
		}
	}
	self := c.cfg.Self.ID
	for b := range i {
		if bit(id, b) != bit(self, b) {
			id = flipBit(id, b)
		}
	}
	if bit(id, i) == bit(self, i) {
		id = flipBit(id, i)
	}
	return id
}

func (c *Core) startGet(now time.Time, in Get) {
	if entry, ok := c.store.get(in.Key, now); ok {
		c.emit(GetResult{ReqID: in.ReqID, Key: in.Key, Record: entry.rec})
		return
	}
	c.startLookup(now, lookupValue, in.ReqID, in.Key, nil)
}

func (c *Core) startPut(now time.Time, in Put) {
	rec := in.Record
	fail := func(err error) { c.emit(PutResult{ReqID: in.ReqID, Key: rec.Key, Seq: rec.Seq, Err: err}) }
	switch {
	case len(rec.Sig) > 0:
		// Signed elsewhere: stored as given.
	case len(rec.Name) > 0 || len(rec.Writer) > 0:
		if c.cfg.Signer == nil {
			fail(fmt.Errorf("%w: cannot sign record %q", ErrNoSigner, rec.Name))
			return
		}
		own := c.cfg.Signer.Public()
		if len(rec.Writer) > 0 && !slices.Equal(rec.Writer, own) {
			fail(fmt.Errorf("%w: record %q belongs to writer %s, this node signs as %s", ErrNoSigner, rec.Name, peer.IDFromPublicKey(rec.Writer).Short(), c.cfg.Self.ID.Short()))
			return
		}
		key := MutableKey(own, rec.Name)
		seq := rec.Seq
		if seq == 0 {
			seq = max(uint64(max(now.UnixNano(), 0)), c.lastSeq(key, now)+1)
		}
		rec = NewMutableRecord(c.cfg.Signer, rec.Name, rec.Value, seq)
	default:
		rec = NewImmutableRecord(rec.Value)
	}
	if err := c.store.validate(&rec); err != nil {
		fail(err)
		return
	}
	if rec.Mutable() {
		if last := c.lastSeq(rec.Key, now); last > rec.Seq {
			fail(fmt.Errorf("%w: record %s seq %d, this node already holds seq %d", ErrStale, rec.Key.Short(), rec.Seq, last))
			return
		}
	}
	rec.Expires = now.Add(c.cfg.RecordTTL)
	c.published[rec.Key] = &publishedRecord{rec: rec, nextRepublish: now.Add(c.cfg.RepublishInterval)}
	c.startLookup(now, lookupPut, in.ReqID, rec.Key, &putState{rec: rec, external: true})
}

// lastSeq returns the highest sequence number this node knows for key.
func (c *Core) lastSeq(key peer.ID, now time.Time) uint64 {
	var seq uint64
	if p := c.published[key]; p != nil {
		seq = p.rec.Seq
	}
	if entry, ok := c.store.get(key, now); ok {
		seq = max(seq, entry.rec.Seq)
	}
	return seq
}

// maxReplicationsPerRound bounds the replication lookups one maintenance
// round starts, so that a node holding many records spreads their
// replication over several rounds instead of flooding the network at once.
const maxReplicationsPerRound = 100

// maintain runs the periodic work: expiry, bucket refresh, replication and
// republication.
func (c *Core) maintain(now time.Time) {
	c.nextMaintenance = now.Add(c.cfg.MaintenanceInterval)
	c.store.expire(now)
	c.limiter.prune(now)
	c.broadcasts.expire(now, c.cfg.SeenTTL, c.cfg.MaxSeen)

	for i := range c.table.deepest() + 1 {
		if b := c.table.bucketFor(i); now.Sub(b.lastLookup) >= c.cfg.RefreshInterval {
			c.refreshBucket(now, i)
		}
	}

	var due []peer.ID
	for key, entry := range c.store.records {
		if !entry.nextReplicate.After(now) {
			due = append(due, key)
		}
	}
	slices.SortFunc(due, func(a, b peer.ID) int { return a.Compare(b) })
	started := 0
	for _, key := range due {
		if started == maxReplicationsPerRound {
			break // the rest stay due for the next round
		}
		entry := c.store.records[key]
		entry.nextReplicate = c.replicateAt(now)
		if !c.amongClosest(key) {
			continue // a cached copy: the k closest have the record
		}
		started++
		c.startLookup(now, lookupReplicate, 0, key, &putState{rec: entry.rec})
	}

	due = due[:0]
	for key, p := range c.published {
		if !p.nextRepublish.After(now) {
			due = append(due, key)
		}
	}
	slices.SortFunc(due, func(a, b peer.ID) int { return a.Compare(b) })
	for _, key := range due {
		p := c.published[key]
		p.nextRepublish = now.Add(c.cfg.RepublishInterval)
		p.rec.Expires = now.Add(c.cfg.RecordTTL)
		c.startLookup(now, lookupPut, 0, key, &putState{rec: p.rec})
	}
}

// amongClosest reports whether this node is among the K closest to key that
// its routing table knows.
func (c *Core) amongClosest(key peer.ID) bool {
	closest := c.table.closest(key, c.cfg.K, true)
	return len(closest) < c.cfg.K || Closer(key, c.cfg.Self.ID, closest[len(closest)-1].ID)
}

func sortUint64s(s []uint64) { slices.Sort(s) }
