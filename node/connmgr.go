package node

import (
	"slices"
	"time"
)

// Connection manager: libp2p's connmgr is the model. When more than
// HighWater connections are open, the runtime closes the connections idle
// the longest until LowWater remain, sparing the protected ones: links the
// core asked to keep (HyParView's active view), and connections used within
// GracePeriod (a request waiting for its reply, a probe, a new
// connection). A closed connection is closed as an idle one is: the writer
// sends what is queued first, then closes its sending side only (when the
// transport can), so that what the peer sent meanwhile is still received;
// and the core learns of it through a LinkDown
// when it was the last to its peer.

// trimConns closes the least recently used unprotected connections when
// more than HighWater are open, down to LowWater.
func (r *Runtime) trimConns(now time.Time) {
	if r.openConns <= r.cfg.HighWater {
		return
	}
	var candidates []*connection
	for _, l := range r.links {
		if l.keep {
			continue
		}
		for _, c := range l.conns {
			if !c.draining && now.Sub(c.lastUsed) >= r.cfg.GracePeriod {
				candidates = append(candidates, c)
			}
		}
	}
	// Oldest idle first; ties (rare) broken by peer ID so that runs repeat.
	slices.SortFunc(candidates, func(a, b *connection) int {
		if d := a.lastUsed.Compare(b.lastUsed); d != 0 {
			return d
		}
		return a.remote.ID.Compare(b.remote.ID)
	})
	excess := r.openConns - r.cfg.LowWater
	for _, c := range candidates[:min(excess, len(candidates))] {
		r.drain(c)
		r.stats.trimmed.Add(1)
	}
	if len(candidates) < excess && now.Sub(r.lastTrimWarning) >= time.Minute {
		r.lastTrimWarning = now
		r.logger.Warn("more connections open than the high-water mark, all in use or kept",
			"open", r.openConns, "high_water", r.cfg.HighWater, "closed", len(candidates))
	}
}

// drain asks c's writer to send what is queued and close the connection.
// The caller is the loop.
func (r *Runtime) drain(c *connection) {
	if c.draining {
		return
	}
	c.draining = true
	c.drainAt = r.clock.Now()
	r.openConns--
	close(c.closing)
}
