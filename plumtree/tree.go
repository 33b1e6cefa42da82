package plumtree

import (
	"fmt"

	"github.com/p2p-go/p2p/peer"
)

// The rooted tree (Config.RootedTree): the eager links form one spanning
// tree of the neighbour graph, rooted at the node with the smallest ID and
// shaped by hop distance to it, as a spanning-tree protocol builds it.
//
// Every node advertises to its neighbours the root it knows and its distance
// to it, in a [Tree] message sent only when either changes. A node's parent is
// the neighbour that offers the smallest root, then the shortest distance
// (the current parent wins ties, then the smaller ID, so that two nodes never
// disagree on which of them is the parent); it tells its parent so, and its
// eager peers are its parent and the neighbours that chose it as theirs. A
// duplicate payload then never prunes a link, and GRAFTs repair single
// messages without reshaping the tree: payloads from overlapping broadcasts
// of different origins, which in the paper's mode each prune a different edge
// of the same cycle, can no longer cut the tree apart. A root that leaves is
// forgotten once the distances to it, which then grow around the loops the
// stale advertisements follow, reach MaxTreeDistance.

// MaxTreeDistance bounds the distance to the root that a node accepts; an
// advertisement at or beyond it is treated as no route to that root.
const MaxTreeDistance = 32

// Tree advertises the sender's root and its distance to it (0 for the root
// itself), and whether the sender has chosen the receiver as its parent.
type Tree struct {
	_        struct{} `cbor:",toarray"`
	Root     peer.ID
	Distance uint16
	Parent   bool
}

func (m *Tree) validate() error {
	if m.Root.IsZero() {
		return fmt.Errorf("%w: TREE with zero root", ErrInvalidMessage)
	}
	return nil
}

// treeState is this node's place in the rooted tree.
type treeState struct {
	root     peer.ID
	distance uint16
	parent   *neighbor
}

// Root returns the root of the rooted tree as this node knows it and its
// distance to it (itself and 0 when it knows no better, or in the paper's
// mode).
func (c *Core) Root() (peer.ID, int) {
	if !c.cfg.RootedTree || c.tree.root.IsZero() {
		return c.cfg.Self.ID, 0
	}
	return c.tree.root, int(c.tree.distance)
}

// better reports whether the route (root, distance) through neighbour via
// beats the route (bRoot, bDistance) through bVia (nil: this node as root).
func (c *Core) betterRoute(root peer.ID, distance uint16, via *neighbor, bRoot peer.ID, bDistance uint16, bVia *neighbor) bool {
	if d := root.Compare(bRoot); d != 0 {
		return d < 0
	}
	if distance != bDistance {
		return distance < bDistance
	}
	if via == c.tree.parent || bVia == c.tree.parent {
		return via == c.tree.parent
	}
	return via.info.ID.Compare(bVia.info.ID) < 0
}

// treeRecompute chooses the parent again after a neighbour's advertisement
// or departure, tells the neighbours what changed (and tell, if not nil,
// whatever changed) and sets the eager flags.
func (c *Core) treeRecompute(tell *neighbor) {
	root, distance, parent := c.cfg.Self.ID, uint16(0), (*neighbor)(nil)
	for _, n := range c.order {
		if n.treeRoot.IsZero() || n.child || n.treeDistance+1 >= MaxTreeDistance {
			continue
		}
		if c.betterRoute(n.treeRoot, n.treeDistance+1, n, root, distance, parent) {
			root, distance, parent = n.treeRoot, n.treeDistance+1, n
		}
	}
	old := c.tree
	c.tree = treeState{root: root, distance: distance, parent: parent}
	if old.parent != parent {
		c.stats.ParentChanges++
	}
	routeChanged := old.root != root || old.distance != distance
	for _, n := range c.order {
		switch {
		case n == tell, !n.noRoute() && (routeChanged || (n == parent) != (n == old.parent)):
			// A neighbour that said it does not know of the link
			// is told nothing more until it advertises a route.
			c.send(n.info, &Tree{Root: root, Distance: distance, Parent: n == parent})
			c.stats.TreesSent++
		}
		// A neighbour not heard from yet stays eager, as every new
		// link is in the paper: what goes by while the link comes up
		// reaches it either way.
		n.eager = n == parent || n.child || n.treeRoot.IsZero()
	}
}

// receiveTree records a neighbour's advertisement.
func (c *Core) receiveTree(from peer.Info, msg *Tree) {
	n := c.neighbors[from.ID]
	if n == nil {
		c.stats.FromStrangers++
		if msg.Distance < MaxTreeDistance {
			c.answerStranger(from)
		}
		return
	}
	c.stats.TreesReceived++
	if !c.cfg.RootedTree {
		return
	}
	// The first advertisement of a new neighbour is answered: ours, sent
	// when the link came up, may have reached it before it knew of the
	// link, and been ignored (or answered with "no route", see
	// answerStranger). So is the first after such a "no route".
	var tell *neighbor
	if msg.Distance < MaxTreeDistance && (n.treeRoot.IsZero() || n.noRoute()) {
		tell = n
	}
	n.treeRoot, n.treeDistance, n.child = msg.Root, min(msg.Distance, MaxTreeDistance), msg.Parent
	c.treeRecompute(tell)
}

// answerStranger tells a peer that sent tree traffic (a TREE, or a payload
// pushed as to a tree link) to this node, which does not count it as a
// neighbour, that it has no route through this node: an advertisement at
// MaxTreeDistance. The two ends of a link can disagree on the link: the
// overlay reports it to each end separately (over the real transport, one
// end may learn of it seconds after the other, or the other may already
// have dropped it). Without the answer the peer could keep this node as its
// parent, or as a child, and the subtree below it would receive every
// broadcast by GRAFT only, after timer 1. A stranger's own "no route" is
// never answered, so that two strangers cannot answer each other forever.
func (c *Core) answerStranger(from peer.Info) {
	if !c.cfg.RootedTree {
		return
	}
	root := c.tree.root
	if root.IsZero() {
		root = c.cfg.Self.ID
	}
	c.send(from, &Tree{Root: root, Distance: MaxTreeDistance})
	c.stats.TreesSent++
	c.stats.TreeRepairs++
}

// treeRepairPush handles a payload pushed by neighbour n (first copy or
// duplicate): a neighbour that is neither this node's parent nor its child
// pushes only if it takes this node for its child or its parent, a
// disagreement left by a link that went down and up again at one end only.
// It is told this node's real relation to it. Payloads that answer a GRAFT
// (recovered), and those sent by their origin itself (its first hop, which
// the rendezvous relay also uses), are not disagreements.
func (c *Core) treeRepairPush(n *neighbor, g *Gossip, recovered bool) {
	if !c.cfg.RootedTree || n == nil || recovered || n == c.tree.parent || n.child || n.treeRoot.IsZero() || n.noRoute() {
		return
	}
	if g.Origin.ID == n.info.ID && g.Round <= 1 {
		return
	}
	c.send(n.info, &Tree{Root: c.tree.root, Distance: c.tree.distance})
	c.stats.TreesSent++
	c.stats.TreeRepairs++
}

// treeRepairAnnounce handles an IHAVE from neighbour n announcing a message
// this node has not received: from its parent, the parent does not take it
// for its child (it would have pushed the payload), so it is told again.
func (c *Core) treeRepairAnnounce(n *neighbor) {
	if !c.cfg.RootedTree || n != c.tree.parent {
		return
	}
	c.send(n.info, &Tree{Root: c.tree.root, Distance: c.tree.distance, Parent: true})
	c.stats.TreesSent++
	c.stats.TreeRepairs++
}

// noRoute reports whether the neighbour's last advertisement said it has no
// route through it (see answerStranger).
func (n *neighbor) noRoute() bool {
	return !n.treeRoot.IsZero() && n.treeDistance >= MaxTreeDistance
}

// treeNeighborUp advertises this node's route to a new neighbour.
func (c *Core) treeNeighborUp(n *neighbor) {
	if c.tree.root.IsZero() {
		c.tree.root = c.cfg.Self.ID
	}
	c.send(n.info, &Tree{Root: c.tree.root, Distance: c.tree.distance})
	c.stats.TreesSent++
}
