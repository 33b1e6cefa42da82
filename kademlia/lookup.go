package kademlia

import (
	"fmt"
	"slices"
	"time"

	"github.com/p2p-go/p2p/peer"
)

// lookupKind says what a lookup is for and what happens when it ends.
type lookupKind uint8

const (
	lookupNodes     lookupKind = iota + 1 // a Lookup request
	lookupValue                           // a Get request (FIND_VALUE)
	lookupPut                             // a Put or republication: STORE at the end
	lookupReplicate                       // a holder's replication: STORE at the end
	lookupSelf                            // the lookup of a Bootstrap
	lookupRefresh                         // a bucket refresh
)

// candidateState is where a lookup stands with one candidate.
type candidateState uint8

const (
	candidateFresh    candidateState = iota // not asked yet
	candidateAsked                          // request in flight
	candidateLate                           // no reply within RPCTimeout yet
	candidateAnswered                       // replied
	candidateFailed                         // no reply within LateReplyTimeout, link down or bad reply
)

// candidate is a node a lookup knows of.
type candidate struct {
	info  peer.Info
	state candidateState
	// hops is the number of steps from this node to the candidate: 1 for
	// a contact of the routing table, one more than its referrer otherwise.
	hops int
}

// lookup is an iterative node lookup (paper section 2.3): it keeps Alpha
// requests in flight to the closest candidates not yet asked, and ends when
// the K closest candidates that did not fail have all answered. A candidate
// that fails is skipped: the next one moves into the K closest. A candidate
// that has not answered within RPCTimeout is late: "removed from
// consideration until and unless it responds", as the paper puts it. The
// lookup asks the next candidate in its place, but does not end while a
// late candidate closer than the K-th of the others may still answer
// (until LateReplyTimeout): a node slow to answer, under load, is not left
// out of the result for that. A node that neither answers nor is known to
// be unreachable (a failed dial) costs the lookup its LateReplyTimeout,
// during which the rest of the lookup goes on. Once a
// round of Alpha replies in a row brings no node closer than the closest
// already seen, the lookup has converged and asks all the K closest it has
// not asked yet at once (the paper's final step), instead of Alpha at a
// time: the same requests, in one round trip instead of several.
type lookup struct {
	handle uint64
	kind   lookupKind
	reqID  uint64
	target peer.ID
	// candidates is sorted by distance to target.
	candidates []candidate
	known      map[peer.ID]struct{}
	inflight   int
	contacted  int
	finished   bool
	// stalled counts the replies in a row that brought no candidate closer
	// than the closest known; converged is set once it reaches Alpha.
	stalled   int
	converged bool

	// put is the record a lookupPut or lookupReplicate stores at the end.
	put *putState
	// bootstrap is the Bootstrap a lookupSelf belongs to.
	bootstrap *bootstrap
}

// putState is the STORE phase of a put or replication.
type putState struct {
	rec      Record
	external bool // answer with a PutResult
	pending  int
	stored   int
	firstErr error
}

// maxCandidates bounds the live candidates a lookup keeps, in units of K.
const maxCandidates = 3

// newLookup registers a lookup and seeds it from the routing table.
func (c *Core) newLookup(now time.Time, kind lookupKind, reqID uint64, target peer.ID) (uint64, *lookup) {
	c.nextHandle++
	handle := c.nextHandle
	l := &lookup{handle: handle, kind: kind, reqID: reqID, target: target, known: map[peer.ID]struct{}{c.cfg.Self.ID: {}}}
	c.lookups[handle] = l
	c.table.touch(target, now)
	seeds := c.table.closest(target, c.cfg.K, true)
	if len(seeds) < c.cfg.Alpha {
		// Too few fresh contacts: stale ones are better than none.
		seeds = c.table.closest(target, c.cfg.K, false)
	}
	l.merge(seeds, 1, c.cfg.K)
	return handle, l
}

// startLookup starts a lookup of kind for target and runs its first step.
func (c *Core) startLookup(now time.Time, kind lookupKind, reqID uint64, target peer.ID, put *putState) {
	handle, l := c.newLookup(now, kind, reqID, target)
	l.put = put
	c.advance(now, handle, l)
}

// merge adds contacts found at the given hop count.
func (l *lookup) merge(contacts []peer.Info, hops, k int) {
	for _, info := range contacts {
		if _, ok := l.known[info.ID]; ok {
			continue
		}
		l.known[info.ID] = struct{}{}
		pos, _ := slices.BinarySearchFunc(l.candidates, info.ID, func(cand candidate, id peer.ID) int {
			return compareDistance(l.target, cand.info.ID, id)
		})
		l.candidates = slices.Insert(l.candidates, pos, candidate{info: info, hops: hops})
	}
	// Forget fresh candidates beyond the closest maxCandidates*K live
	// ones: the lookup can never need them.
	live := 0
	out := l.candidates[:0]
	for _, cand := range l.candidates {
		if cand.state != candidateFailed {
			live++
			if live > maxCandidates*k && cand.state == candidateFresh {
				continue
			}
		}
		out = append(out, cand)
	}
	clear(l.candidates[len(out):])
	l.candidates = out
}

// closestLive returns the closest candidate that did not fail (the zero ID
// when there is none).
func (l *lookup) closestLive() peer.ID {
	for _, cand := range l.candidates {
		if cand.state != candidateFailed {
			return cand.info.ID
		}
	}
	return peer.ID{}
}

func (l *lookup) find(id peer.ID) *candidate {
	for i := range l.candidates {
		if l.candidates[i].info.ID == id {
			return &l.candidates[i]
		}
	}
	return nil
}

// advance sends requests while fewer than Alpha are in flight, and ends the
// lookup when the K closest live candidates have all answered. Late
// candidates are not counted among the K closest, but the lookup waits for
// those closer than the K-th.
func (c *Core) advance(now time.Time, handle uint64, l *lookup) {
	if l.finished {
		return
	}
	parallelism := c.cfg.Alpha
	if l.converged {
		parallelism = c.cfg.K
	}
	live, waiting := 0, false
	for i := range l.candidates {
		cand := &l.candidates[i]
		if cand.state == candidateFailed {
			continue
		}
		if cand.state == candidateLate {
			// Closer than the K-th other live candidate: it would
			// be in the result.
			if live < c.cfg.K {
				waiting = true
			}
			continue
		}
		if live++; live > c.cfg.K {
			break
		}
		switch cand.state {
		case candidateFresh:
			waiting = true
			if l.inflight < parallelism {
				cand.state = candidateAsked
				l.inflight++
				l.contacted++
				c.ask(now, handle, l, cand.info)
			}
		case candidateAsked:
			waiting = true
		}
	}
	if !waiting {
		c.finishLookup(now, handle, l)
	}
}

func (c *Core) ask(now time.Time, handle uint64, l *lookup, to peer.Info) {
	target := l.target
	if l.kind == lookupValue {
		c.request(now, to, rpcFindValue, handle, func(rpc uint64) any { return &FindValue{RPC: rpc, Key: target} })
		return
	}
	c.request(now, to, rpcFindNode, handle, func(rpc uint64) any { return &FindNode{RPC: rpc, Target: target} })
}

// lookupReply handles a candidate's answer.
func (c *Core) lookupReply(now time.Time, l *lookup, from peer.Info, contacts []peer.Info, record *WireRecord) {
	handle := l.handle
	cand := l.find(from.ID)
	if cand == nil || (cand.state != candidateAsked && cand.state != candidateLate) {
		return
	}
	if cand.state == candidateAsked {
		l.inflight--
	}
	if record != nil && l.kind == lookupValue {
		rec := fromWire(record, now, c.cfg.RecordTTL)
		err := c.store.validate(&rec)
		if err == nil && rec.Key != l.target {
			err = fmt.Errorf("%w: asked for %s, got %s", ErrKeyMismatch, l.target.Short(), rec.Key.Short())
		}
		if err != nil {
			c.stats.Malformed++
			c.log.Info("bad record refused", "peer", from.String(), "key", l.target.Short(), "err", err)
			cand.state = candidateFailed
			c.table.failed(from.ID)
			c.advance(now, handle, l)
			return
		}
		cand.state = candidateAnswered
		c.valueFound(now, handle, l, rec, from.ID, cand.hops)
		return
	}
	cand.state = candidateAnswered
	hops := cand.hops
	fresh := contacts[:0:0]
	for _, info := range contacts {
		if info.ID == c.cfg.Self.ID {
			continue
		}
		// A contact this node already knows is reached at the address it
		// knows, not at one a third party claims.
		if ct := c.table.get(info.ID); ct != nil {
			info.Addr = ct.info.Addr
		}
		fresh = append(fresh, info)
	}
	before := l.closestLive()
	l.merge(fresh, hops+1, c.cfg.K)
	if l.closestLive() != before {
		l.stalled = 0
	} else if l.stalled++; l.stalled >= c.cfg.Alpha {
		l.converged = true
	}
	c.advance(now, handle, l)
}

// lookupLate handles a candidate that did not answer within RPCTimeout: it
// no longer holds one of the Alpha places, and the lookup asks the next
// candidate.
func (c *Core) lookupLate(now time.Time, l *lookup, id peer.ID) {
	cand := l.find(id)
	if cand == nil || cand.state != candidateAsked {
		return
	}
	cand.state = candidateLate
	l.inflight--
	c.advance(now, l.handle, l)
}

// lookupFailed handles a candidate that will not answer.
func (c *Core) lookupFailed(now time.Time, l *lookup, id peer.ID) {
	cand := l.find(id)
	if cand == nil || (cand.state != candidateAsked && cand.state != candidateLate) {
		return
	}
	if cand.state == candidateAsked {
		l.inflight--
	}
	cand.state = candidateFailed
	c.advance(now, l.handle, l)
}

// answered returns up to n candidates that answered, closest first.
func (l *lookup) answered(n int) []peer.Info {
	var out []peer.Info
	for _, cand := range l.candidates {
		if cand.state == candidateAnswered {
			out = append(out, cand.info)
			if len(out) == n {
				break
			}
		}
	}
	return out
}

// closestHops is the hop count of the closest candidate that answered.
func (l *lookup) closestHops() int {
	for _, cand := range l.candidates {
		if cand.state == candidateAnswered {
			return cand.hops
		}
	}
	return 0
}

// finishLookup ends a lookup that did not find a value.
func (c *Core) finishLookup(now time.Time, handle uint64, l *lookup) {
	l.finished = true
	closest := l.answered(c.cfg.K)
	switch l.kind {
	case lookupNodes:
		delete(c.lookups, handle)
		res := LookupResult{ReqID: l.reqID, Target: l.target, Closest: closest, Contacted: l.contacted, Hops: l.closestHops()}
		if len(closest) == 0 {
			res.Err = fmt.Errorf("%w: lookup of %s", ErrNoContacts, l.target.Short())
		}
		c.emit(res)
	case lookupValue:
		delete(c.lookups, handle)
		err := fmt.Errorf("%w: key %s after asking %d nodes", ErrNotFound, l.target.Short(), l.contacted)
		if l.contacted == 0 {
			err = fmt.Errorf("%w: get of %s", ErrNoContacts, l.target.Short())
		}
		c.emit(GetResult{ReqID: l.reqID, Key: l.target, Contacted: l.contacted, Err: err})
	case lookupPut, lookupReplicate:
		c.storeAtClosest(now, handle, l, closest)
	case lookupSelf:
		delete(c.lookups, handle)
		c.bootstrapJoined(now, l.bootstrap, closest)
	default:
		delete(c.lookups, handle)
	}
}

// storeAtClosest sends the STOREs of a put or replication to the K closest
// nodes found, and keeps a copy when this node is itself among them.
func (c *Core) storeAtClosest(now time.Time, handle uint64, l *lookup, closest []peer.Info) {
	p := l.put
	self := c.cfg.Self.ID
	selfIn := len(closest) < c.cfg.K || Closer(l.target, self, closest[len(closest)-1].ID)
	if selfIn {
		if len(closest) == c.cfg.K {
			closest = closest[:c.cfg.K-1]
		}
		if l.kind == lookupPut {
			if _, err := c.store.put(p.rec, self, now, c.replicateAt(now)); err != nil {
				p.firstErr = fmt.Errorf("local store of %s: %w", p.rec.Key.Short(), err)
			} else {
				p.stored++
			}
		}
	}
	ttl := p.rec.Expires.Sub(now)
	if ttl <= 0 {
		closest = nil
	}
	wireRec := p.rec.toWire(ttl)
	for _, to := range closest {
		p.pending++
		c.request(now, to, rpcStore, handle, func(rpc uint64) any { return &Store{RPC: rpc, Record: wireRec} })
	}
	c.putMaybeDone(handle, l)
}

// storeDone counts a STORE reply (err nil) or failure.
func (c *Core) storeDone(now time.Time, l *lookup, from peer.Info, err error) {
	p := l.put
	if p == nil || !l.finished || p.pending == 0 {
		return
	}
	p.pending--
	if err == nil {
		p.stored++
	} else if p.firstErr == nil {
		p.firstErr = err
	}
	c.putMaybeDone(l.handle, l)
}

func (c *Core) putMaybeDone(handle uint64, l *lookup) {
	p := l.put
	if p.pending > 0 {
		return
	}
	delete(c.lookups, handle)
	if !p.external {
		return
	}
	res := PutResult{ReqID: l.reqID, Key: p.rec.Key, Seq: p.rec.Seq, Stored: p.stored}
	if p.stored == 0 {
		res.Err = p.firstErr
		if res.Err == nil {
			res.Err = fmt.Errorf("%w: %s: no node found", ErrNotStored, p.rec.Key.Short())
		}
	}
	c.emit(res)
}

// valueFound ends a Get successfully, and caches the record at the closest
// node that answered without it (paper section 2.5).
func (c *Core) valueFound(now time.Time, handle uint64, l *lookup, rec Record, holder peer.ID, hops int) {
	l.finished = true
	delete(c.lookups, handle)
	c.emit(GetResult{ReqID: l.reqID, Key: l.target, Record: rec, Contacted: l.contacted, Hops: hops})
	if c.cfg.CacheTTL < 0 {
		return
	}
	// The copy's lifetime halves for every live candidate between the
	// cache and the key: far from the key, caches are hit less and go
	// stale sooner.
	between := 0
	for _, cand := range l.candidates {
		if cand.state == candidateFailed || cand.info.ID == holder {
			continue
		}
		if cand.state != candidateAnswered {
			between++
			continue
		}
		ttl := min(rec.Expires.Sub(now), c.cfg.CacheTTL) >> min(between, 30)
		if ttl < time.Minute {
			return
		}
		w := rec.toWire(ttl)
		c.request(now, cand.info, rpcStore, 0, func(rpc uint64) any { return &Store{RPC: rpc, Record: w} })
		return
	}
}
