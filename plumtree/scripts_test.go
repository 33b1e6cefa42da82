package plumtree_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/p2p-go/p2p/internal/scenario"
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/plumtree"
	"github.com/p2p-go/p2p/sim"
)

// TestScripts runs the scenario scripts of testdata/scripts (see package
// internal/scenario; -rewrite regenerates their expected output).
func TestScripts(t *testing.T) {
	scenario.Walk(t, "testdata/scripts", func(t *testing.T) func(c *scenario.Cmd) string {
		n, err := scenario.New(plumtreeAdapter)
		if err != nil {
			t.Fatal(err)
		}
		return n.Handle
	})
}

// link is the input that makes a graphCore a neighbour of Peer.
type link struct{ Peer peer.Info }

// graphCore runs a Plumtree core over links that the script makes: join a b
// links a and b (NeighborUp at both ends, a kept link in the engine), and a
// broken link (a crash, a partition) is NeighborDown. It is the paper's
// setting with the membership layer replaced by the script.
type graphCore struct {
	pt    *plumtree.Core
	links map[peer.ID]bool
	out   []any
}

func (g *graphCore) Step(now time.Time, input any) {
	switch in := input.(type) {
	case link:
		if !g.links[in.Peer.ID] {
			g.links[in.Peer.ID] = true
			g.out = append(g.out, overlay.Connect{Peer: in.Peer})
			g.pt.Step(now, plumtree.NeighborUp{Peer: in.Peer})
		}
	case overlay.LinkDown:
		if g.links[in.Peer] {
			delete(g.links, in.Peer)
			g.pt.Step(now, plumtree.NeighborDown{Peer: in.Peer})
		}
	default:
		g.pt.Step(now, input)
	}
}

func (g *graphCore) Drain(dst []any) []any {
	dst = append(dst, g.out...)
	g.out = g.out[:0]
	return g.pt.Drain(dst)
}

func (g *graphCore) NextDeadline() (time.Time, bool) { return g.pt.NextDeadline() }

// plumtreeAdapter drives Plumtree cores on a graph the script builds.
var plumtreeAdapter = scenario.Adapter{
	New: func(id sim.Identity, _ *scenario.Cmd) (overlay.Core, error) {
		pt, err := plumtree.New(plumtree.Config{Self: id.Info, Seed: id.Seed})
		if err != nil {
			return nil, err
		}
		return &graphCore{pt: pt, links: map[peer.ID]bool{}}, nil
	},
	// join a starts a's core (its clock: messages broadcast before a node
	// started are not recovered); join a b links a and b.
	Join: func(n *scenario.Net, a, b int) error {
		if b < 0 {
			n.Step(a, overlay.Tick{})
			return nil
		}
		n.Step(a, link{Peer: n.Sim().Info(b)})
		n.Step(b, link{Peer: n.Sim().Info(a)})
		return nil
	},
	Send: func(n *scenario.Net, from int, payload string) error {
		n.Step(from, plumtree.Broadcast{Payload: []byte(payload)})
		return nil
	},
	Output: func(n *scenario.Net, _ int, out any) string {
		if d, ok := out.(plumtree.Deliver); ok {
			return fmt.Sprintf("deliver %q from %s", d.Payload, n.NameOf(d.Origin.ID))
		}
		return ""
	},
	Commands: map[string]func(n *scenario.Net, c *scenario.Cmd) (string, error){
		// spanning: whether the live nodes' eager links form a spanning
		// tree (symmetric, connected, one link fewer than nodes).
		"spanning": func(n *scenario.Net, c *scenario.Cmd) (string, error) {
			live := n.Sim().LiveNodes()
			links, oneSided := 0, 0
			reached := map[int]bool{live[0]: true}
			queue := []int{live[0]}
			for len(queue) > 0 {
				i := queue[0]
				queue = queue[1:]
				for _, p := range n.Core(i).(*graphCore).pt.EagerPeers() {
					if j := n.Sim().Lookup(p.ID); j >= 0 && n.Alive(j) && !reached[j] {
						reached[j] = true
						queue = append(queue, j)
					}
				}
			}
			for _, i := range live {
				for _, p := range n.Core(i).(*graphCore).pt.EagerPeers() {
					j := n.Sim().Lookup(p.ID)
					if !n.Alive(j) || !slices.ContainsFunc(n.Core(j).(*graphCore).pt.EagerPeers(), func(q peer.Info) bool { return q.ID == n.Sim().Info(i).ID }) {
						oneSided++
					} else if i < j {
						links++
					}
				}
			}
			verdict := "a spanning tree"
			if len(reached) != len(live) || links != len(live)-1 || oneSided > 0 {
				verdict = "not a spanning tree"
			}
			return fmt.Sprintf("%s: %d nodes, %d eager links, %d one-sided, %d reached", verdict, len(live), links, oneSided, len(reached)), nil
		},
		// tree [a,b...]: each node's eager and lazy peers.
		"tree": func(n *scenario.Net, c *scenario.Cmd) (string, error) {
			return n.PerNode(c, func(i int) string {
				pt := n.Core(i).(*graphCore).pt
				return fmt.Sprintf("eager=[%s] lazy=[%s]", n.NamesOf(pt.EagerPeers()), n.NamesOf(pt.LazyPeers()))
			})
		},
	},
}
