package gossip_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/p2p-go/p2p/gossip"
	"github.com/p2p-go/p2p/hyparview"
	"github.com/p2p-go/p2p/internal/scenario"
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/sim"
)

// TestScripts runs the scenario scripts of testdata/scripts (see package
// internal/scenario; -rewrite regenerates their expected output).
func TestScripts(t *testing.T) {
	scenario.Walk(t, "testdata/scripts", func(t *testing.T) func(c *scenario.Cmd) string {
		n, err := scenario.New(gossipAdapter)
		if err != nil {
			t.Fatal(err)
		}
		return n.Handle
	})
}

// scriptTopic is the topic of the scripts' broadcasts.
const scriptTopic uint8 = 1

// stateNames prints member states.
var stateNames = map[uint8]string{
	gossip.StateAlive:   "alive",
	gossip.StateDead:    "dead",
	gossip.StateLeft:    "left",
	gossip.StateSuspect: "suspect",
}

// gossipAdapter drives Broadcaster cores (HyParView, Plumtree and the member
// list), each with a signing key and its script name as member name. Option
// of nodes: active= (HyParView's active view size).
var gossipAdapter = scenario.Adapter{
	New: func(id sim.Identity, c *scenario.Cmd) (overlay.Core, error) {
		active, err := c.Int("active", 0)
		if err != nil {
			return nil, err
		}
		return gossip.New(gossip.Config{
			Self: id.Info, Key: id.Key, Seed: id.Seed, Name: scenario.NodeName(id.Index),
			HyParView: hyparview.Config{ActiveViewSize: active},
		})
	},
	Join: func(n *scenario.Net, a, b int) error {
		var contacts []string
		if b >= 0 {
			contacts = []string{sim.Addr(b)}
		}
		n.Step(a, gossip.Join{Contacts: contacts})
		return nil
	},
	Send: func(n *scenario.Net, from int, payload string) error {
		n.Step(from, gossip.Broadcast{Topic: scriptTopic, Payload: []byte(payload)})
		return nil
	},
	Output: func(n *scenario.Net, _ int, out any) string {
		switch o := out.(type) {
		case gossip.MemberUp:
			return "member up " + n.NameOf(o.Peer.ID)
		case gossip.MemberDown:
			if o.Left {
				return "member left " + n.NameOf(o.Peer.ID)
			}
			return "member down " + n.NameOf(o.Peer.ID)
		case gossip.Deliver:
			if o.Topic == scriptTopic {
				return fmt.Sprintf("deliver %q from %s", o.Payload, n.NameOf(o.Origin.ID))
			}
		case gossip.Failed:
			return fmt.Sprintf("failed: %v", o.Err)
		}
		return ""
	},
	Commands: map[string]func(n *scenario.Net, c *scenario.Cmd) (string, error){
		// leave a: node a leaves politely.
		"leave": func(n *scenario.Net, c *scenario.Cmd) (string, error) {
			nodes, err := n.Selected(c)
			if err != nil {
				return "", err
			}
			for _, i := range nodes {
				n.Step(i, gossip.Leave{})
			}
			return "", nil
		},
		// members [a,b...]: each node's member list with states, self
		// included.
		"members": func(n *scenario.Net, c *scenario.Cmd) (string, error) {
			return n.PerNode(c, func(i int) string {
				var parts []string
				for _, e := range n.Core(i).(*gossip.Core).MemberEntries() {
					parts = append(parts, n.NameOf(e.Peer.ID)+"="+stateNames[e.State])
				}
				slices.SortFunc(parts, func(x, y string) int {
					xn, _, _ := strings.Cut(x, "=")
					yn, _, _ := strings.Cut(y, "=")
					if len(xn) != len(yn) {
						return len(xn) - len(yn)
					}
					return strings.Compare(xn, yn)
				})
				return strings.Join(parts, " ")
			})
		},
	},
}
