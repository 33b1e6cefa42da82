package kv_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/p2p-go/p2p/gossip"
	"github.com/p2p-go/p2p/hyparview"
	"github.com/p2p-go/p2p/internal/scenario"
	"github.com/p2p-go/p2p/internal/stack"
	"github.com/p2p-go/p2p/kv"
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/sim"
)

// TestScripts runs the scenario scripts of testdata/scripts (see package
// internal/scenario; -rewrite regenerates their expected output).
func TestScripts(t *testing.T) {
	scenario.Walk(t, "testdata/scripts", func(t *testing.T) func(c *scenario.Cmd) string {
		n, err := scenario.New(newKVAdapter())
		if err != nil {
			t.Fatal(err)
		}
		return n.Handle
	})
}

// newKVAdapter returns an adapter driving the node's full core (the
// Broadcaster's gossip core composed with the store, as the runtime and the
// simulator run them) with an in-memory backend, which the adapter writes as
// a runtime does: it carries out each Persist output at once (virtual time
// does not pass) and steps kv.Persisted, which releases the outputs the
// stack held for it. Option of nodes: active=
// (HyParView's active view size).
func newKVAdapter() scenario.Adapter {
	var nextReq uint64
	backends := map[int]*kv.Memory{}
	store := func(n *scenario.Net, i int) *kv.Store { return n.Core(i).(*stack.Node).Store }
	return scenario.Adapter{
		New: func(id sim.Identity, c *scenario.Cmd) (overlay.Core, error) {
			active, err := c.Int("active", 0)
			if err != nil {
				return nil, err
			}
			g, err := gossip.New(gossip.Config{
				Self: id.Info, Key: id.Key, Seed: id.Seed, Name: scenario.NodeName(id.Index),
				HyParView: hyparview.Config{ActiveViewSize: active},
			})
			if err != nil {
				return nil, err
			}
			backend := kv.NewMemory()
			s, err := kv.New(kv.Config{Key: id.Key, Self: id.Info.ID, Seed: id.Seed ^ 0x6b76, Backend: backend})
			if err != nil {
				return nil, err
			}
			backends[id.Index] = backend
			return stack.New(g, s), nil
		},
		Join: func(n *scenario.Net, a, b int) error {
			var contacts []string
			if b >= 0 {
				contacts = []string{sim.Addr(b)}
			}
			n.Step(a, gossip.Join{Contacts: contacts})
			return nil
		},
		Output: func(n *scenario.Net, node int, out any) string {
			switch o := out.(type) {
			case kv.Persist:
				n.Step(node, kv.Persisted{Seq: o.Seq, Err: o.WriteTo(backends[node])})
			case kv.Result:
				if o.Err != nil {
					return fmt.Sprintf("write %d failed: %v", o.ReqID, o.Err)
				}
			}
			return ""
		},
		Commands: map[string]func(n *scenario.Net, c *scenario.Cmd) (string, error){
			// put a key value: node a writes value under key.
			"put": func(n *scenario.Net, c *scenario.Cmd) (string, error) {
				pos := c.Positional()
				if len(pos) != 3 {
					return "", fmt.Errorf("usage: put node key value")
				}
				i, err := n.Node(pos[0])
				if err != nil {
					return "", err
				}
				nextReq++
				n.Step(i, kv.Put{ReqID: nextReq, Key: pos[1], Value: []byte(pos[2])})
				return "", nil
			},
			// delete a key: node a deletes key (a tombstone).
			"delete": func(n *scenario.Net, c *scenario.Cmd) (string, error) {
				pos := c.Positional()
				if len(pos) != 2 {
					return "", fmt.Errorf("usage: delete node key")
				}
				i, err := n.Node(pos[0])
				if err != nil {
					return "", err
				}
				nextReq++
				n.Step(i, kv.Delete{ReqID: nextReq, Key: pos[1]})
				return "", nil
			},
			// get key [a,b...]: each node's value of key and its writer, or
			// "absent" (never written, or deleted).
			"get": func(n *scenario.Net, c *scenario.Cmd) (string, error) {
				pos := c.Positional()
				if len(pos) < 1 {
					return "", fmt.Errorf("usage: get key [nodes]")
				}
				key := pos[0]
				sel := &scenario.Cmd{Name: c.Name, Args: pos[1:]}
				return n.PerNode(sel, func(i int) string {
					r, ok := store(n, i).Get(key)
					if !ok {
						return "absent"
					}
					return fmt.Sprintf("%s (%s)", r.Value, n.NameOf(r.Version.Writer))
				})
			},
			// store [a,b...]: each node's records (tombstones aside),
			// key=value(writer).
			"store": func(n *scenario.Net, c *scenario.Cmd) (string, error) {
				return n.PerNode(c, func(i int) string {
					var parts []string
					for _, r := range store(n, i).List("") {
						parts = append(parts, fmt.Sprintf("%s=%s(%s)", r.Key, r.Value, n.NameOf(r.Version.Writer)))
					}
					return strings.Join(parts, " ")
				})
			},
			// disk [a,b...]: each node's backend (what the store asked to
			// persist, tombstones included), key=value(writer).
			"disk": func(n *scenario.Net, c *scenario.Cmd) (string, error) {
				return n.PerNode(c, func(i int) string {
					var parts []string
					err := backends[i].Scan("", func(r kv.Record) bool {
						if r.Deleted {
							parts = append(parts, fmt.Sprintf("%s deleted(%s)", r.Key, n.NameOf(r.Version.Writer)))
						} else {
							parts = append(parts, fmt.Sprintf("%s=%s(%s)", r.Key, r.Value, n.NameOf(r.Version.Writer)))
						}
						return true
					})
					if err != nil {
						return "error: " + err.Error()
					}
					return strings.Join(parts, " ")
				})
			},
			// agree: the live nodes grouped by store digest, one line
			// per distinct store.
			"agree": func(n *scenario.Net, c *scenario.Cmd) (string, error) {
				var order [][32]byte
				groups := map[[32]byte][]string{}
				for _, i := range n.Sim().LiveNodes() {
					d := store(n, i).Digest()
					if _, ok := groups[d]; !ok {
						order = append(order, d)
					}
					groups[d] = append(groups[d], n.Name(i))
				}
				var lines []string
				for _, d := range order {
					lines = append(lines, fmt.Sprintf("%s: same store (%d keys)", strings.Join(groups[d], " "), store(n, n.MustNode(groups[d][0])).Len()))
				}
				return strings.Join(lines, "\n"), nil
			},
		},
	}
}
