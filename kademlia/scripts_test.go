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
	puts := map[uint64]kademlia.PutResult{}
	gets := map[uint64]kademlia.GetResult{}
	// await runs the network until done reports the answer to a request.
	await := func(n *scenario.Net, done func() bool) error {
		s := n.Sim()
		if !s.RunUntilCond(s.Now().Add(lookupLimit), done) {
			return fmt.Errorf("no answer within %v", lookupLimit)
		}
		return nil
	}
	// closest returns the names of the k live nodes closest to target,
	// except node skip.
	closest := func(n *scenario.Net, target peer.ID, k, skip int) []string {
		s := n.Sim()
		var live []peer.ID
		for _, i := range s.LiveNodes() {
			if i != skip {
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
		var names []string
		for _, id := range live[:min(k, len(live))] {
			names = append(names, n.NameOf(id))
		}
		return names
	}
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
		Send: func(n *scenario.Net, from int, payload string) error {
			n.Step(from, kademlia.Broadcast{Payload: []byte(payload)})
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
			case kademlia.PutResult:
				puts[o.ReqID] = o
			case kademlia.GetResult:
				gets[o.ReqID] = o
			case kademlia.Deliver:
				if o.Broadcast {
					return fmt.Sprintf("deliver %q from %s", o.Payload, n.NameOf(o.Origin))
				}
			}
			return ""
		},
		Commands: map[string]func(n *scenario.Net, c *scenario.Cmd) (string, error){
			// put a value: node a stores the immutable record of value
			// (its key is the value's hash) and prints how many nodes
			// accepted it.
			"put": func(n *scenario.Net, c *scenario.Cmd) (string, error) {
				pos := c.Positional()
				if len(pos) != 2 {
					return "", fmt.Errorf("usage: put node value")
				}
				from, err := n.Node(pos[0])
				if err != nil {
					return "", err
				}
				nextReq++
				req := nextReq
				n.Step(from, kademlia.Put{ReqID: req, Record: kademlia.NewImmutableRecord([]byte(pos[1]))})
				if err := await(n, func() bool { _, ok := puts[req]; return ok }); err != nil {
					return "", err
				}
				r := puts[req]
				if r.Err != nil {
					return "", r.Err
				}
				return fmt.Sprintf("stored on %d nodes", r.Stored), nil
			},
			// get a value: node a looks the record of value up.
			"get": func(n *scenario.Net, c *scenario.Cmd) (string, error) {
				pos := c.Positional()
				if len(pos) != 2 {
					return "", fmt.Errorf("usage: get node value")
				}
				from, err := n.Node(pos[0])
				if err != nil {
					return "", err
				}
				nextReq++
				req := nextReq
				n.Step(from, kademlia.Get{ReqID: req, Key: kademlia.ImmutableKey([]byte(pos[1]))})
				if err := await(n, func() bool { _, ok := gets[req]; return ok }); err != nil {
					return "", err
				}
				r := gets[req]
				if r.Err != nil {
					return "", r.Err
				}
				return fmt.Sprintf("found %q, hops=%d", r.Record.Value, r.Hops), nil
			},
			// holders value: the live nodes that store the record of
			// value, then the K live nodes closest to its key.
			"holders": func(n *scenario.Net, c *scenario.Cmd) (string, error) {
				pos := c.Positional()
				if len(pos) != 1 {
					return "", fmt.Errorf("usage: holders value")
				}
				key := kademlia.ImmutableKey([]byte(pos[0]))
				var holders []string
				k := 0
				for _, i := range n.Sim().LiveNodes() {
					core := n.Core(i).(*kademlia.Core)
					k = core.Config().K
					if _, ok := core.StoredRecord(key); ok {
						holders = append(holders, n.Name(i))
					}
				}
				want := closest(n, key, k, -1)
				return fmt.Sprintf("holders: %s\nclosest: %s", scenario.SortedNames(holders), scenario.SortedNames(want)), nil
			},
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
				if err := await(n, func() bool { _, ok := results[req]; return ok }); err != nil {
					return "", err
				}
				res := results[req]
				if res.Err != nil {
					return "", res.Err
				}
				var found []string
				for _, p := range res.Closest {
					found = append(found, n.NameOf(p.ID))
				}
				want := closest(n, target, n.Core(from).(*kademlia.Core).Config().K, from)
				return fmt.Sprintf("found: %v\nclosest: %v\nhops=%d", found, want, res.Hops), nil
			},
		},
	}
}
