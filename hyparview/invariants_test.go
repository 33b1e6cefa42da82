package hyparview

import "fmt"

// checkInvariants verifies the core's local invariants: bounded views,
// disjoint views without this node, bookkeeping maps in step with the views.
func (c *Core) checkInvariants() error {
	if c.activeView.len() > c.cfg.ActiveViewSize {
		return fmt.Errorf("active view has %d peers, limit %d", c.activeView.len(), c.cfg.ActiveViewSize)
	}
	if c.passiveView.len() > c.cfg.PassiveViewSize {
		return fmt.Errorf("passive view has %d peers, limit %d", c.passiveView.len(), c.cfg.PassiveViewSize)
	}
	for _, v := range []*view{&c.activeView, &c.passiveView} {
		if len(v.index) != len(v.peers) {
			return fmt.Errorf("view index has %d entries for %d peers", len(v.index), len(v.peers))
		}
		for i, info := range v.peers {
			if v.index[info.ID] != i {
				return fmt.Errorf("view index of %s is %d, want %d", info, v.index[info.ID], i)
			}
			if info.ID == c.self.ID {
				return fmt.Errorf("a view contains this node")
			}
			if info.ID.IsZero() {
				return fmt.Errorf("a view contains the zero ID")
			}
		}
	}
	for _, info := range c.activeView.peers {
		if c.passiveView.has(info.ID) {
			return fmt.Errorf("%s is both active and passive", info)
		}
		if c.lastHeard.find(info.ID) < 0 {
			return fmt.Errorf("active %s has no last-heard time", info)
		}
	}
	if len(c.lastHeard.entries) != c.activeView.len() {
		return fmt.Errorf("%d last-heard entries for %d active peers", len(c.lastHeard.entries), c.activeView.len())
	}
	if len(c.pendingNeighbors) > c.cfg.ActiveViewSize {
		return fmt.Errorf("%d pending NEIGHBOR requests", len(c.pendingNeighbors))
	}
	for id := range c.rejectedAt {
		if !c.passiveView.has(id) {
			return fmt.Errorf("rejected %s is not passive", id.Short())
		}
	}
	return nil
}
