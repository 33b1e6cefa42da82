package plumtree

import "time"

// Leave is the input telling the core that its node is about to leave the
// network, while its links are still up. A neighbour that was only told of a
// message by announcement (IHAVE) fetches it with a GRAFT, which a node that
// has left cannot answer: so the core sends the payloads of its own recent
// broadcasts to its lazy neighbours (eager ones already have them), and the
// announcements still gathered go out at once. A duplicate is dropped by its
// receiver, as always. Recent means sent within leaveWindow: older ones had
// time to be grafted.
type Leave struct{}

// leaveWindow returns how far back Leave pushes own broadcasts: twice the
// time an announcement can take to be gathered (at the longest interval the
// batching grows to), announced and grafted.
func (c *Core) leaveWindow() time.Duration {
	return 2 * (c.cfg.MaxLazyBatchInterval + c.cfg.IHaveTimeout + c.cfg.GraftTimeout)
}

// leave carries out Leave.
func (c *Core) leave(now time.Time) {
	since := now.Add(-c.leaveWindow()).UnixMilli()
	var own []*Gossip
	c.payloads.each(now, func(_ MessageID, p cachedPayload) bool {
		if p.from.IsZero() && p.msg.Origin.ID == c.cfg.Self.ID && p.msg.SentAt >= since {
			own = append(own, p.forward())
		}
		return true
	})
	if len(own) > 0 {
		for _, n := range c.order {
			if n.eager {
				continue
			}
			for _, g := range own {
				c.withdraw(n, g.ID)
				c.send(n.info, g)
				c.stats.PayloadsSent++
			}
		}
	}
	c.flushAll()
}
