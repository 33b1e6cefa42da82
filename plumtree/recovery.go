package plumtree

import (
	"time"

	"github.com/p2p-go/p2p/peer"
)

// Recovery of the messages a node missed while it had no link to their
// origin's part of the overlay (see the package doc, Recovery). Plumtree's
// lazy links repair a tree whose payload was lost on a link that stays up;
// a node that had no live link at all when a message went by hears no
// announcement of it, ever. So every new link starts with an exchange of
// summaries: each end lists the messages whose payloads it keeps, and the
// other end grafts those it has not seen.

// sendSummary sends n the IDs of the payloads kept, oldest first (the
// expendable ones after the others), in as many SUMMARY messages as needed.
// Nothing is sent when no payload is kept.
func (c *Core) sendSummary(now time.Time, n *neighbor) {
	var entries []SummaryEntry
	list := func(id MessageID, p cachedPayload) bool {
		entries = append(entries, SummaryEntry{ID: id, SentAt: p.msg.SentAt})
		if len(entries) == MaxIDsPerMessage {
			c.send(n.info, &Summary{Entries: entries})
			c.stats.SummariesSent++
			entries = nil
		}
		return true
	}
	c.payloads.each(now, list)
	if c.expendable != nil {
		c.expendable.each(now, list)
	}
	if len(entries) > 0 {
		c.send(n.info, &Summary{Entries: entries})
		c.stats.SummariesSent++
	}
}

// receiveSummary treats every message of a neighbour's summary that this node
// has not seen, and that was sent since this node started, as announced by
// that neighbour: unless the payload arrives within timer 1 (it may be on its
// way through the tree), the node grafts it.
// Messages sent before this node started are not recovered: a node that joins
// (or restarts) receives only what is broadcast after it started, so that a
// restarted node never delivers again what it delivered before its restart.
func (c *Core) receiveSummary(now time.Time, from peer.Info, msg *Summary) {
	n := c.neighbors[from.ID]
	if n == nil {
		c.stats.FromStrangers++
		return
	}
	c.stats.SummariesReceived++
	for _, e := range msg.Entries {
		if c.seen.contains(now, e.ID) {
			c.withdraw(n, e.ID)
			continue
		}
		if e.SentAt < c.startedAt || now.UnixMilli()-e.SentAt >= c.maxAge().Milliseconds() {
			continue
		}
		m := c.missing.get(e.ID)
		if m == nil {
			if c.missing.len() >= c.cfg.MaxMissing {
				c.stats.AnnouncementsDropped++
				continue
			}
			m = c.missing.add(e.ID, now.Add(c.cfg.IHaveTimeout))
		}
		m.summarized = true
		m.addAnnouncer(from.ID, MaxHops)
	}
}
