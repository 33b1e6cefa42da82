package gossip

// Suspicion, after Lifeguard (Dadgar et al., 2018) and SWIM's suspicion
// mechanism: a claim from another node, that a member this node holds alive
// is suspect or dead, is not believed at once. This node broadcasts a
// SUSPECT claim (its message ID derived from its content, so that every node
// holding the same claim sends one broadcast between them), which reaches
// the member: the member refutes it with a higher incarnation, which cancels
// the suspicion everywhere. If the member is one of this node's neighbours,
// it is also told directly over the link (Lifeguard's buddy system), so the
// refutation does not depend on the broadcast. Only when no refutation came
// within the suspicion timeout does this node announce the member failed.
// The timeout is two ProbeTimeouts from the first claim, or one from it once
// a node claims the member dead (that node's two probes went unanswered).
//
// Claims cross partitions: after a heal, each side's member lists carry the
// other side's deaths, among them deaths of members this side could reach
// all along. Believed at once, they made every node announce its own
// neighbours failed until each refuted (issue 9). Checked with a probe by
// every node instead, each claim drew a probe from every member at once,
// which on a loaded machine timed out, raising more claims: suspicion costs
// one broadcast and one refutation, whatever the network's size.
//
// The detector itself probes twice before it concludes (a single probe can
// be late on a loaded machine); after the first unanswered probe it
// broadcasts the SUSPECT claim, so that the others' timers run alongside its
// second probe rather than after it.

import (
	"slices"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
)

// suspicion is a claim about a member, waiting for its refutation.
type suspicion struct {
	incarnation uint64
	started     time.Time
	deadline    time.Time
}

// suspect records another node's claim that m is suspect (dead false) or
// dead at incarnation inc, which is at least m's.
func (c *Core) suspect(now time.Time, m member, inc uint64, dead bool) {
	id := m.id()
	s := c.suspicions[id]
	if s == nil || inc > s.incarnation {
		c.stats.Suspicions++
		s = &suspicion{incarnation: inc, started: now, deadline: now.Add(2 * c.cfg.ProbeTimeout)}
		c.suspicions[id] = s
		claim := m.entry()
		claim.State = StateSuspect
		claim.Incarnation = inc
		c.announce(claim)
		if c.isNeighbor(id) {
			// Tell it over the link, which needs no broadcast.
			c.outputs = append(c.outputs, overlay.Send{To: m.rec.entry.Peer, Msg: &Probe{Nonce: c.rand.Uint64(), Recent: c.recent(now), Claim: inc}})
		}
	}
	if dead {
		if d := s.started.Add(c.cfg.ProbeTimeout); d.Before(s.deadline) {
			s.deadline = d
		}
	}
}

// clearSuspicion forgets the suspicion about id: the member refuted it, or
// answered this node.
func (c *Core) clearSuspicion(id peer.ID) {
	if _, ok := c.suspicions[id]; ok {
		delete(c.suspicions, id)
		c.stats.SuspicionsCleared++
	}
}

// expireSuspicions announces failed the members whose suspicion timed out
// unrefuted.
func (c *Core) expireSuspicions(now time.Time) {
	var expired []peer.ID
	for id, s := range c.suspicions {
		if !now.Before(s.deadline) {
			expired = append(expired, id)
		}
	}
	slices.SortFunc(expired, peer.ID.Compare) // map order is random; outputs must not be
	for _, id := range expired {
		s := c.suspicions[id]
		delete(c.suspicions, id)
		m, ok := c.members.get(id)
		if !ok || m.state != StateAlive || m.incarnation() > s.incarnation {
			continue
		}
		c.declareDead(now, m)
	}
}

// nextSuspicion returns the earliest suspicion deadline.
func (c *Core) nextSuspicion() (time.Time, bool) {
	var next time.Time
	if len(c.suspicions) == 0 {
		return next, false
	}
	for _, s := range c.suspicions {
		if next.IsZero() || s.deadline.Before(next) {
			next = s.deadline
		}
	}
	return next, !next.IsZero()
}

// probeExpired handles a probe whose deadline passed (or whose link went
// down) without an answer.
//
// A random probe (of a member that no lost link points at) unanswered
// while its link stayed up is first sent again, with no SUSPECT broadcast
// and no strike: a lost probe or reply is far likelier than the silent
// crash of a member whose neighbours have noticed nothing, and each false
// claim cost two broadcasts to the whole network (the claim and the
// member's refutation). With 1 % message loss, 2 % of the random probes
// went unanswered once: at 1,000 nodes, 4 false claims a second, which
// doubled the traffic of 10 broadcasts a second. Unanswered again, the
// probe takes the usual course (SUSPECT broadcast, a last probe, then the
// death), one ProbeTimeout later than a probe whose link went down, or
// could not be dialled, which keeps the early broadcast.
func (c *Core) probeExpired(now time.Time, id peer.ID) {
	p := c.probes[id]
	if p.random && !p.linkDown && !p.retried {
		p.retried = true
		p.deadline = now.Add(c.cfg.ProbeTimeout)
		c.outputs = append(c.outputs, overlay.Send{To: p.info, Msg: c.probeMsg(now, p)})
		c.stats.SilentRetries++
		return
	}
	if p.strikes+1 < probeStrikes {
		// A single lost probe is not enough: on a loaded machine the
		// answer can be late. Probe again before concluding, and tell
		// the others, whose suspicion timers run meanwhile.
		p.strikes++
		p.deadline = now.Add(c.cfg.ProbeTimeout)
		c.outputs = append(c.outputs, overlay.Send{To: p.info, Msg: c.probeMsg(now, p)})
		if m, ok := c.members.get(id); ok && m.state == StateAlive {
			suspect := m.entry()
			suspect.State = StateSuspect
			c.announce(suspect)
		}
		return
	}
	delete(c.probes, id)
	m, ok := c.members.get(id)
	if !ok || m.state != StateAlive || m.incarnation() > p.incarnation {
		// Gone already, or it refuted a claim since the probe started
		// (its SUSPECT claim, say): it is alive, only slow to answer.
		return
	}
	c.stats.ProbesLost++
	c.declareDead(now, m)
}

// declareDead announces m failed, on this node's own evidence.
func (c *Core) declareDead(now time.Time, m member) {
	delete(c.suspicions, m.id())
	dead := m.entry()
	dead.State = StateDead
	c.learnRecord(now, dead, m.rec, true, c.cfg.Self)
	c.announce(dead)
	// The broadcast may miss nodes while the overlay repairs around the
	// failure: sync member lists soon, so that they hear the claim within
	// a few seconds, not a SyncInterval.
	c.syncSoon(now)
}
