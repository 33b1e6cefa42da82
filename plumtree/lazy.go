package plumtree

import (
	"slices"
	"time"

	"github.com/p2p-go/p2p/peer"
)

// Lazy push: the announcements (IHAVE) batched per lazy neighbour, and the
// timers of the messages announced but not received, which GRAFT them.
// lazyPush queues the announcement for every lazy neighbour but except and
// the peers in skip (who announced the message to us, so have it).
func (c *Core) lazyPush(now time.Time, a Announcement, except peer.ID, skip []announcer) {
	queued := false
	for _, n := range c.order {
		if n.info.ID == except || (n.eager && !c.cfg.AnnounceToEager) {
			continue
		}
		if slices.ContainsFunc(skip, func(s announcer) bool { return s.peer == n.info.ID }) {
			continue
		}
		if n.pendingIndex == nil {
			n.pendingIndex = make(map[MessageID]int)
		}
		if _, dup := n.pendingIndex[a.ID]; dup {
			continue
		}
		n.pendingIndex[a.ID] = len(n.pending)
		n.pending = append(n.pending, a)
		queued = true
		if len(n.pending) >= MaxIDsPerMessage {
			c.flush(n)
		}
	}
	if !queued {
		return
	}
	c.batchMessages++
	if !c.flushPending {
		c.flushPending = true
		c.flushAt = now.Add(c.lazyInterval)
	}
}

// lazyReset brings the batching interval back to Config.LazyBatchInterval
// when something suggests that a payload went missing or that the tree
// changes: a GRAFT sent or received, an announcement of a message not
// received, a neighbour up or down. The announcements already gathered
// leave by the short interval too.
func (c *Core) lazyReset(now time.Time) {
	c.lazyTrouble = true
	c.lazyInterval = c.cfg.LazyBatchInterval
	if due := now.Add(c.lazyInterval); c.flushPending && c.flushAt.After(due) {
		c.flushAt = due
	}
}

// lazyAdapt sets the interval of the next batch once one was flushed: it
// doubles, up to Config.MaxLazyBatchInterval, when the batch announced more
// than one message and nothing went wrong meanwhile (a steady flow over a
// stable tree, where announcements recover nothing); it stays otherwise.
func (c *Core) lazyAdapt() {
	if !c.lazyTrouble && c.batchMessages > 1 {
		c.lazyInterval = min(2*c.lazyInterval, c.cfg.MaxLazyBatchInterval)
	}
	c.lazyTrouble = false
	c.batchMessages = 0
}

// withdraw removes a gathered announcement of id for n, which told us it has
// the message.
func (c *Core) withdraw(n *neighbor, id MessageID) {
	if i, ok := n.pendingIndex[id]; ok {
		n.pending[i].ID = MessageID{}
		delete(n.pendingIndex, id)
	}
}

// flush sends the announcements gathered for n in one IHAVE.
func (c *Core) flush(n *neighbor) {
	live := n.pending[:0]
	for _, a := range n.pending {
		if !a.ID.IsZero() {
			live = append(live, a)
		}
	}
	if len(live) > 0 {
		c.send(n.info, &IHave{Announcements: slices.Clone(live)})
		c.stats.IHavesSent++
		c.stats.AnnouncementsSent += uint64(len(live))
	}
	clear(n.pending)
	n.pending = n.pending[:0]
	clear(n.pendingIndex)
}

func (c *Core) flushAll() {
	for _, n := range c.order {
		c.flush(n)
	}
	c.flushPending = false
}

func (c *Core) tick(now time.Time) {
	if c.flushPending && !now.Before(c.flushAt) {
		c.flushAll()
		c.lazyAdapt()
	}
	var graftPeers []*neighbor
	var grafts map[*neighbor][]MessageID
	for m := c.missing.due(now); m != nil; m = c.missing.due(now) {
		target := c.nextGraftTarget(m)
		if target == nil {
			c.missing.remove(m.id)
			c.stats.MissingAbandoned++
			continue
		}
		m.grafts++
		c.setEager(target, true)
		if grafts == nil {
			grafts = make(map[*neighbor][]MessageID)
		}
		if _, ok := grafts[target]; !ok {
			graftPeers = append(graftPeers, target)
		}
		grafts[target] = append(grafts[target], m.id)
		c.missing.reschedule(m, now.Add(c.cfg.GraftTimeout))
	}
	if len(graftPeers) > 0 {
		c.lazyReset(now)
	}
	for _, n := range graftPeers {
		for ids := range slices.Chunk(grafts[n], MaxIDsPerMessage) {
			c.send(n.info, &Graft{IDs: ids})
			c.stats.GraftsSent++
		}
	}
}

// nextGraftTarget returns the neighbour to graft for m, or nil when m has
// no announcer left or has had MaxGraftAttempts GRAFTs.
func (c *Core) nextGraftTarget(m *missingMessage) *neighbor {
	if m.grafts >= MaxGraftAttempts {
		return nil
	}
	for {
		a, ok := m.nextAnnouncer()
		if !ok {
			return nil
		}
		if n, ok := c.neighbors[a.peer]; ok {
			return n
		}
		m.removeAnnouncer(a.peer)
	}
}
