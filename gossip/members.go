package gossip

// The member list: what each node knows of every other member, kept by ALIVE
// and DEAD broadcasts, probes and push-pull syncs (see doc.go).

import (
	"bytes"
	"crypto/sha256"
	"maps"
	"slices"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/plumtree"
	"github.com/p2p-go/p2p/wire"
)

func validEntry(e Entry) bool {
	return !e.Peer.ID.IsZero() && len(e.Peer.Addr) <= 256 && e.State >= StateAlive && e.State <= StateSuspect &&
		validMeta(e.Name, e.Tags) && len(e.PublicKey) <= 64 && len(e.Signature) <= 128 && validWitnesses(e.Witnesses)
}

// learn merges news of one member, e, which from delivered. Records a
// member did not sign are refused. Higher incarnations win; at equal
// incarnation, dead or left beats alive. Incarnation 0 (a neighbour we just
// linked to, unsigned cores only) only adds an unknown member. A claim that
// a member this node holds alive is suspect or dead is first-hand only when
// this node's own probe went unanswered; anyone else's claim is checked with
// a probe of this node's own before it is believed (see suspicion.go).
// Signature checks that fail count against the message being handled (see
// budget.go).
func (c *Core) learn(now time.Time, e Entry, firstHand bool, from peer.Info) bool {
	return c.learnRecord(now, e, nil, firstHand, from)
}

// learnRecord is learn with e's shared record, when the caller has it
// (rec nil: interned when e is kept).
func (c *Core) learnRecord(now time.Time, e Entry, rec *record, firstHand bool, from peer.Info) bool {
	if e.Peer.ID == c.cfg.Self.ID {
		if e.State != StateAlive {
			c.refuteFrom(from, e.Incarnation)
		}
		return false
	}
	if e.Incarnation == 0 && c.cfg.Key != nil {
		c.stats.InvalidRecords++
		return false
	}
	if !c.mayBelieve(now, e) {
		// Checked before any signature: a list of invented members
		// costs map lookups, not verifications.
		c.refuseUnintroduced(now, e)
		return false
	}
	m, known := c.members.get(e.Peer.ID)
	if known && e.Incarnation != 0 && c.stale(m, e) {
		// Checked before any signature too: an insider's list of
		// garbage-signed entries about held members costs map lookups.
		c.stats.StaleRecords++
		return false
	}
	if !known && c.members.len() >= c.cfg.MaxMembers {
		return false
	}
	if e.Incarnation != 0 && !c.verified(e) {
		return false
	}
	return c.merge(now, e, rec, m, known, firstHand)
}

// merge applies learnRecord's rules to e, which passed its checks; m is
// the member e is about, when this node holds it (known).
func (c *Core) merge(now time.Time, e Entry, rec *record, m member, known, firstHand bool) bool {
	// keep returns e's record with the introductions this node verified,
	// nil if fewer than need (refused: see checkedWitnesses). They are
	// checked once, when e's record is first kept.
	var kept *record
	keep := func(need int, own bool) (r *record, refused bool) {
		if kept != nil {
			return kept, false
		}
		var held *record
		if known {
			held = m.rec
		}
		ws, refused, unheld := c.checkedWitnesses(e, held, need, own)
		if unheld && len(ws) < Introductions && (known || len(ws) >= need) {
			// A member not adopted is tried again anyway (see
			// refuseUnintroduced).
			c.retryWitnesses(e)
		}
		if len(ws) < need {
			return nil, refused
		}
		kept = withWitnesses(e, rec, ws)
		return kept, false
	}
	if known && e.State != StateAlive && e.State != StateLeft && e.Incarnation > m.incarnation() && m.state == StateAlive {
		// A claim about a record newer than ours: the member signed
		// it alive at that incarnation, which we had not heard yet.
		m.rec, _ = keep(0, true)
		c.members.put(m)
	}
	if e.State == StateSuspect {
		if known && m.state == StateAlive && e.Incarnation >= m.incarnation() {
			c.suspect(now, m, e.Incarnation, false)
		}
		return false
	}
	if known && !firstHand && e.State == StateDead && m.state == StateAlive && e.Incarnation >= m.incarnation() {
		c.suspect(now, m, e.Incarnation, true)
		return false
	}
	if !known {
		need := Introductions
		if c.needsNoIntroduction(now, e) {
			need = 0
		}
		r, refused := keep(need, need == 0)
		if r == nil {
			if !refused {
				c.refuseUnintroduced(now, e)
			}
			return false
		}
		if e.State == StateAlive && c.addressTaken(e) {
			c.stats.AddressTaken++
			return false
		}
		c.members.put(member{rec: r, state: e.State})
		if e.State != StateAlive {
			c.diedAt[e.Peer.ID] = now
			return true
		}
		c.hold(e.Peer.ID, e.Peer.Addr)
		c.outputs = append(c.outputs, MemberUp{Peer: e.Peer, Name: e.Name, Tags: maps.Clone(e.Tags)})
		c.vouchFor(e.Peer.ID, false)
		c.witnessChanged(e.Peer.ID)
		return true
	}
	old := m
	newer := e.Incarnation > old.incarnation() ||
		(e.Incarnation == old.incarnation() && e.State > old.state)
	if e.Incarnation == 0 {
		// A live link proves the member alive, but carries no incarnation.
		if old.state == StateAlive && old.rec.entry.Peer != e.Peer {
			moved := old.rec.entry
			moved.Peer = e.Peer
			c.members.put(member{rec: internRecord(moved), state: old.state})
		}
		return false
	}
	if !newer {
		if c.cfg.Key != nil && e.Incarnation == old.incarnation() && len(old.rec.entry.Witnesses) < Introductions &&
			!sameWitnesses(e.Witnesses, old.rec.entry.Witnesses) && bytes.Equal(e.Signature, old.rec.entry.Signature) {
			// The member's record with introductions that the copy
			// held (first-hand, from a link, or before their witnesses
			// were held) lacked: keep those verified, to hand on in
			// syncs.
			if r, _ := keep(len(old.rec.entry.Witnesses)+1, true); r != nil {
				c.members.put(member{rec: r, state: old.state})
			}
		}
		return false
	}
	if e.State == StateAlive && (old.state != StateAlive || old.rec.entry.Peer.Addr != e.Peer.Addr) && c.addressTaken(e) {
		c.stats.AddressTaken++
		return false
	}
	if s := c.suspicions[e.Peer.ID]; s != nil && e.State == StateAlive && e.Incarnation > s.incarnation {
		c.clearSuspicion(e.Peer.ID) // refuted
	}
	r, _ := keep(0, true)
	c.members.put(member{rec: r, state: e.State})
	if e.State == StateAlive {
		if old.rec.entry.Peer.Addr != e.Peer.Addr {
			c.forgetHolder(e.Peer.ID, old.rec.entry.Peer.Addr)
		}
		c.hold(e.Peer.ID, e.Peer.Addr)
		c.vouchFor(e.Peer.ID, false)
	}
	switch {
	case old.state == StateAlive && e.State != StateAlive:
		c.diedAt[e.Peer.ID] = now
		c.outputs = append(c.outputs, MemberDown{Peer: e.Peer, Left: e.State == StateLeft, Name: e.Name, Tags: maps.Clone(e.Tags)})
		c.witnessChanged(e.Peer.ID)
	case old.state != StateAlive && e.State == StateAlive:
		delete(c.diedAt, e.Peer.ID)
		c.outputs = append(c.outputs, MemberUp{Peer: e.Peer, Name: e.Name, Tags: maps.Clone(e.Tags)})
		c.witnessChanged(e.Peer.ID)
	}
	return true
}

// stale reports whether e, about the member m that this node holds (at a
// nonzero incarnation), can change nothing by the rules of learnRecord,
// which it mirrors: an older incarnation; or the held one, with a suspect
// claim about a member not alive, or a state that does not beat the held
// one, unless it is the record with the introductions that the held copy
// lacks. It is checked before any signature: see budget.go.
func (c *Core) stale(m member, e Entry) bool {
	held := m.rec.entry
	switch {
	case e.Incarnation > held.Incarnation:
		return false
	case e.Incarnation < held.Incarnation:
		return true
	case e.State == StateSuspect:
		return m.state != StateAlive
	case e.State > m.state:
		return false
	}
	return c.cfg.Key == nil || len(held.Witnesses) >= Introductions || sameWitnesses(e.Witnesses, held.Witnesses) ||
		!bytes.Equal(e.Signature, held.Signature)
}

// announce broadcasts a membership event with a content-derived ID, so that
// several nodes announcing the same event send one broadcast between them.
func (c *Core) announce(e Entry) {
	c.announceAs(plumtree.MessageID{}, membershipEvent{Entry: e})
}

// isMembership reports a broadcast payload of TopicMembership: Plumtree's
// Config.Expendable, so that the deaths a mass failure announces never push
// the application's broadcasts out of the recovery window.
func isMembership(payload []byte) bool {
	return len(payload) > 0 && payload[0] == TopicMembership
}

// announceAs broadcasts a membership event under id, or under an ID derived
// from its content when id is zero.
func (c *Core) announceAs(id plumtree.MessageID, ev membershipEvent) {
	body, err := wire.MarshalValue(ev)
	if err != nil {
		return
	}
	payload := withTopic(TopicMembership, body)
	if id.IsZero() {
		sum := sha256.Sum256(payload)
		id = plumtree.MessageID(sum[:plumtree.MessageIDLen])
	}
	c.parts.Input(c.ptPart, plumtree.Broadcast{ID: id, Payload: payload})
}

// probeNext probes the next member of a randomly ordered round over all
// members, as SWIM does: every member is probed by someone about once per
// ProbeInterval, whether or not it is anybody's neighbour. A round visits
// the member table's slots in a random order (a random start and a random
// stride prime to the slot count, which visits every slot once), so that it
// holds no copy of the member list; a round that the table outgrew starts
// again.
func (c *Core) probeNext(now time.Time) {
	size := c.members.slots()
	if size == 0 {
		return
	}
	if c.probeRound.slots != size {
		c.probeRound = probeRound{slots: size}
	}
	for {
		if c.probeRound.left == 0 {
			if c.members.alive == 0 {
				return
			}
			c.probeRound.left = size
			c.probeRound.pos = c.rand.IntN(size)
			c.probeRound.stride = 1
			for stride := 1 + c.rand.IntN(size); size > 1; stride = 1 + c.rand.IntN(size-1) {
				if gcd(stride, size) == 1 {
					c.probeRound.stride = stride
					break
				}
			}
		}
		slot := c.probeRound.pos
		c.probeRound.pos = (c.probeRound.pos + c.probeRound.stride) % size
		c.probeRound.left--
		if m, ok := c.members.at(slot); ok && m.state == StateAlive && !c.isNeighbor(m.id()) {
			id := m.id()
			if c.probes[id] == nil { // one in flight (a lost link's) stays as it is
				c.startProbe(now, id)
				if p := c.probes[id]; p != nil {
					p.random = true
				}
			}
			return
		}
		if c.probeRound.left == 0 {
			return
		}
	}
}

// probeRound is where the random probe round stands.
type probeRound struct {
	slots       int // the table's slot count when the round started
	left        int // slots not visited yet
	pos, stride int // the next slot and the step, modulo slots
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func (c *Core) startProbe(now time.Time, id peer.ID) {
	if p := c.probes[id]; p != nil {
		// The callers but the random round (which skips members already
		// probed) report a lost link: a random probe already in flight
		// now has one pointing at its member, so it takes the usual
		// course (SUSPECT broadcast after its first miss), not the silent
		// retry of probeExpired, which pushed a silent host's death past
		// the 10 s bound (fault suite: 10.9 s).
		p.linkDown = true
		return
	}
	m, ok := c.members.get(id)
	if !ok || m.state != StateAlive {
		return
	}
	info := m.rec.entry.Peer
	p := &probe{nonce: c.rand.Uint64(), deadline: now.Add(c.cfg.ProbeTimeout), info: info, incarnation: m.incarnation()}
	c.probes[id] = p
	c.stats.ProbesSent++
	c.outputs = append(c.outputs, overlay.Send{To: info, Msg: c.probeMsg(now, p)})
}

func (c *Core) tick(now time.Time) {
	// Map order is random: act on expired probes in ID order so that runs
	// with the same seed are identical.
	var expired []peer.ID
	for id, p := range c.probes {
		if !now.Before(p.deadline) {
			expired = append(expired, id)
		}
	}
	slices.SortFunc(expired, peer.ID.Compare)
	for _, id := range expired {
		c.probeExpired(now, id)
	}
	c.expireSuspicions(now)
	if c.joined && c.cfg.ProbeInterval > 0 && !now.Before(c.nextProbe) {
		c.nextProbe = now.Add(c.cfg.ProbeInterval)
		c.probeNext(now)
		c.maybeBeacon(now)
	}
	if c.joined && !now.Before(c.nextSync) {
		c.syncBackoff = min(max(2*c.syncBackoff, minSyncInterval), c.cfg.SyncInterval)
		c.expireUnintroduced(now)
		c.nextSync = now.Add(c.syncBackoff)
		if n := c.Neighbors(); len(n) > 0 {
			c.sendSync(n[c.rand.IntN(len(n))])
		}
		// Try one member taken for dead: if it answers, the partition
		// that hid it has healed (see receive).
		var dead []peer.Info
		for id, diedAt := range c.diedAt {
			m, ok := c.members.get(id)
			if !ok || m.state == StateAlive {
				delete(c.diedAt, id)
				continue
			}
			if now.Sub(diedAt) > c.cfg.DeadRetention {
				c.forgetHolder(id, m.rec.entry.Peer.Addr)
				c.members.remove(id)
				delete(c.diedAt, id)
				continue
			}
			if m.state == StateDead {
				dead = append(dead, m.rec.entry.Peer)
			}
		}
		if len(dead) > 0 {
			slices.SortFunc(dead, func(a, b peer.Info) int { return a.ID.Compare(b.ID) })
			c.sendSync(dead[c.rand.IntN(len(dead))])
		}
	}
}

func (c *Core) isNeighbor(id peer.ID) bool {
	for _, p := range c.hv.ActiveView() {
		if p.ID == id {
			return true
		}
	}
	return false
}

// memberList returns this node's entries, itself first, then in the order
// of its member table (which its seed sets: no sort, which cost a third of a
// 1,000-node simulation's CPU when every sync sorted the whole list): all of
// them (differ nil), or those of the buckets differ marks.
func (c *Core) memberList(differ []bool) []Entry {
	inBucket := func(id peer.ID) bool { return differ == nil || differ[bucketOf(id, len(differ))] }
	size := c.members.len() + 1
	if differ != nil {
		size = size*count(differ)/len(differ) + 1
	}
	entries := make([]Entry, 0, min(size, c.cfg.MaxMembers))
	if inBucket(c.self.Peer.ID) {
		entries = append(entries, c.self)
	}
	c.members.each(func(m member) bool {
		if len(entries) >= c.cfg.MaxMembers {
			return false
		}
		if c.cfg.Key != nil && len(m.rec.entry.Signature) == 0 {
			return true // nothing the others would accept
		}
		if inBucket(m.id()) {
			entries = append(entries, m.entry())
		}
		return true
	})
	return entries
}

// count returns the number of true flags.
func count(flags []bool) int {
	n := 0
	for _, f := range flags {
		if f {
			n++
		}
	}
	return n
}

// listDigest returns the digest of this node's member list, by bucket, at
// the bucket count this node proposes (see table.go).
func (c *Core) listDigest() []byte {
	return c.members.digest(c.self, digestBuckets(c.members.len()+1))
}

// sendSync starts a member-list exchange with the digest of the list by
// bucket: in a steady state the lists agree and nothing more crosses the
// network; otherwise the two exchange the entries of the buckets that differ.
func (c *Core) sendSync(to peer.Info) {
	c.stats.Syncs++
	c.outputs = append(c.outputs, overlay.Send{To: to, Msg: &Sync{Digest: c.listDigest()}})
}

// sendFullSync sends the whole member list; reply marks the answer to a full
// list, which is not answered again.
func (c *Core) sendFullSync(to peer.Info, reply bool) {
	c.stats.FullSyncs++
	c.outputs = append(c.outputs, overlay.Send{To: to, Msg: &Sync{Full: true, Reply: reply, Entries: c.memberList(nil)}})
}

// sendBuckets sends the entries of the buckets differ marks: the answer to
// a digest (reply false, with this node's digest at the same bucket count, so
// that the initiator answers with its own entries of the buckets that still
// differ), or that answer (reply true).
func (c *Core) sendBuckets(to peer.Info, reply bool, differ []bool) {
	c.stats.FullSyncs++
	msg := &Sync{Full: true, Reply: reply, Entries: c.memberList(differ)}
	if !reply {
		msg.Digest = c.members.digest(c.self, len(differ))
	}
	c.outputs = append(c.outputs, overlay.Send{To: to, Msg: msg})
}
