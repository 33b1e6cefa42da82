package gossip

import (
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/plumtree"
)

// relayToRoot carries Plumtree's rendezvous relay (plumtree.RelayToRoot) to
// the tree's root at the address of its member record: Plumtree knows the
// root by ID only. With a key that record is signed by the root itself, so
// a neighbour that advertises a made-up root cannot make this node send to
// an address of its choice (vouched). A root without a live record, or not
// vouched for, is not sent to: the broadcast crosses the tree from its
// origin as it would without the relay.
func (c *Core) relayToRoot(r plumtree.RelayToRoot) {
	m, ok := c.members.get(r.Root)
	if !ok || m.state != StateAlive || m.rec.entry.Peer.Addr == "" || !c.vouched(m.rec.entry.Peer) {
		c.stats.RelaysUnresolved++
		return
	}
	c.outputs = append(c.outputs, overlay.Send{To: m.rec.entry.Peer, Msg: r.Msg})
}
