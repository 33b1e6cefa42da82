package plumtree

import (
	"time"

	"github.com/p2p-go/p2p/peer"
)

// Limits on what a peer states in a GOSSIP: its send time and its hop
// count (see the package doc, Send times and hop counts).

// checkSendTime refuses (and counts) a GOSSIP sent too long ago for the seen
// cache to tell whether it was delivered already, or too far in the future;
// a message it refuses is no longer tracked as missing.
func (c *Core) checkSendTime(now time.Time, from peer.Info, g *Gossip) bool {
	age := now.UnixMilli() - g.SentAt
	switch {
	case age >= c.maxAge().Milliseconds():
		c.stats.RefusedStale++
	case -age > c.cfg.MaxClockSkew.Milliseconds():
		c.stats.RefusedFuture++
	default:
		return true
	}
	c.missing.remove(g.ID)
	c.log.Debug("plumtree: GOSSIP refused by its send time", "peer", from.ID.Short(), "msg_id", g.ID,
		"origin", g.Origin.ID.Short(), "age", time.Duration(age)*time.Millisecond)
	return false
}

// maxAge is the age from which a GOSSIP is refused: the seen cache
// remembers an ID for SeenTTL after its arrival, which may be MaxClockSkew
// before its send time by this node's clock, so a copy accepted once is
// still remembered whenever a replay's age is below maxAge.
func (c *Core) maxAge() time.Duration { return c.cfg.SeenTTL - c.cfg.MaxClockSkew }

// clampHops returns round, or MaxHops (counted) when round is larger.
func (c *Core) clampHops(round uint16) uint16 {
	if round > MaxHops {
		c.stats.HopsClamped++
		return MaxHops
	}
	return round
}
