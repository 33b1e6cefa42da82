package sim

import (
	"time"

	"github.com/p2p-go/p2p/hyparview"
	"github.com/p2p-go/p2p/internal/compose"
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/plumtree"
	"github.com/p2p-go/p2p/wire"
)

// PlumtreeProtocol runs Plumtree over HyParView exactly as the Plumtree
// paper evaluates it: the two cores joined by neighbour events and nothing
// else (no member list, no membership broadcasts, no probes). It is the
// baseline for comparing with the paper's figures, and it scales further
// than GossipProtocol, whose member list costs every node memory and traffic
// proportional to N. With Plumtree.RelayToRoot, the relays to the tree's
// root go by ID, which the simulated network resolves where the Broadcaster
// reads the address from its member list.
type PlumtreeProtocol struct {
	HyParView hyparview.Config
	Plumtree  plumtree.Config
}

var (
	_ Protocol       = PlumtreeProtocol{}
	_ NeighborLister = PlumtreeProtocol{}
)

// Name implements Protocol.
func (p PlumtreeProtocol) Name() string {
	if p.Plumtree.RootedTree && p.Plumtree.RelayToRoot {
		return "plumtree over hyparview (rooted tree, relay to the root)"
	}
	if p.Plumtree.RootedTree {
		return "plumtree over hyparview (rooted tree)"
	}
	return "plumtree over hyparview (paper setup)"
}

// NewCore implements Protocol.
func (p PlumtreeProtocol) NewCore(id Identity) (overlay.Core, error) {
	hvCfg, ptCfg := p.HyParView, p.Plumtree
	hvCfg.Self, ptCfg.Self = id.Info, id.Info
	hvCfg.Seed, ptCfg.Seed = id.Seed, id.Seed^0x5bd1e995
	hv, err := hyparview.New(hvCfg)
	if err != nil {
		return nil, err
	}
	pt, err := plumtree.New(ptCfg)
	if err != nil {
		return nil, err
	}
	return newTreeCore(hv, pt), nil
}

// JoinInput implements Protocol.
func (PlumtreeProtocol) JoinInput(contacts []string) any { return hyparview.Join{Contacts: contacts} }

// BroadcastInput implements Protocol.
func (PlumtreeProtocol) BroadcastInput(payload []byte) any {
	return plumtree.Broadcast{Payload: payload}
}

// Delivery implements Protocol.
func (PlumtreeProtocol) Delivery(out any) (Delivery, bool) {
	d, ok := out.(plumtree.Deliver)
	return Delivery{ID: MessageID(d.ID), Hops: d.Hops, Payload: d.Payload}, ok
}

// PayloadMessage implements Protocol.
func (PlumtreeProtocol) PayloadMessage(msg any) (MessageID, bool) {
	g, ok := msg.(*plumtree.Gossip)
	if !ok {
		return MessageID{}, false
	}
	return MessageID(g.ID), true
}

// Neighbors implements NeighborLister.
func (PlumtreeProtocol) Neighbors(core overlay.Core) []peer.ID {
	c, ok := core.(*treeCore)
	if !ok {
		return nil
	}
	view := c.hv.ActiveView()
	ids := make([]peer.ID, len(view))
	for i, p := range view {
		ids[i] = p.ID
	}
	return ids
}

// treeCore joins a HyParView core and a Plumtree core as parts of one
// compose.Composer: messages go to the core that owns their wire range,
// HyParView's neighbour changes become Plumtree's neighbour inputs, and
// every other output is passed on.
type treeCore struct {
	hv     *hyparview.Core
	pt     *plumtree.Core
	c      compose.Composer
	hvPart compose.Part
	ptPart compose.Part
}

// newTreeCore returns the composition of hv and pt.
func newTreeCore(hv *hyparview.Core, pt *plumtree.Core) *treeCore {
	c := &treeCore{hv: hv, pt: pt}
	c.hvPart = c.c.Add("hyparview", hv, c.routeHyParView, wire.RangeHyParView)
	c.ptPart = c.c.Add("plumtree", pt, c.routePlumtree, wire.RangePlumtree)
	return c
}

var _ overlay.Core = (*treeCore)(nil)

// Step implements overlay.Core.
func (c *treeCore) Step(now time.Time, input any) {
	switch in := input.(type) {
	case overlay.Received:
		c.hv.Heard(now, in.From.ID)
		c.c.Receive(input)
	case overlay.Tick:
		c.c.Input(c.hvPart, in)
		c.c.Input(c.ptPart, in)
	case plumtree.Broadcast:
		c.c.Input(c.ptPart, in)
	case hyparview.Join:
		// Plumtree's first input marks when the node started (it recovers
		// the broadcasts sent from then on): start it with the join.
		c.c.Input(c.ptPart, overlay.Tick{})
		c.c.Input(c.hvPart, in)
	default: // hyparview.Leave, overlay.LinkDown
		c.c.Input(c.hvPart, in)
	}
	c.c.Run(now)
}

// routeHyParView turns HyParView's neighbour changes into Plumtree's inputs
// and passes every other output on.
func (c *treeCore) routeHyParView(out any) {
	switch o := out.(type) {
	case hyparview.NeighborUp:
		c.c.Input(c.ptPart, plumtree.NeighborUp{Peer: o.Peer})
	case hyparview.NeighborDown:
		c.c.Input(c.ptPart, plumtree.NeighborDown{Peer: o.Peer})
	default:
		c.c.Emit(out)
	}
}

// routePlumtree sends Plumtree's relays to the tree's root by ID, which the
// simulated network resolves as a member list would give the address (this
// setup has none), and passes every other output on.
func (c *treeCore) routePlumtree(out any) {
	if r, ok := out.(plumtree.RelayToRoot); ok {
		c.c.Emit(overlay.Send{To: peer.Info{ID: r.Root}, Msg: r.Msg})
		return
	}
	c.c.Emit(out)
}

// Drain implements overlay.Core.
func (c *treeCore) Drain(dst []any) []any { return c.c.Drain(dst) }

// NextDeadline implements overlay.Core: the earlier of the two cores'.
func (c *treeCore) NextDeadline() (time.Time, bool) { return c.c.NextDeadline() }
