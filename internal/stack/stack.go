package stack

import (
	"fmt"
	"time"

	"github.com/p2p-go/p2p/gossip"
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
// wire range belongs to (wire.RangeKV: the store). The store's kv.Persist
// outputs come out merged into one per drain, placed before every output
// that depends on them (see kv.Persist).
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

	queue     []work
	outputs   []any
	scratch   []any
	persistAt int // index in outputs of the undrained kv.Persist, or -1
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

// routes sends a received message to the store when it is in the store's
// wire range, and to the Broadcaster's core otherwise (which routes the
// HyParView, Plumtree and membership ranges in turn).
var routes = new(wire.Router[bool]).Add(wire.RangeKV, true)

// work is one input waiting for one of the two cores.
type work struct {
	toStore bool
	input   any
}

// New returns the composition of g and s.
func New(g *gossip.Core, s *kv.Store) *Node { return &Node{Gossip: g, Store: s, persistAt: -1} }

var _ overlay.Core = (*Node)(nil)

// Step implements overlay.Core.
func (n *Node) Step(now time.Time, input any) {
	switch in := input.(type) {
	case overlay.Received:
		toStore, _ := routes.Route(in.Msg)
		n.queue = append(n.queue, work{toStore: toStore, input: in})
	case overlay.Tick:
		n.queue = append(n.queue, work{input: in}, work{toStore: true, input: in})
	case kv.Put, kv.Delete, kv.Revoke, kv.NeighborUp, kv.NeighborDown, kv.FromBroadcast:
		n.queue = append(n.queue, work{toStore: true, input: in})
	case kv.Persisted:
		n.persisted(now, in)
	default: // gossip.Join, overlay.LinkDown
		n.queue = append(n.queue, work{input: in})
	}
	n.run(now)
}

// persisted reports a Persist's outcome to the store and releases (on
// success) or drops (on failure) the outputs held for it.
func (n *Node) persisted(now time.Time, in kv.Persisted) {
	n.Store.Step(now, in)
	kept := n.held[:0]
	for _, h := range n.held {
		if h.seq > in.Seq {
			kept = append(kept, h)
			continue
		}
		switch o := h.out.(type) {
		case kv.Broadcast:
			if in.Err == nil {
				n.queue = append(n.queue, work{input: gossip.Broadcast{Topic: StoreTopic, Payload: o.Payload}})
			}
		case kv.Changed, kv.DenyList:
			if in.Err == nil {
				n.outputs = append(n.outputs, o)
			}
		case kv.Result:
			if in.Err != nil && o.Err == nil {
				o.Err = fmt.Errorf("kv: write of %q not stored: %w", o.Record.Key, in.Err)
				o.Record = kv.Record{}
			}
			n.outputs = append(n.outputs, o)
		default:
			n.outputs = append(n.outputs, o)
		}
	}
	clear(n.held[len(kept):])
	n.held = kept
	// What the store emitted on the news (the deny list restored by a
	// rollback) comes after.
	outs := n.Store.Drain(n.scratch[:0])
	n.scratch = nil
	for _, out := range outs {
		n.route(out)
	}
	clear(outs)
	n.scratch = outs[:0]
}

// run steps the queued inputs into their cores and routes their outputs.
func (n *Node) run(now time.Time) {
	for len(n.queue) > 0 {
		w := n.queue[0]
		n.queue = n.queue[1:]
		var outs []any
		if w.toStore {
			n.Store.Step(now, w.input)
			outs = n.Store.Drain(n.scratch[:0])
		} else {
			n.Gossip.Step(now, w.input)
			outs = n.Gossip.Drain(n.scratch[:0])
		}
		n.scratch = nil
		for _, out := range outs {
			n.route(out)
		}
		clear(outs)
		n.scratch = outs[:0]
	}
	n.queue = n.queue[:0]
}

// route sends one output of either core to the other core or out.
func (n *Node) route(out any) {
	switch o := out.(type) {
	case kv.Persist:
		// One Persist per drain, where the first one stood: everything
		// that depended on a later one (a write's Result, the sends of its
		// broadcast) comes after it too, and the runtime writes the whole
		// step's changes with one fsync.
		if n.persistAt >= 0 {
			n.outputs[n.persistAt] = n.outputs[n.persistAt].(kv.Persist).Merge(o)
			return
		}
		n.persistAt = len(n.outputs)
		n.outputs = append(n.outputs, o)
	case kv.Result, kv.Changed, kv.Broadcast, kv.DenyList:
		if n.persistAt >= 0 {
			n.pending = append(n.pending, out)
			return
		}
		if b, ok := out.(kv.Broadcast); ok {
			n.queue = append(n.queue, work{input: gossip.Broadcast{Topic: StoreTopic, Payload: b.Payload}})
			return
		}
		n.outputs = append(n.outputs, out)
	case gossip.Deliver:
		if o.Topic == StoreTopic && !o.Direct {
			n.queue = append(n.queue, work{toStore: true, input: kv.FromBroadcast{From: o.Origin, Payload: o.Payload}})
			return
		}
		n.outputs = append(n.outputs, out)
	case gossip.NeighborUp:
		n.queue = append(n.queue, work{toStore: true, input: kv.NeighborUp{Peer: o.Peer}})
		n.outputs = append(n.outputs, out)
	case gossip.NeighborDown:
		n.queue = append(n.queue, work{toStore: true, input: kv.NeighborDown{Peer: o.Peer}})
		n.outputs = append(n.outputs, out)
	default:
		n.outputs = append(n.outputs, out)
	}
}

// Drain implements overlay.Core.
func (n *Node) Drain(dst []any) []any {
	if n.persistAt >= 0 {
		seq := n.outputs[n.persistAt].(kv.Persist).Seq
		for _, out := range n.pending {
			n.held = append(n.held, heldOutput{seq: seq, out: out})
		}
		clear(n.pending)
		n.pending = n.pending[:0]
	}
	dst = append(dst, n.outputs...)
	clear(n.outputs)
	n.outputs = n.outputs[:0]
	n.persistAt = -1
	return dst
}

// NextDeadline implements overlay.Core: the earlier of the two cores'.
func (n *Node) NextDeadline() (time.Time, bool) {
	a, aok := n.Gossip.NextDeadline()
	b, bok := n.Store.NextDeadline()
	switch {
	case aok && bok:
		if b.Before(a) {
			return b, true
		}
		return a, true
	case aok:
		return a, true
	default:
		return b, bok
	}
}
