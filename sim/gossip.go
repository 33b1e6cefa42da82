package sim

import (
	"github.com/p2p-go/p2p/gossip"
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/plumtree"
)

// BroadcastTopic is the gossip topic the scenarios broadcast under (the
// root package's application topic).
const BroadcastTopic uint8 = 1

// GossipProtocol runs the Broadcaster core (package gossip: HyParView plus
// Plumtree) in the broadcast scenarios.
type GossipProtocol struct {
	// Config is the template of every node's configuration; Self and Seed
	// are set per node.
	Config gossip.Config
}

var (
	_ Protocol       = GossipProtocol{}
	_ NeighborLister = GossipProtocol{}
)

// Name implements Protocol.
func (p GossipProtocol) Name() string {
	return "gossip (hyparview+plumtree, " + p.Config.Tree.String() + " tree)"
}

// NewCore implements Protocol.
func (p GossipProtocol) NewCore(id Identity) (overlay.Core, error) {
	cfg := p.Config
	cfg.Self = id.Info
	cfg.Seed = id.Seed
	return gossip.New(cfg)
}

// JoinInput implements Protocol.
func (GossipProtocol) JoinInput(contacts []string) any { return gossip.Join{Contacts: contacts} }

// BroadcastInput implements Protocol.
func (GossipProtocol) BroadcastInput(payload []byte) any {
	return gossip.Broadcast{Topic: BroadcastTopic, Payload: payload}
}

// Delivery implements Protocol: broadcast deliveries of BroadcastTopic.
func (GossipProtocol) Delivery(out any) (Delivery, bool) {
	d, ok := out.(gossip.Deliver)
	if !ok || d.Direct || d.Topic != BroadcastTopic {
		return Delivery{}, false
	}
	return Delivery{ID: MessageID(d.ID), Hops: d.Hops, Payload: d.Payload}, true
}

// PayloadMessage implements Protocol: Plumtree GOSSIP messages of
// BroadcastTopic (the core's membership broadcasts are not counted).
func (GossipProtocol) PayloadMessage(msg any) (MessageID, bool) {
	g, ok := msg.(*plumtree.Gossip)
	if !ok || len(g.Payload) == 0 || g.Payload[0] != BroadcastTopic {
		return MessageID{}, false
	}
	return MessageID(g.ID), true
}

// Neighbors implements NeighborLister: the HyParView active view.
func (GossipProtocol) Neighbors(core overlay.Core) []peer.ID {
	c, ok := core.(*gossip.Core)
	if !ok {
		return nil
	}
	view := c.Neighbors()
	ids := make([]peer.ID, len(view))
	for i, p := range view {
		ids[i] = p.ID
	}
	return ids
}
