package gossip

import (
	"time"

	"github.com/p2p-go/p2p/hyparview"
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/plumtree"
	"github.com/p2p-go/p2p/wire"
)

// The composition of the sub-cores, with internal/compose (the composer the
// store's stack and the simulator use too): HyParView and Plumtree are parts
// that own their wire ranges, their inputs wait in the composer's FIFO work
// queue, and the outputs of each step are routed in order, to another part
// (a HyParView neighbour change is a Plumtree input), to the member list, or
// out of the composite. The member list's own messages (wire.RangeMembership)
// are this core's.

// addParts registers HyParView and Plumtree with the composer.
func (c *Core) addParts() {
	c.hvPart = c.parts.Add("hyparview", c.hv, func(out any) { c.routeHyParView(c.now, out) }, wire.RangeHyParView)
	c.ptPart = c.parts.Add("plumtree", c.pt, func(out any) { c.route(c.now, out) }, wire.RangePlumtree)
}

// routeReceived hands a received message to the part that owns its wire
// range, or to the member list; a message of a range no core of the
// composite owns is ignored. input is in as the runtime handed it: the part
// gets it as it came (boxing in again would allocate).
func (c *Core) routeReceived(now time.Time, input any, in overlay.Received) {
	if c.parts.Receive(input) {
		return
	}
	if r, ok := wire.RangeOf(in.Msg); ok && r == wire.RangeMembership {
		c.receive(now, in)
	}
}

// withTopic returns payload behind its topic byte, as a Plumtree payload
// carries it (see codec.go).
func withTopic(topic uint8, payload []byte) []byte {
	out := make([]byte, 1+len(payload))
	out[0] = topic
	copy(out[1:], payload)
	return out
}

// run steps the parts with the queued inputs and routes their outputs,
// which may queue more inputs.
func (c *Core) run(now time.Time) {
	c.now = now
	c.parts.Run(now)
}

// route carries out one output of a sub-core: Plumtree's, or HyParView's
// once routeHyParView has let it through (see vouch.go).
func (c *Core) route(now time.Time, out any) {
	switch out := out.(type) {
	case hyparview.NeighborUp:
		c.parts.Input(c.ptPart, plumtree.NeighborUp{Peer: out.Peer})
		c.outputs = append(c.outputs, NeighborUp{Peer: out.Peer})
		delete(c.probes, out.Peer.ID)
		if c.cfg.Key == nil {
			// Unsigned (simulations): a link proves a member alive.
			// Signed, a member is adopted only from its own record,
			// which the sync below brings.
			c.learn(now, Entry{Peer: out.Peer, State: StateAlive}, false, out.Peer)
		}
		if c.joined {
			// Push-pull member lists over every new link: joiners learn
			// the members at once, and lists merge quickly while many
			// nodes join together.
			c.sendSync(out.Peer)
		}
	case hyparview.NeighborDown:
		c.parts.Input(c.ptPart, plumtree.NeighborDown{Peer: out.Peer})
		c.outputs = append(c.outputs, NeighborDown{Peer: out.Peer})
		c.startProbe(now, out.Peer)
	case hyparview.Joined:
		if !c.joined {
			c.joined = true
			c.joinedAt = now
			c.syncBackoff = minSyncInterval
			c.nextSync = now.Add(c.syncBackoff)
			c.nextProbe = now.Add(c.cfg.ProbeInterval)
			c.outputs = append(c.outputs, Joined{})
		}
		c.announce(c.self)
		for _, n := range c.Neighbors() {
			c.sendSync(n)
		}
	case plumtree.Deliver:
		c.deliver(now, out)
	case plumtree.RelayToRoot:
		c.relayToRoot(out)
	default:
		c.outputs = append(c.outputs, out)
	}
}

// deliver handles a broadcast Plumtree delivered: a membership event for
// the member list, or a message for the application.
func (c *Core) deliver(now time.Time, d plumtree.Deliver) {
	if len(d.Payload) == 0 {
		c.stats.Dropped++
		return
	}
	if late := now.Sub(time.UnixMilli(d.SentAt)); late <= maxSampleLateness {
		// A broadcast delivered late (recovered after a cut, or repaired
		// slowly while many nodes joined) would make islands out of nodes
		// that joined after it was sent: only prompt ones are samples.
		c.recordSample(now, d.ID)
	}
	topic, body := d.Payload[0], d.Payload[1:]
	if topic == TopicMembership {
		ev := decodeMembership(body)
		if ev == nil {
			c.stats.Dropped++
			return
		}
		for _, id := range ev.missed {
			c.markMissed(now, id)
		}
		// Each broadcast is a message of its own for the cap on
		// failed signature checks (see budget.go), even when one
		// received message delivers several.
		outer := c.newMessage()
		c.learnRecord(now, ev.entry, ev.rec, false, d.Origin)
		c.endMessage(outer)
		return
	}
	c.outputs = append(c.outputs, Deliver{ID: d.ID, Topic: topic, Origin: d.Origin, Hops: d.Hops, Payload: body})
}
