package sim

import (
	"crypto/sha256"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/sim/engine"
	"github.com/p2p-go/p2p/wire"
)

// Test-only message types use codes 0x7Fxx, outside every range the
// project's packages use.
func init() {
	wire.ClaimRange(0x7F, "sim tests")
	wire.Register(0x7F02, (*floodMsg)(nil))
}

// floodMsg carries a flooded payload.
type floodMsg struct {
	_       struct{} `cbor:",toarray"`
	ID      MessageID
	Hops    int
	Payload []byte
}

// floodBroadcast and floodDeliver are the flood core's request and output.
type (
	floodBroadcast struct{ payload []byte }
	floodDeliver   struct {
		id      MessageID
		hops    int
		payload []byte
	}
	floodJoin struct{}
)

// floodCore floods every new message to all its fixed neighbours but the one
// it came from: the simplest broadcast, whose message counts are easy to
// work out by hand on a small graph.
type floodCore struct {
	self      peer.Info
	neighbors []peer.Info
	seen      map[MessageID]bool
	outputs   []any
}

func (c *floodCore) Step(now time.Time, input any) {
	switch in := input.(type) {
	case floodBroadcast:
		sum := sha256.Sum256(in.payload)
		id := MessageID(sum[:16])
		c.seen[id] = true
		c.forward(&floodMsg{ID: id, Hops: 1, Payload: in.payload}, peer.ID{})
	case overlay.Received:
		m, ok := in.Msg.(*floodMsg)
		if !ok || c.seen[m.ID] {
			return
		}
		c.seen[m.ID] = true
		c.outputs = append(c.outputs, floodDeliver{id: m.ID, hops: m.Hops, payload: m.Payload})
		c.forward(&floodMsg{ID: m.ID, Hops: m.Hops + 1, Payload: m.Payload}, in.From.ID)
	}
}

func (c *floodCore) forward(m *floodMsg, except peer.ID) {
	for _, n := range c.neighbors {
		if n.ID != except {
			c.outputs = append(c.outputs, overlay.Send{To: n, Msg: m})
		}
	}
}

func (c *floodCore) Drain(dst []any) []any {
	dst = append(dst, c.outputs...)
	c.outputs = c.outputs[:0]
	return dst
}

func (c *floodCore) NextDeadline() (time.Time, bool) { return time.Time{}, false }

// floodProtocol runs floodCores on a fixed graph: node i's neighbours are
// graph[i]. Neighbour IDs are derived the way the engine derives them.
type floodProtocol struct {
	graph [][]int
	seed  uint64
}

func (p floodProtocol) Name() string { return "flood" }

func (p floodProtocol) NewCore(id Identity) (overlay.Core, error) {
	c := &floodCore{self: id.Info, seen: map[MessageID]bool{}}
	for _, j := range p.graph[id.Index] {
		key, _, err := engine.DeriveIdentity(p.seed, j)
		if err != nil {
			return nil, err
		}
		c.neighbors = append(c.neighbors, peer.Info{ID: key.ID(), Addr: Addr(j)})
	}
	return c, nil
}

func (p floodProtocol) JoinInput([]string) any            { return floodJoin{} }
func (p floodProtocol) BroadcastInput(payload []byte) any { return floodBroadcast{payload: payload} }

func (p floodProtocol) Delivery(out any) (Delivery, bool) {
	d, ok := out.(floodDeliver)
	return Delivery{ID: d.id, Hops: d.hops, Payload: d.payload}, ok
}

func (p floodProtocol) PayloadMessage(msg any) (MessageID, bool) {
	m, ok := msg.(*floodMsg)
	if !ok {
		return MessageID{}, false
	}
	return m.ID, true
}

// undirected builds an adjacency list from edges.
func undirected(n int, edges [][2]int) [][]int {
	graph := make([][]int, n)
	for _, e := range edges {
		graph[e[0]] = append(graph[e[0]], e[1])
		graph[e[1]] = append(graph[e[1]], e[0])
	}
	return graph
}
