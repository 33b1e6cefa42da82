package stack

import (
	"fmt"
	"time"

	"github.com/p2p-go/p2p/gossip"
	"github.com/p2p-go/p2p/internal/compose"
	"github.com/p2p-go/p2p/kv"
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/wire"
)

// StoreTopic is the gossip topic that carries the store's broadcasts (the
// root package's topic for the configuration store).
const StoreTopic uint8 = 2

// Node joins a gossip core and a kv store the way a node of the framework
// does: the store's broadcasts go out through the Broadcaster under
// StoreTopic, the Broadcaster's deliveries of that topic and its neighbour
// changes come back to the store, and direct messages go to the core their
// wire range belongs to (wire.RangeKV: the store; every other range: the
// Broadcaster's core, which routes the HyParView, Plumtree and membership
// ranges in turn). The store's kv.Persist outputs come out merged into one
// per drain, placed before every output that depends on them (see
// kv.Persist). The two cores are parts of one compose.Composer.
//
// The store's outputs that follow a Persist in a drain (kv.Result,
// kv.Changed, kv.Broadcast and kv.DenyList) are held back until the runtime
// steps kv.Persisted with that Persist's Seq after writing it: on success
// they come out (and the broadcast goes to the Broadcaster) in that step; on
// failure the store rolls the change back (see kv.Store.Advance), the
// Results of the writes carry the error, and the Changed, Broadcast and
// DenyList outputs are dropped (the store emits the deny list again if the
// rollback changed it): a failed write changes nothing, here or on other
// nodes. A runtime must therefore step kv.Persisted after every Persist it
// drains.
type Node struct {
	// Gossip is the Broadcaster overlay's core.
	Gossip *gossip.Core
	// Store is the replicated store's core.
	Store *kv.Store

	c         compose.Composer
	gossip    compose.Part
	store     compose.Part
	persistAt int // index in the undrained outputs of the kv.Persist, or -1
	// pending holds the store outputs after the undrained Persist; held
	// those of drained Persists, until their kv.Persisted.
	pending []any
	held    []heldOutput
}

// heldOutput is a store output waiting for the write of the Persist with
// Seq seq.
type heldOutput struct {
	seq uint64
	out any
}

// New returns the composition of g and s.
func New(g *gossip.Core, s *kv.Store) *Node {
	n := &Node{Gossip: g, Store: s, persistAt: -1}
	n.gossip = n.c.Add("gossip", g, n.routeGossip)
	n.store = n.c.Add("kv", s, n.routeStore, wire.RangeKV)
	return n
}

var _ overlay.Core = (*Node)(nil)

// Step implements overlay.Core.
func (n *Node) Step(now time.Time, input any) {
	switch in := input.(type) {
	case overlay.Received:
		if !n.c.Receive(input) {
			n.c.Input(n.gossip, input)
		}
	case overlay.Tick:
		n.c.Input(n.gossip, in)
		n.c.Input(n.store, in)
	case kv.Put, kv.Delete, kv.Revoke, kv.NeighborUp, kv.NeighborDown, kv.FromBroadcast:
		n.c.Input(n.store, in)
	case kv.Persisted:
		n.persisted(in)
	default: // gossip.Join, overlay.LinkDown
		n.c.Input(n.gossip, in)
	}
	n.c.Run(now)
}

// persisted releases (on success) or drops (on failure) the outputs held
// for a Persist, and reports its outcome to the store, whose own outputs on
// the news (the deny list restored by a rollback) come after.
func (n *Node) persisted(in kv.Persisted) {
	kept := n.held[:0]
	for _, h := range n.held {
		if h.seq > in.Seq {
			kept = append(kept, h)
			continue
		}
		switch o := h.out.(type) {
		case kv.Broadcast:
			if in.Err == nil {
				n.c.Input(n.gossip, gossip.Broadcast{Topic: StoreTopic, Payload: o.Payload})
			}
		case kv.Changed, kv.DenyList:
			if in.Err == nil {
				n.c.Emit(o)
			}
		case kv.Result:
			if in.Err != nil && o.Err == nil {
				o.Err = fmt.Errorf("kv: write of %q not stored: %w", o.Record.Key, in.Err)
				o.Record = kv.Record{}
			}
			n.c.Emit(o)
		default:
			n.c.Emit(o)
		}
	}
	clear(n.held[len(kept):])
	n.held = kept
	n.c.Input(n.store, in)
}

// routeStore routes one output of the store: its broadcasts go to the
// Broadcaster's core, its kv.Persist outputs are merged into one, and the
// outputs that depend on a Persist wait for its write.
func (n *Node) routeStore(out any) {
	switch o := out.(type) {
	case kv.Persist:
		n.route(o)
	case kv.Result, kv.Changed, kv.Broadcast, kv.DenyList:
		if n.persistAt >= 0 {
			// Held until the Persist before it is written.
			n.pending = append(n.pending, out)
			return
		}
		if b, ok := out.(kv.Broadcast); ok {
			n.c.Input(n.gossip, gossip.Broadcast{Topic: StoreTopic, Payload: b.Payload})
			return
		}
		n.c.Emit(out)
	default:
		n.c.Emit(out)
	}
}

// routeGossip routes one output of the Broadcaster's core: the store's
// topic and the neighbour changes go to the store (the changes also out).
func (n *Node) routeGossip(out any) {
	switch o := out.(type) {
	case gossip.Deliver:
		if o.Topic == StoreTopic && !o.Direct {
			n.c.Input(n.store, kv.FromBroadcast{From: o.Origin, Payload: o.Payload})
			return
		}
		n.c.Emit(out)
	case gossip.NeighborUp:
		n.c.Input(n.store, kv.NeighborUp{Peer: o.Peer})
		n.c.Emit(out)
	case gossip.NeighborDown:
		n.c.Input(n.store, kv.NeighborDown{Peer: o.Peer})
		n.c.Emit(out)
	default:
		n.c.Emit(out)
	}
}

// route emits one output, merging a kv.Persist into the drain's first:
// everything that depended on a later one (a write's Result, the sends of
// its broadcast) comes after it too, and the runtime writes the whole
// step's changes with one fsync.
func (n *Node) route(out any) {
	p, ok := out.(kv.Persist)
	if !ok {
		n.c.Emit(out)
		return
	}
	if n.persistAt >= 0 {
		n.c.Replace(n.persistAt, n.c.Output(n.persistAt).(kv.Persist).Merge(p))
		return
	}
	n.persistAt = n.c.Emit(p)
}

// Drain implements overlay.Core.
func (n *Node) Drain(dst []any) []any {
	if n.persistAt >= 0 {
		seq := n.c.Output(n.persistAt).(kv.Persist).Seq
		for _, out := range n.pending {
			n.held = append(n.held, heldOutput{seq: seq, out: out})
		}
		clear(n.pending)
		n.pending = n.pending[:0]
	}
	n.persistAt = -1
	return n.c.Drain(dst)
}

// NextDeadline implements overlay.Core: the earlier of the two cores'.
func (n *Node) NextDeadline() (time.Time, bool) { return n.c.NextDeadline() }
