package hyparview_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/p2p-go/p2p/hyparview"
	"github.com/p2p-go/p2p/internal/scenario"
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/sim"
)

// TestScripts runs the scenario scripts of testdata/scripts (see package
// internal/scenario; -rewrite regenerates their expected output).
func TestScripts(t *testing.T) {
	scenario.Walk(t, "testdata/scripts", func(t *testing.T) func(c *scenario.Cmd) string {
		n, err := scenario.New(hyparviewAdapter)
		if err != nil {
			t.Fatal(err)
		}
		return n.Handle
	})
}

// hyparviewAdapter drives bare HyParView cores. Options of nodes: active=
// and passive= (view sizes).
var hyparviewAdapter = scenario.Adapter{
	New: func(id sim.Identity, c *scenario.Cmd) (overlay.Core, error) {
		active, err := c.Int("active", 0)
		if err != nil {
			return nil, err
		}
		passive, err := c.Int("passive", 0)
		if err != nil {
			return nil, err
		}
		return hyparview.New(hyparview.Config{Self: id.Info, Seed: id.Seed, ActiveViewSize: active, PassiveViewSize: passive})
	},
	Join: func(n *scenario.Net, a, b int) error {
		var contacts []string
		if b >= 0 {
			contacts = []string{sim.Addr(b)}
		}
		n.Step(a, hyparview.Join{Contacts: contacts})
		return nil
	},
	Output: func(n *scenario.Net, _ int, out any) string {
		switch o := out.(type) {
		case hyparview.NeighborUp:
			return "neighbor up " + n.NameOf(o.Peer.ID)
		case hyparview.NeighborDown:
			return "neighbor down " + n.NameOf(o.Peer)
		case hyparview.Joined:
			return "joined"
		}
		return ""
	},
	Commands: map[string]func(n *scenario.Net, c *scenario.Cmd) (string, error){
		// views [a,b...]: each node's active and passive views.
		"views": func(n *scenario.Net, c *scenario.Cmd) (string, error) {
			return n.PerNode(c, func(i int) string {
				core := n.Core(i).(*hyparview.Core)
				return fmt.Sprintf("active=[%s] passive=[%s]", n.NamesOf(core.ActiveView()), n.NamesOf(core.PassiveView()))
			})
		},
		// symmetric: the live nodes' active-view links that only one end
		// holds, or "symmetric".
		"symmetric": func(n *scenario.Net, c *scenario.Cmd) (string, error) {
			var lines []string
			for i := range n.Len() {
				if !n.Alive(i) {
					continue
				}
				for _, p := range n.Core(i).(*hyparview.Core).ActiveView() {
					j := n.Sim().Lookup(p.ID)
					if j < 0 || !n.Alive(j) {
						lines = append(lines, fmt.Sprintf("%s holds crashed %s", n.Name(i), n.NameOf(p.ID)))
						continue
					}
					if !holds(n.Core(j).(*hyparview.Core).ActiveView(), i, n) {
						lines = append(lines, fmt.Sprintf("%s holds %s, not back", n.Name(i), n.Name(j)))
					}
				}
			}
			if len(lines) == 0 {
				return "symmetric", nil
			}
			return strings.Join(lines, "\n"), nil
		},
	},
}

// holds reports whether view lists node i of n.
func holds(view []peer.Info, i int, n *scenario.Net) bool {
	for _, p := range view {
		if n.Sim().Lookup(p.ID) == i {
			return true
		}
	}
	return false
}
