package hyparview

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
)

// join handles the Join input.
func (c *Core) join(now time.Time, in Join) {
	c.contacts = c.contacts[:0]
	for _, addr := range in.Contacts {
		if addr == "" || addr == c.self.Addr || len(addr) > MaxAddrLen {
			continue
		}
		c.contacts = append(c.contacts, addr)
	}
	if len(c.contacts) == 0 {
		return
	}
	c.nextContact = c.rng.IntN(len(c.contacts))
	c.sendJoin(now)
}

// sendJoin sends JOIN to the next contact, to whoever listens at its address.
func (c *Core) sendJoin(now time.Time) {
	c.joinAttemptsLeft = len(c.contacts) - 1
	c.joinFailed = false
	c.sendJoinToNextContact(now)
}

func (c *Core) sendJoinToNextContact(now time.Time) {
	addr := c.contacts[c.nextContact%len(c.contacts)]
	c.nextContact = (c.nextContact + 1) % len(c.contacts)
	c.lastJoinAt = now
	c.log.Debug("sending JOIN", "contact", addr)
	c.send(peer.Info{Addr: addr}, &JoinMsg{})
}

// leave handles the Leave input.
func (c *Core) leave() {
	for _, info := range c.activeView.list() {
		c.send(info, &DisconnectMsg{Leave: true})
		c.removeActive(info.ID)
	}
	pending := slices.Collect(maps.Keys(c.pendingNeighbors))
	slices.SortFunc(pending, peer.ID.Compare) // map order is random; outputs must not be
	for _, id := range pending {
		c.emit(overlay.Disconnect{Peer: id})
	}
	clear(c.pendingNeighbors)
	clear(c.rejectedAt)
	c.passiveView = newView(c.cfg.PassiveViewSize)
	c.left = true
}

// receive validates the sender and dispatches a message.
func (c *Core) receive(now time.Time, in overlay.Received) {
	from := in.From
	if err := c.checkSender(from); err != nil {
		c.log.Debug("refused message", "peer", from.ID.Short(), "err", err)
		return
	}
	if c.activeView.has(from.ID) {
		c.lastHeard.set(from.ID, now)
		c.activeView.update(from)
	}
	var err error
	switch msg := in.Msg.(type) {
	case *JoinMsg:
		if msg != nil {
			c.onJoin(now, from)
		}
	case *ForwardJoinMsg:
		if msg != nil {
			err = c.onForwardJoin(now, from, msg)
		}
	case *DisconnectMsg:
		if msg != nil {
			c.onDisconnect(now, from, msg)
		}
	case *NeighborMsg:
		if msg != nil {
			c.onNeighbor(now, from, msg)
		}
	case *NeighborReplyMsg:
		if msg != nil {
			c.onNeighborReply(now, from, msg)
		}
	case *ShuffleMsg:
		if msg != nil {
			err = c.onShuffle(from, msg)
		}
	case *ShuffleReplyMsg:
		if msg != nil {
			err = c.onShuffleReply(from, msg)
		}
	case *KeepaliveMsg:
		if msg != nil {
			c.onKeepalive(from, msg)
		}
	}
	if err != nil {
		c.log.Debug("refused message", "peer", from.ID.Short(), "err", err)
	}
}

// checkSender validates the authenticated sender of a message.
func (c *Core) checkSender(from peer.Info) error {
	if err := checkInfo(from); err != nil {
		return err
	}
	if from.ID == c.self.ID {
		return fmt.Errorf("%w: message from this node itself", errMalformed)
	}
	return nil
}

// onJoin: the contact takes the joiner into its active view (evicting a
// random peer if needed), tells it so with a high-priority NEIGHBOR, and
// starts a FORWARDJOIN walk through each of its other active peers.
func (c *Core) onJoin(now time.Time, from peer.Info) {
	c.log.Debug("JOIN", "peer", from.ID.Short())
	if c.activeView.has(from.ID) {
		// A repeated JOIN (the joiner retries while our answer is on
		// its way): answer again, without another walk.
		c.send(from, &NeighborMsg{HighPriority: true})
		return
	}
	if !c.addActive(now, from, true) {
		return
	}
	c.send(from, &NeighborMsg{HighPriority: true})
	for _, info := range c.activeView.list() {
		if info.ID != from.ID {
			c.send(info, &ForwardJoinMsg{NewNode: from, TTL: uint8(c.cfg.ActiveRandomWalkLength)})
		}
	}
}

// onForwardJoin continues or ends a join walk.
func (c *Core) onForwardJoin(now time.Time, from peer.Info, msg *ForwardJoinMsg) error {
	if err := checkInfo(msg.NewNode); err != nil {
		return fmt.Errorf("FORWARDJOIN: %w", err)
	}
	if int(msg.TTL) > c.cfg.ActiveRandomWalkLength {
		return fmt.Errorf("FORWARDJOIN: %w: TTL %d exceeds ARWL %d", errMalformed, msg.TTL, c.cfg.ActiveRandomWalkLength)
	}
	if !c.activeView.has(from.ID) {
		return fmt.Errorf("FORWARDJOIN from %s, which is not an active peer", from.ID.Short())
	}
	newNode := msg.NewNode
	if newNode.ID == c.self.ID || newNode.ID == from.ID {
		return nil
	}
	if msg.TTL == 0 || c.activeView.len() == 1 {
		c.acceptWalker(now, newNode)
		return nil
	}
	if int(msg.TTL) == c.cfg.PassiveRandomWalkLength {
		c.addPassive(newNode, nil)
	}
	next, ok := c.activeView.random(c.rng, func(id peer.ID) bool { return id == from.ID || id == newNode.ID })
	if !ok {
		c.acceptWalker(now, newNode)
		return nil
	}
	c.send(next, &ForwardJoinMsg{NewNode: newNode, TTL: msg.TTL - 1})
	return nil
}

// acceptWalker takes the joiner at the end of a FORWARDJOIN walk into the
// active view and asks it, with high priority, to do the same.
//
// Ending a walk does not join this node: the walk may have started at a
// newcomer that joined through this node, or through a node that did,
// while this node's own JOIN went unanswered (lost). Taken for joined,
// such a node stopped sending JOIN to its contacts, and every later
// newcomer that picked it or one of its followers as contact grew a
// permanent island that knew nothing of the rest of the network (tens of
// nodes out of 1,000 in the simulator with 1 % message loss).
func (c *Core) acceptWalker(now time.Time, newNode peer.Info) {
	if c.activeView.has(newNode.ID) {
		return
	}
	if c.addActive(now, newNode, true) {
		if len(c.contacts) == 0 || c.joinFailed {
			// No network to join but the one growing through
			// this node: it started one, or its contacts cannot
			// be reached (not merely silent, which a lost JOIN
			// also is).
			c.markJoined()
		}
		c.send(newNode, &NeighborMsg{HighPriority: true})
	}
}

// onDisconnect drops the sender from the active view (keeping it as a
// passive peer unless it is leaving) and refills the view.
func (c *Core) onDisconnect(now time.Time, from peer.Info, msg *DisconnectMsg) {
	info, ok := c.removeActive(from.ID)
	if !ok {
		return
	}
	c.log.Debug("DISCONNECT", "peer", from.ID.Short(), "leave", msg.Leave)
	if !msg.Leave {
		c.addPassive(info, nil)
	} else {
		c.dropPassive(from.ID)
	}
	c.fillActive(now)
}

// onNeighbor answers a NEIGHBOR request.
func (c *Core) onNeighbor(now time.Time, from peer.Info, msg *NeighborMsg) {
	accept := c.activeView.has(from.ID) || c.addActive(now, from, msg.HighPriority)
	if accept {
		// The contact answering our JOIN, or a member that found us in
		// its passive view: either way a node of the network.
		c.markJoined()
	}
	c.send(from, &NeighborReplyMsg{Accept: accept})
	if !accept {
		c.releaseLink(from.ID)
	}
}

// onNeighborReply ends a NEIGHBOR request.
func (c *Core) onNeighborReply(now time.Time, from peer.Info, msg *NeighborReplyMsg) {
	_, wasPending := c.pendingNeighbors[from.ID]
	delete(c.pendingNeighbors, from.ID)
	// Only the answer to a request of ours joins the node: a newcomer also
	// answers the NEIGHBOR that accepted its JOIN.
	if c.activeView.has(from.ID) {
		if msg.Accept && wasPending {
			c.markJoined()
		}
		return
	}
	if !msg.Accept {
		if wasPending {
			if c.passiveView.has(from.ID) {
				c.rejectedAt[from.ID] = now
			}
			c.releaseLink(from.ID)
			c.fillActive(now)
		}
		return
	}
	if c.addActive(now, from, false) {
		if wasPending {
			c.markJoined()
		}
		return
	}
	// The peer took us in but our view filled meanwhile: undo its side.
	c.send(from, &DisconnectMsg{})
	c.addPassive(from, nil)
	c.releaseLink(from.ID)
}

// onKeepalive answers a ping from an active peer; a ping from anyone else
// means the link is one-sided, and a DISCONNECT closes the other side.
func (c *Core) onKeepalive(from peer.Info, msg *KeepaliveMsg) {
	if msg.Reply {
		return
	}
	if c.activeView.has(from.ID) {
		c.send(from, &KeepaliveMsg{Reply: true})
		return
	}
	if _, pending := c.pendingNeighbors[from.ID]; pending {
		return
	}
	c.send(from, &DisconnectMsg{})
	c.releaseLink(from.ID)
}

// linkDown handles a broken link or an undeliverable message.
func (c *Core) linkDown(now time.Time, in overlay.LinkDown) {
	if in.Peer.IsZero() {
		// A JOIN to a contact could not be delivered: try the next one,
		// once per contact until the next retry.
		if c.isContact(in.Addr) {
			c.joinFailed = true
		}
		if c.activeView.len() == 0 && len(c.pendingNeighbors) == 0 && c.joinAttemptsLeft > 0 && c.isContact(in.Addr) {
			c.joinAttemptsLeft--
			c.sendJoinToNextContact(now)
		}
		return
	}
	if in.Peer == c.self.ID {
		return
	}
	if _, ok := c.removeActive(in.Peer); ok {
		c.log.Debug("active peer unreachable", "peer", in.Peer.Short(), "err", in.Err)
	}
	delete(c.pendingNeighbors, in.Peer)
	c.dropPassive(in.Peer)
	c.fillActive(now)
}

func (c *Core) isContact(addr string) bool {
	for _, contact := range c.contacts {
		if contact == addr {
			return true
		}
	}
	return false
}
