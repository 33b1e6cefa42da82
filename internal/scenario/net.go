package scenario

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/sim/engine"
)

// Latency is the one-way latency of every link of a [Net].
const Latency = 20 * time.Millisecond

// DefaultQuietLimit bounds run-until-quiet when no max= is given.
const DefaultQuietLimit = time.Minute

// Adapter tells a [Net] how to drive one kind of core.
type Adapter struct {
	// New builds the core of a new node. c is the nodes command, whose
	// key=value options the adapter may read.
	New func(id engine.Identity, c *Cmd) (overlay.Core, error)
	// Join makes node a join the network through node b, or start a new
	// network when b is -1.
	Join func(n *Net, a, b int) error
	// Send makes node from send payload (a broadcast, a write, ...).
	Send func(n *Net, from int, payload string) error
	// Output describes a core output other than Send, Connect and
	// Disconnect for the outputs command; "" leaves it out.
	Output func(n *Net, node int, out any) string
	// Commands are the adapter's own commands (state printers and inputs),
	// by name. Nodes named in arguments are resolved with [Net.Node].
	Commands map[string]func(n *Net, c *Cmd) (string, error)
}

// Net is a network of cores on the simulator's engine, driven by script
// commands.
type Net struct {
	adapter Adapter
	sim     *engine.Sim
	names   []string
	cores   []overlay.Core // the adapters' cores, unwrapped
	log     []delivered    // messages delivered since the last messages/counts
	outputs []output       // outputs recorded since the last outputs
	drops   []dropRule
}

// delivered is one message handed to a core.
type delivered struct {
	from, to int
	typ      string
}

// output is one line of the outputs command: what node printed.
type output struct {
	node int
	line string
}

// dropRule loses the next count messages of type typ from one node to another.
type dropRule struct {
	from, to int
	typ      string
	count    int
}

// New returns an empty network driving the adapter's cores.
func New(a Adapter) (*Net, error) {
	if a.New == nil || a.Join == nil {
		return nil, errors.New("scenario: Adapter needs New and Join")
	}
	n := &Net{adapter: a}
	s, err := engine.New(engine.Config{
		Seed:    1,
		Latency: engine.Latency{Kind: engine.LatencyFixed, Mean: Latency},
		Observer: func(_ time.Time, node int, out any) {
			if n.adapter.Output != nil {
				if line := n.adapter.Output(n, node, out); line != "" {
					n.outputs = append(n.outputs, output{node: node, line: line})
				}
			}
		},
	})
	if err != nil {
		return nil, err
	}
	n.sim = s
	return n, nil
}

// Sim returns the engine, for adapters that need more than the commands.
func (n *Net) Sim() *engine.Sim { return n.sim }

// Core returns node i's core as the adapter built it, or nil once it crashed.
func (n *Net) Core(i int) overlay.Core {
	if !n.sim.Alive(i) {
		return nil
	}
	return n.cores[i]
}

// Len returns the number of nodes ever added.
func (n *Net) Len() int { return len(n.names) }

// Alive reports whether node i is alive.
func (n *Net) Alive(i int) bool { return n.sim.Alive(i) }

// Step feeds input to node i at the current virtual time.
func (n *Net) Step(i int, input any) { n.sim.Step(i, input) }

// Node returns the index of the node with the given name.
func (n *Net) Node(name string) (int, error) {
	if i := slices.Index(n.names, name); i >= 0 {
		return i, nil
	}
	return -1, fmt.Errorf("no node %q", name)
}

// Nodes resolves a comma-separated list of names; "all" names every live node.
func (n *Net) Nodes(list string) ([]int, error) {
	if list == "all" {
		return n.sim.LiveNodes(), nil
	}
	var out []int
	for _, name := range strings.Split(list, ",") {
		i, err := n.Node(name)
		if err != nil {
			return nil, err
		}
		out = append(out, i)
	}
	return out, nil
}

// Name returns node i's name.
func (n *Net) Name(i int) string { return n.names[i] }

// NameOf returns the name of the node with the given ID, or "?" and a short
// ID for a node this network does not know.
func (n *Net) NameOf(id peer.ID) string {
	if i := n.sim.Lookup(id); i >= 0 {
		return n.names[i]
	}
	return "?" + id.String()[:8]
}

// NamesOf returns the names of peers, sorted, separated by spaces.
func (n *Net) NamesOf(peers []peer.Info) string {
	names := make([]string, len(peers))
	for i, p := range peers {
		names[i] = n.NameOf(p.ID)
	}
	return SortedNames(names)
}

// SortedNames sorts node names (a, b, ..., z, n26, n27, ...) and joins them
// with spaces.
func SortedNames(names []string) string {
	slices.SortFunc(names, func(x, y string) int {
		if len(x) != len(y) {
			return len(x) - len(y)
		}
		return strings.Compare(x, y)
	})
	return strings.Join(names, " ")
}

// NodeName returns the name of node i: a to z, then n26, n27, ...
func NodeName(i int) string {
	if i < 26 {
		return string(rune('a' + i))
	}
	return fmt.Sprintf("n%d", i)
}

// Handle runs one command and returns what it prints: the shared commands
// (see the package documentation), then the adapter's. An error is printed
// as "error: ..." so that scripts can expect it.
func (n *Net) Handle(c *Cmd) string {
	out, err := n.handle(c)
	if err != nil {
		return strings.TrimSpace(out + "\nerror: " + err.Error())
	}
	return out
}

func (n *Net) handle(c *Cmd) (string, error) {
	pos := c.Positional()
	switch c.Name {
	case "nodes":
		return n.addNodes(c, pos)
	case "join":
		if len(pos) != 1 && len(pos) != 2 {
			return "", errors.New("usage: join a[,b...] [contact]")
		}
		joiners, err := n.Nodes(pos[0])
		if err != nil {
			return "", err
		}
		contact := -1 // no contact: start a new network
		if len(pos) == 2 {
			if contact, err = n.Node(pos[1]); err != nil {
				return "", err
			}
		}
		for _, j := range joiners {
			if err := n.adapter.Join(n, j, contact); err != nil {
				return "", err
			}
		}
		return "", nil
	case "send":
		if len(pos) != 2 || n.adapter.Send == nil {
			return "", errors.New("usage: send node payload")
		}
		from, err := n.Node(pos[0])
		if err != nil {
			return "", err
		}
		return "", n.adapter.Send(n, from, pos[1])
	case "partition":
		var groups [][]int
		for _, g := range strings.Split(strings.Join(pos, " "), "|") {
			nodes, err := n.Nodes(strings.ReplaceAll(strings.TrimSpace(g), " ", ""))
			if err != nil {
				return "", err
			}
			groups = append(groups, nodes)
		}
		n.sim.Partition(groups...)
		return "", nil
	case "heal":
		n.sim.Heal()
		return "", nil
	case "crash":
		nodes, err := n.Nodes(strings.Join(pos, ","))
		if err != nil {
			return "", err
		}
		for _, i := range nodes {
			n.sim.Kill(i)
		}
		return "", nil
	case "drop":
		if len(pos) != 3 {
			return "", errors.New("usage: drop from to Type [n=1]")
		}
		from, err := n.Node(pos[0])
		if err != nil {
			return "", err
		}
		to, err := n.Node(pos[1])
		if err != nil {
			return "", err
		}
		count, err := c.Int("n", 1)
		if err != nil {
			return "", err
		}
		n.drops = append(n.drops, dropRule{from: from, to: to, typ: pos[2], count: count})
		return "", nil
	case "deliver":
		start := len(n.log)
		n.sim.RunFor(Latency)
		return n.formatLog(n.log[start:]), nil
	case "tick":
		if len(pos) != 1 {
			return "", errors.New("usage: tick duration")
		}
		d, err := time.ParseDuration(pos[0])
		if err != nil {
			return "", err
		}
		n.sim.RunFor(d)
		return "", nil
	case "run-until-quiet":
		limit, err := c.Duration("max", DefaultQuietLimit)
		if err != nil {
			return "", err
		}
		start := n.sim.Elapsed()
		if !n.sim.RunUntilCond(n.sim.Now().Add(limit), func() bool { return n.inFlight() == 0 }) {
			return "", fmt.Errorf("still %d messages in flight after %v", n.inFlight(), limit)
		}
		return fmt.Sprintf("quiet after %v", n.sim.Elapsed()-start), nil
	case "messages":
		log := n.log
		if len(pos) > 0 { // only the types named
			log = nil
			for _, m := range n.log {
				if slices.Contains(pos, m.typ) {
					log = append(log, m)
				}
			}
		}
		out := n.formatLog(log)
		n.log = n.log[:0]
		return out, nil
	case "counts":
		counts := map[string]int{}
		for _, m := range n.log {
			counts[m.typ]++
		}
		n.log = n.log[:0]
		var lines []string
		for typ, k := range counts {
			lines = append(lines, fmt.Sprintf("%s %d", typ, k))
		}
		slices.Sort(lines)
		return strings.Join(lines, "\n"), nil
	case "outputs":
		// By node, then in the order each node produced them: the order
		// between nodes is an accident of timing that scripts should not
		// depend on.
		slices.SortStableFunc(n.outputs, func(x, y output) int { return x.node - y.node })
		lines := make([]string, len(n.outputs))
		for k, o := range n.outputs {
			lines[k] = n.names[o.node] + ": " + o.line
		}
		n.outputs = n.outputs[:0]
		if slices.Contains(pos, "sorted") {
			slices.Sort(lines) // where each node's order is an accident too
		}
		return strings.Join(lines, "\n"), nil
	case "reset":
		n.log = n.log[:0]
		n.outputs = n.outputs[:0]
		return "", nil
	case "time":
		return n.sim.Elapsed().String(), nil
	}
	if cmd, ok := n.adapter.Commands[c.Name]; ok {
		return cmd(n, c)
	}
	return "", fmt.Errorf("unknown command %q", c.Name)
}

// addNodes adds count nodes built by the adapter.
func (n *Net) addNodes(c *Cmd, pos []string) (string, error) {
	if len(pos) != 1 {
		return "", errors.New("usage: nodes N [key=value...]")
	}
	var count int
	if _, err := fmt.Sscanf(pos[0], "%d", &count); err != nil || count < 1 {
		return "", fmt.Errorf("nodes %q: want a positive count", pos[0])
	}
	var added []string
	for range count {
		i, err := n.sim.AddNode(func(id engine.Identity) (overlay.Core, error) {
			core, err := n.adapter.New(id, c)
			if err != nil {
				return nil, err
			}
			return &recorder{Core: core, net: n, index: id.Index}, nil
		})
		if err != nil {
			return "", err
		}
		n.names = append(n.names, NodeName(i))
		n.cores = append(n.cores, n.sim.Core(i).(*recorder).Core)
		added = append(added, NodeName(i))
	}
	return "added " + strings.Join(added, " "), nil
}

// inFlight returns the number of messages sent and not yet delivered, lost
// or dropped.
func (n *Net) inFlight() int64 {
	t := n.sim.TotalStats()
	return t.MessagesSent - t.MessagesReceived - n.sim.Lost() - n.sim.Dropped()
}

// formatLog prints delivered messages, one per line, in delivery order.
func (n *Net) formatLog(log []delivered) string {
	lines := make([]string, len(log))
	for k, m := range log {
		lines[k] = fmt.Sprintf("%s -> %s %s", n.names[m.from], n.names[m.to], m.typ)
	}
	return strings.Join(lines, "\n")
}

// TypeName names a message by its Go type without pointer or package:
// "*plumtree.Gossip" is "Gossip".
func TypeName(msg any) string {
	s := strings.TrimPrefix(fmt.Sprintf("%T", msg), "*")
	if _, after, ok := strings.Cut(s, "."); ok {
		return after
	}
	return s
}

// recorder wraps a core to log the messages it receives and to lose those
// that a drop rule names.
type recorder struct {
	overlay.Core
	net   *Net
	index int
}

// Step implements overlay.Core.
func (r *recorder) Step(now time.Time, input any) {
	if rcv, ok := input.(overlay.Received); ok {
		from := r.net.sim.Lookup(rcv.From.ID)
		typ := TypeName(rcv.Msg)
		for k := range r.net.drops {
			d := &r.net.drops[k]
			if d.count > 0 && d.from == from && d.to == r.index && d.typ == typ {
				d.count--
				return
			}
		}
		if from >= 0 {
			r.net.log = append(r.net.log, delivered{from: from, to: r.index, typ: typ})
		}
	}
	r.Core.Step(now, input)
}

// Selected returns the nodes a state-printing command names (a list such as
// "a,b" as its first positional argument), or every live node.
func (n *Net) Selected(c *Cmd) ([]int, error) {
	pos := c.Positional()
	if len(pos) == 0 {
		return n.sim.LiveNodes(), nil
	}
	return n.Nodes(strings.Join(pos, ","))
}

// PerNode prints one line per selected node: its name, a colon and what
// line returns for it. Crashed nodes are skipped.
func (n *Net) PerNode(c *Cmd, line func(i int) string) (string, error) {
	nodes, err := n.Selected(c)
	if err != nil {
		return "", err
	}
	var lines []string
	for _, i := range nodes {
		if n.Alive(i) {
			lines = append(lines, n.names[i]+": "+line(i))
		}
	}
	return strings.Join(lines, "\n"), nil
}

// MustNode returns the index of a node known to exist by name; it panics
// otherwise.
func (n *Net) MustNode(name string) int {
	i, err := n.Node(name)
	if err != nil {
		panic(err)
	}
	return i
}
