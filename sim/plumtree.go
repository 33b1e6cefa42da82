package sim

import (
	"time"

	"github.com/p2p-go/p2p/hyparview"
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
// proportional to N.
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
	return &treeCore{hv: hv, pt: pt}, nil
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

// treeCore joins a HyParView core and a Plumtree core: messages go to the
// core that owns their wire range (treeRoutes), HyParView's neighbour changes become
// Plumtree's neighbour inputs, and every other output is passed on.
type treeCore struct {
	hv      *hyparview.Core
	pt      *plumtree.Core
	outputs []any
	scratch []any
}

// treeRoutes sends each received message to the core that owns its wire
// range.
var treeRoutes = new(wire.Router[func(*treeCore, time.Time, any)]).
	Add(wire.RangeHyParView, (*treeCore).stepHyParView).
	Add(wire.RangePlumtree, (*treeCore).stepPlumtree)

// Step implements overlay.Core.
func (c *treeCore) Step(now time.Time, input any) {
	switch in := input.(type) {
	case overlay.Received:
		c.hv.Heard(now, in.From.ID)
		if step, ok := treeRoutes.Route(in.Msg); ok {
			step(c, now, in)
		}
	case overlay.Tick:
		c.stepHyParView(now, in)
		c.stepPlumtree(now, in)
	case plumtree.Broadcast:
		c.stepPlumtree(now, in)
	case hyparview.Join:
		// Plumtree's first input marks when the node started (it recovers
		// the broadcasts sent from then on): start it with the join.
		c.stepPlumtree(now, overlay.Tick{})
		c.stepHyParView(now, in)
	default: // hyparview.Leave, overlay.LinkDown
		c.stepHyParView(now, in)
	}
}

// stepHyParView steps HyParView and routes its outputs.
func (c *treeCore) stepHyParView(now time.Time, input any) {
	c.hv.Step(now, input)
	outs := c.hv.Drain(c.scratch[:0])
	c.scratch = nil
	for _, out := range outs {
		switch o := out.(type) {
		case hyparview.NeighborUp:
			c.stepPlumtree(now, plumtree.NeighborUp{Peer: o.Peer})
		case hyparview.NeighborDown:
			c.stepPlumtree(now, plumtree.NeighborDown{Peer: o.Peer})
		default:
			c.outputs = append(c.outputs, out)
		}
	}
	clear(outs)
	c.scratch = outs[:0]
}

// stepPlumtree steps Plumtree and passes its outputs on.
func (c *treeCore) stepPlumtree(now time.Time, input any) {
	c.pt.Step(now, input)
	c.outputs = c.pt.Drain(c.outputs)
}

// Drain implements overlay.Core.
func (c *treeCore) Drain(dst []any) []any {
	dst = append(dst, c.outputs...)
	clear(c.outputs)
	c.outputs = c.outputs[:0]
	return dst
}

// NextDeadline implements overlay.Core: the earlier of the two cores'.
func (c *treeCore) NextDeadline() (time.Time, bool) {
	hvAt, hvOK := c.hv.NextDeadline()
	ptAt, ptOK := c.pt.NextDeadline()
	switch {
	case hvOK && ptOK:
		if ptAt.Before(hvAt) {
			return ptAt, true
		}
		return hvAt, true
	case hvOK:
		return hvAt, true
	default:
		return ptAt, ptOK
	}
}
