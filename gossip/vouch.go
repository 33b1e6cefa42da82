package gossip

// Addresses vouched for: no node dials an address that no signed record
// vouches for (issue 10). HyParView learns peers' addresses from what other
// peers say (FORWARDJOIN's new node, SHUFFLE's origin and lists), and an
// insider could fill those with invented members at an address of its
// choice, making every node dial it. With a key, the core lets HyParView
// reach a peer only over a link that peer opened or answered (its ID proven
// by the handshake), or at the address of the peer's own signed record. A
// message to a peer whose record has not arrived yet (a newcomer's ALIVE
// broadcast can trail its FORWARDJOIN) is held for up to vouchWait; if no
// record vouches for the address by then, HyParView is told the peer is
// unreachable and the refusal is counted (Stats.UnvouchedDials).

import (
	"slices"
	"time"

	"github.com/p2p-go/p2p/hyparview"
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
)

const (
	// vouchWait is how long a HyParView message waits for a record that
	// vouches for its destination: a newcomer's record reaches the
	// network within a broadcast or a sync.
	vouchWait = 3 * time.Second
	// maxHeld bounds the messages waiting for a record.
	maxHeld = 256
	// maxLinked bounds the peers remembered as linked (past it, only
	// records vouch for new peers).
	maxLinked = 4096
)

// heldOutput is a HyParView output to a peer not vouched for yet.
type heldOutput struct {
	out   any
	to    peer.Info
	until time.Time
}

// destination returns the peer a HyParView output reaches, and whether it
// may cause a dial: a message or link to it, or a new neighbour (to which
// this core and Plumtree then send).
func destination(out any) (peer.Info, bool) {
	switch o := out.(type) {
	case overlay.Send:
		return o.To, !o.To.ID.IsZero()
	case overlay.Connect:
		return o.Peer, true
	case hyparview.NeighborUp:
		return o.Peer, true
	}
	return peer.Info{}, false
}

// vouched reports whether this node may reach p: a core without a key
// checks nothing; otherwise p has a live link to this node from that
// address, or its own verified record gives that address.
func (c *Core) vouched(p peer.Info) bool {
	if c.cfg.Key == nil {
		return true
	}
	if addr, ok := c.linked[p.ID]; ok && addr == p.Addr {
		return true
	}
	m, ok := c.members.get(p.ID)
	return ok && len(m.rec.entry.Signature) > 0 && m.rec.entry.Peer.Addr == p.Addr || c.recentlyRefused(p)
}

// routeHyParView routes one HyParView output, holding what would reach a
// peer no record vouches for.
func (c *Core) routeHyParView(now time.Time, out any) {
	if down, ok := out.(hyparview.NeighborDown); ok {
		c.dropHeldNeighborUp(down.Peer)
	}
	if to, dials := destination(out); dials && !c.vouched(to) {
		if len(c.held) >= maxHeld {
			c.refuseUnvouched(to)
			return
		}
		c.held = append(c.held, heldOutput{out: out, to: to, until: now.Add(vouchWait)})
		return
	}
	c.route(now, out)
}

// releaseHeld routes the held outputs now vouched for and refuses those
// that waited vouchWait in vain.
func (c *Core) releaseHeld(now time.Time) {
	if len(c.held) == 0 {
		return
	}
	kept := c.held[:0]
	var ready []any
	for _, h := range c.held {
		switch {
		case c.vouched(h.to):
			ready = append(ready, h.out)
		case !now.Before(h.until):
			c.refuseUnvouched(h.to)
		default:
			kept = append(kept, h)
		}
	}
	clear(c.held[len(kept):])
	c.held = kept
	for _, out := range ready {
		c.route(now, out)
	}
}

// refuseUnvouched counts a message not sent to to and tells HyParView that
// to is unreachable, so that it drops the entry.
func (c *Core) refuseUnvouched(to peer.Info) {
	c.stats.UnvouchedDials++
	c.parts.Input(c.hvPart, overlay.LinkDown{Peer: to.ID, Addr: to.Addr})
}

// nextHeld returns when the oldest held output expires.
func (c *Core) nextHeld() (time.Time, bool) {
	if len(c.held) == 0 {
		return time.Time{}, false
	}
	next := c.held[0].until
	for _, h := range c.held[1:] {
		if h.until.Before(next) {
			next = h.until
		}
	}
	return next, true
}

// dropHeldNeighborUp forgets a held NeighborUp of a peer that HyParView has
// dropped since: released after the NeighborDown, it would leave Plumtree
// (and the runtime) with a neighbour that HyParView no longer has, on this
// end only. With a rooted tree such a one-sided link can leave a node
// waiting for payloads from a parent that does not know it.
func (c *Core) dropHeldNeighborUp(id peer.ID) {
	c.held = slices.DeleteFunc(c.held, func(h heldOutput) bool {
		up, ok := h.out.(hyparview.NeighborUp)
		return ok && up.Peer.ID == id
	})
}
