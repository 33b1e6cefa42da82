package kademlia_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/p2p-go/p2p/internal/scenario"
	"github.com/p2p-go/p2p/kademlia"
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/sim"
)

// TestScripts runs the scenario scripts of testdata/scripts (see package
// internal/scenario; -rewrite regenerates their expected output).
func TestScripts(t *testing.T) {
	scenario.Walk(t, "testdata/scripts", func(t *testing.T) func(c *scenario.Cmd) string {
		n, err := scenario.New(newKademliaAdapter())
		if err != nil {
			t.Fatal(err)
		}
		return n.Handle
	})
}

// lookupLimit bounds the virtual time a scripted lookup may take.
const lookupLimit = time.Minute

// newKademliaAdapter returns an adapter driving Kademlia cores, with its own
// record of lookup results. Options of nodes: k= and alpha=.
func newKademliaAdapter() scenario.Adapter {
	var nextReq uint64
	results := map[uint64]kademlia.LookupResult{}
	return scenario.Adapter{
		New: func(id sim.Identity, c *scenario.Cmd) (overlay.Core, error) {
			k, err := c.Int("k", 0)
			if err != nil {
				return nil, err
			}
			alpha, err := c.Int("alpha", 0)
			if err != nil {
				return nil, err
			}
			return kademlia.New(kademlia.Config{Self: id.Info, Signer: id.Key, K: k, Alpha: alpha})
		},
		Join: func(n *scenario.Net, a, b int) error {
			if b < 0 {
				return nil // a Kademlia node alone needs no input
			}
			nextReq++
			n.Step(a, kademlia.Bootstrap{ReqID: nextReq, Contacts: []string{sim.Addr(b)}})
			return nil
		},
		Output: func(n *scenario.Net, _ int, out any) string {
			switch o := out.(type) {
			case kademlia.BootstrapResult:
				if o.Err != nil {
					return fmt.Sprintf("bootstrap failed: %v", o.Err)
				}
				return fmt.Sprintf("bootstrapped, %d contacts", o.Contacts)
			case kademlia.LookupResult:
				results[o.ReqID] = o
			}
			return ""
		},
		Commands: map[string]func(n *scenario.Net, c *scenario.Cmd) (string, error){
			// table [a,b...]: each node's routing table.
			"table": func(n *scenario.Net, c *scenario.Cmd) (string, error) {
				return n.PerNode(c, func(i int) string {
					return n.NamesOf(n.Core(i).(*kademlia.Core).Contacts())
				})
			},
			// lookup a word: node a looks up the ID ImmutableKey(word) and
			// prints the nodes it returned, closest first, then the K live
			// nodes (a excepted) that are in truth the closest to it.
			"lookup": func(n *scenario.Net, c *scenario.Cmd) (string, error) {
				pos := c.Positional()
				if len(pos) != 2 {
					return "", fmt.Errorf("usage: lookup node word")
				}
				from, err := n.Node(pos[0])
				if err != nil {
					return "", err
				}
				target := kademlia.ImmutableKey([]byte(pos[1]))
				nextReq++
				req := nextReq
				n.Step(from, kademlia.Lookup{ReqID: req, Target: target})
				s := n.Sim()
				if !s.RunUntilCond(s.Now().Add(lookupLimit), func() bool { _, ok := results[req]; return ok }) {
					return "", fmt.Errorf("no answer within %v", lookupLimit)
				}
				res := results[req]
				if res.Err != nil {
					return "", res.Err
				}
				var found []string
				for _, p := range res.Closest {
					found = append(found, n.NameOf(p.ID))
				}
				var live []peer.ID
				for _, i := range s.LiveNodes() {
					if i != from {
						live = append(live, s.Info(i).ID)
					}
				}
				slices.SortFunc(live, func(x, y peer.ID) int {
					if kademlia.Closer(target, x, y) {
						return -1
					}
					if kademlia.Closer(target, y, x) {
						return 1
					}
					return 0
				})
				k := n.Core(from).(*kademlia.Core).Config().K
				var want []string
				for _, id := range live[:min(k, len(live))] {
					want = append(want, n.NameOf(id))
				}
				return fmt.Sprintf("found: %v\nclosest: %v\nhops=%d", found, want, res.Hops), nil
			},
		},
	}
}
