package gossip

// One member per address (issue 10): a signed record proves that its
// member's key stated it, but an insider can make as many keys as it likes
// and sign a record for each, all at an address of its choice; every node
// would then adopt them and dial that address to probe them. An address is
// one listener, hence one live member: a core with a key adopts a live
// record only when no other live member it holds (nor itself) has that
// address, unless the record's member has a live link to this core from
// that address (its handshake proved its ID: a node that came back at its
// old address with a new identity). Refusals are counted
// (Stats.AddressTaken); the record is adopted when it arrives again once
// the address is free (the holder found dead, or gone elsewhere). So a
// list of invented members at one address costs each node at most one
// member to probe, however long the list.

import "github.com/p2p-go/p2p/peer"

// addressTaken reports whether a live record of e's member at e's address
// must be refused: another live member (or this node) holds the address,
// and e's member has no live link to this core from it.
func (c *Core) addressTaken(e Entry) bool {
	if c.cfg.Key == nil || e.Peer.Addr == "" {
		return false
	}
	if addr, ok := c.linked[e.Peer.ID]; ok && addr == e.Peer.Addr {
		return false
	}
	if e.Peer.Addr == c.cfg.Self.Addr {
		return true
	}
	holder, ok := c.holders[e.Peer.Addr]
	if !ok || holder == e.Peer.ID {
		return false
	}
	m, ok := c.members.get(holder)
	return ok && m.state == StateAlive && m.rec.entry.Peer.Addr == e.Peer.Addr
}

// hold records that id, adopted alive, holds addr.
func (c *Core) hold(id peer.ID, addr string) {
	if c.cfg.Key != nil && addr != "" {
		c.holders[addr] = id
	}
}

// forgetHolder forgets that id holds addr, when it does.
func (c *Core) forgetHolder(id peer.ID, addr string) {
	if holder, ok := c.holders[addr]; ok && holder == id {
		delete(c.holders, addr)
	}
}
