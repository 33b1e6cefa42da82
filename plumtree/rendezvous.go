package plumtree

import "github.com/p2p-go/p2p/peer"

// The rendezvous relay (Config.RelayToRoot), after PIM-SM's shared trees: a
// broadcast crosses the one shared tree from its origin, so its last node can
// be as far as the tree's diameter, about twice the root's eccentricity (a
// tree whose nodes have at most five links has a diameter of 9 or more at
// 1,000 nodes). The origin therefore also sends the payload straight to the
// root, over a direct connection, and the root pushes it down the tree as a
// payload from any other peer: every node then has it after at most one hop
// more than its depth. The two copies meet on the path from the origin to
// the root, where a few nodes receive it twice.
//
// The relay is an optimisation only: the origin still pushes to its tree
// links and announces to its lazy ones, so a root that is unknown, out of
// reach or failed, or that lies about being the root and drops what it is
// sent, costs nothing but the relay's payload; the broadcast crosses the tree
// from the origin as without the relay, and lazy links repair what a
// misbehaving node withholds.

// RelayToRoot is the output asking the host to send Msg to the node Root (the
// tree's root) over a direct connection: the core knows the root by ID only
// (TREE messages carry no address). The Broadcaster takes the address from
// the root's signed member record, and drops the relay when it has none; a
// host may always drop it.
type RelayToRoot struct {
	Root peer.ID
	Msg  *Gossip
}

// relayToRoot sends this node's broadcast g to the tree's root, unless this
// node is the root, knows none, or the root is one of its tree links
// already (then the eager push reaches it).
func (c *Core) relayToRoot(g *Gossip) {
	if !c.cfg.RootedTree || !c.cfg.RelayToRoot {
		return
	}
	root := c.tree.root
	if root.IsZero() || root == c.cfg.Self.ID {
		c.stats.RelaysSkipped++
		return
	}
	if n := c.neighbors[root]; n != nil {
		if n.eager {
			c.stats.RelaysSkipped++
			return
		}
		// A lazy neighbour: the link is there.
		c.send(n.info, g)
	} else {
		c.outputs = append(c.outputs, RelayToRoot{Root: root, Msg: g})
	}
	c.stats.RelaysSent++
	c.stats.PayloadsSent++
}
