package gossip

// The member list: what each node knows of every other member, kept by ALIVE
// and DEAD broadcasts, probes and push-pull syncs (see doc.go).

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/plumtree"
	"github.com/p2p-go/p2p/wire"
)

func validEntry(e Entry) bool {
	return !e.Peer.ID.IsZero() && len(e.Peer.Addr) <= 256 && e.State >= StateAlive && e.State <= StateSuspect &&
		validMeta(e.Name, e.Tags) && len(e.PublicKey) <= 64 && len(e.Signature) <= 128
}

// learn merges news of one member, e, which from delivered. Records a
// member did not sign are refused. Higher incarnations win; at equal
// incarnation, dead or left beats alive. Incarnation 0 (a neighbour we just
// linked to, unsigned cores only) only adds an unknown member. A claim that
// a member this node holds alive is suspect or dead is first-hand only when
// this node's own probe went unanswered; anyone else's claim is checked with
// a probe of this node's own before it is believed (see suspicion.go).
func (c *Core) learn(now time.Time, e Entry, firstHand bool, from peer.Info) bool {
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
	if e.Incarnation != 0 && !c.verified(e) {
		c.stats.InvalidRecords++
		return false
	}
	m := c.members[e.Peer.ID]
	if m != nil && e.State != StateAlive && e.State != StateLeft && e.Incarnation > m.entry.Incarnation && m.entry.State == StateAlive {
		// A claim about a record newer than ours: the member signed
		// it alive at that incarnation, which we had not heard yet.
		m.entry = e
		m.entry.State = StateAlive
	}
	if e.State == StateSuspect {
		if m != nil && m.entry.State == StateAlive && e.Incarnation >= m.entry.Incarnation {
			c.suspect(now, m, e.Incarnation, false)
		}
		return false
	}
	if m != nil && !firstHand && e.State == StateDead && m.entry.State == StateAlive && e.Incarnation >= m.entry.Incarnation {
		c.suspect(now, m, e.Incarnation, true)
		return false
	}
	if m == nil {
		if e.State != StateAlive {
			if len(c.members) < c.cfg.MaxMembers {
				c.members[e.Peer.ID] = &member{entry: e, diedAt: now}
				return true
			}
			return false
		}
		if len(c.members) >= c.cfg.MaxMembers {
			return false
		}
		c.members[e.Peer.ID] = &member{entry: e}
		c.outputs = append(c.outputs, MemberUp{Peer: e.Peer, Name: e.Name, Tags: e.Tags})
		return true
	}
	old := m.entry
	newer := e.Incarnation > old.Incarnation ||
		(e.Incarnation == old.Incarnation && e.State > old.State)
	if e.Incarnation == 0 {
		// A live link proves the member alive, but carries no incarnation.
		if old.State == StateAlive {
			m.entry.Peer = e.Peer
		}
		return false
	}
	if !newer {
		return false
	}
	if s := c.suspicions[e.Peer.ID]; s != nil && e.State == StateAlive && e.Incarnation > s.incarnation {
		c.clearSuspicion(e.Peer.ID) // refuted
	}
	m.entry = e
	switch {
	case old.State == StateAlive && e.State != StateAlive:
		m.diedAt = now
		c.outputs = append(c.outputs, MemberDown{Peer: e.Peer, Left: e.State == StateLeft, Name: e.Name, Tags: e.Tags})
	case old.State != StateAlive && e.State == StateAlive:
		c.outputs = append(c.outputs, MemberUp{Peer: e.Peer, Name: e.Name, Tags: e.Tags})
	}
	return true
}

// announce broadcasts a membership event with a content-derived ID, so that
// several nodes announcing the same event send one broadcast between them.
func (c *Core) announce(e Entry) {
	c.announceAs(plumtree.MessageID{}, membershipEvent{Entry: e})
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
	c.push(targetPT, plumtree.Broadcast{ID: id, Payload: payload})
}

// probeNext probes the next member of a randomly ordered round over all
// members, as SWIM does: every member is probed by someone about once per
// ProbeInterval, whether or not it is anybody's neighbour.
func (c *Core) probeNext(now time.Time) {
	for {
		if len(c.probeOrder) == 0 {
			for id, m := range c.members {
				if m.entry.State == StateAlive {
					c.probeOrder = append(c.probeOrder, id)
				}
			}
			if len(c.probeOrder) == 0 {
				return
			}
			slices.SortFunc(c.probeOrder, peer.ID.Compare)
			c.rand.Shuffle(len(c.probeOrder), func(i, j int) {
				c.probeOrder[i], c.probeOrder[j] = c.probeOrder[j], c.probeOrder[i]
			})
		}
		id := c.probeOrder[len(c.probeOrder)-1]
		c.probeOrder = c.probeOrder[:len(c.probeOrder)-1]
		if m := c.members[id]; m != nil && m.entry.State == StateAlive && !c.isNeighbor(id) {
			c.startProbe(now, id)
			if p := c.probes[id]; p != nil {
				p.random = true
			}
			return
		}
		if len(c.probeOrder) == 0 {
			return
		}
	}
}

func (c *Core) startProbe(now time.Time, id peer.ID) {
	m := c.members[id]
	if m == nil || m.entry.State != StateAlive || c.probes[id] != nil {
		return
	}
	p := &probe{nonce: c.rand.Uint64(), deadline: now.Add(c.cfg.ProbeTimeout), info: m.entry.Peer, incarnation: m.entry.Incarnation}
	c.probes[id] = p
	c.stats.ProbesSent++
	c.outputs = append(c.outputs, overlay.Send{To: m.entry.Peer, Msg: c.probeMsg(now, p)})
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
		c.nextSync = now.Add(c.syncBackoff)
		if n := c.Neighbors(); len(n) > 0 {
			c.sendSync(n[c.rand.IntN(len(n))])
		}
		// Try one member taken for dead: if it answers, the partition
		// that hid it has healed (see receive).
		var dead []peer.Info
		for id, m := range c.members {
			if m.entry.State != StateAlive && now.Sub(m.diedAt) > c.cfg.DeadRetention {
				delete(c.members, id)
				continue
			}
			if m.entry.State == StateDead {
				dead = append(dead, m.entry.Peer)
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

// memberList returns this node's entries, itself first, then by ID.
func (c *Core) memberList() []Entry {
	entries := make([]Entry, 0, len(c.members)+1)
	entries = append(entries, c.self)
	for _, m := range c.members {
		if len(entries) >= c.cfg.MaxMembers {
			break
		}
		if c.cfg.Key != nil && len(m.entry.Signature) == 0 {
			continue // nothing the others would accept
		}
		entries = append(entries, m.entry)
	}
	slices.SortFunc(entries[1:], func(a, b Entry) int { return a.Peer.ID.Compare(b.Peer.ID) })
	return entries
}

// listDigest hashes the member list, as memberList returns it (this node
// first, then the others by ID), in ID order: a form independent of who holds
// it.
func listDigest(entries []Entry) []byte {
	h := sha256.New()
	var buf [peer.IDLen + 9]byte
	write := func(e Entry) {
		copy(buf[:], e.Peer.ID[:])
		binary.BigEndian.PutUint64(buf[peer.IDLen:], e.Incarnation)
		buf[peer.IDLen+8] = e.State
		h.Write(buf[:])
		h.Write([]byte(e.Peer.Addr))
	}
	if len(entries) > 0 {
		self, others := entries[0], entries[1:]
		i, _ := slices.BinarySearchFunc(others, self.Peer.ID, func(e Entry, id peer.ID) int { return e.Peer.ID.Compare(id) })
		for _, e := range others[:i] {
			write(e)
		}
		write(self)
		for _, e := range others[i:] {
			write(e)
		}
	}
	return h.Sum(nil)
}

// sendSync starts a member-list exchange with a digest of the list: in a
// steady state the lists agree and nothing more crosses the network.
func (c *Core) sendSync(to peer.Info) {
	c.stats.Syncs++
	c.outputs = append(c.outputs, overlay.Send{To: to, Msg: &Sync{Digest: listDigest(c.memberList())}})
}

// sendFullSync sends the whole member list; reply marks the answer to a full
// list, which is not answered again.
func (c *Core) sendFullSync(to peer.Info, reply bool) {
	c.stats.FullSyncs++
	c.outputs = append(c.outputs, overlay.Send{To: to, Msg: &Sync{Full: true, Reply: reply, Entries: c.memberList()}})
}
