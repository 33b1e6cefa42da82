package gossip

// Suspicion, after Lifeguard (Dadgar et al., 2018): a member's failure is
// announced by a node only when that node's own probes of it went
// unanswered. A claim from anyone else, that a member this node holds alive
// is suspect or dead, makes this node probe the member itself, with the
// claim in the probe so that the member refutes it at once (a higher
// incarnation, broadcast). Claims cross partitions: after a heal, each side's
// member lists carry the other side's deaths, among them deaths of members
// this node could reach all along; believed at once, they made every node
// announce its own neighbours failed for the few milliseconds until each
// refuted (issue 9).
//
// The detector itself probes twice before it concludes (a single probe can
// be late on a loaded machine); after the first unanswered probe it
// broadcasts a suspect claim, so that the other members' own checks run
// alongside its second probe rather than after it. A node checking a claim
// gives the member one ProbeTimeout (or two failed dials): the claim is
// already one node's evidence, and the check is this node's.

import (
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
)

// suspect starts checking another node's claim that m is suspect or dead at
// incarnation inc.
func (c *Core) suspect(now time.Time, m *member, inc uint64) {
	id := m.entry.Peer.ID
	p := c.probes[id]
	if p != nil && p.claim >= inc {
		return // already checking this claim
	}
	c.stats.Suspicions++
	if p == nil {
		c.startProbe(now, id)
		if p = c.probes[id]; p == nil {
			return
		}
	}
	p.suspicion = true
	p.claim = inc
	// The probe may already be on its way without the claim: send it
	// again with the claim, so that the member learns what to refute.
	c.outputs = append(c.outputs, overlay.Send{To: p.info, Msg: c.probeMsg(now, p)})
}

// probeExpired handles a probe whose deadline passed (or whose link went
// down) without an answer.
func (c *Core) probeExpired(now time.Time, id peer.ID) {
	p := c.probes[id]
	final := p.strikes+1 >= probeStrikes || (p.suspicion && !p.linkLost)
	if !final {
		// A single lost probe is not enough: on a loaded machine the
		// answer can be late. Probe again before concluding, and tell
		// the others, which check for themselves meanwhile.
		p.strikes++
		p.linkLost = false
		p.deadline = now.Add(c.cfg.ProbeTimeout)
		c.outputs = append(c.outputs, overlay.Send{To: p.info, Msg: c.probeMsg(now, p)})
		if m := c.members[id]; m != nil && m.entry.State == StateAlive && !p.suspicion {
			suspect := m.entry
			suspect.State = StateSuspect
			c.announce(suspect)
		}
		return
	}
	delete(c.probes, id)
	m := c.members[id]
	if m == nil || m.entry.State != StateAlive {
		return
	}
	c.stats.ProbesLost++
	dead := m.entry
	dead.State = StateDead
	dead.Incarnation = max(dead.Incarnation, p.claim)
	c.learn(now, dead, true, c.cfg.Self)
	c.announce(dead)
	// The broadcast may miss nodes while the overlay repairs around the
	// failure: sync member lists soon, so that they hear the claim and
	// check it themselves within a few seconds, not a SyncInterval.
	c.syncSoon(now)
}
