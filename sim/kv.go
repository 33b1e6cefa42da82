package sim

import (
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/p2p-go/p2p/gossip"
	"github.com/p2p-go/p2p/internal/stack"
	"github.com/p2p-go/p2p/kv"
	"github.com/p2p-go/p2p/overlay"
)

// Defaults of KVConfig.
const (
	DefaultKVNodes         = 200
	DefaultWrites          = 20
	DefaultPartitionWrites = 5
	DefaultPartitionTime   = 20 * time.Second
	DefaultAgreeTimeout    = 2 * time.Minute
	DefaultDigestCheck     = 50 * time.Millisecond
)

// KVConfig configures the kv scenario. Zero fields take the defaults.
type KVConfig struct {
	// Sim configures the engine (Workers is ignored: the kv scenario runs
	// on the sequential engine).
	Sim Config
	// Gossip and Store are the templates of every node's configuration;
	// Self, Seed and Backend (an in-memory one) are set per node.
	Gossip gossip.Config
	Store  kv.Config
	// Nodes is the number of nodes (default 200).
	Nodes int
	// Writes is the number of writes, one at a time from random nodes to
	// random keys, each timed until every node has it (default 20).
	Writes int
	// PartitionWrites is the number of writes made on each side of the
	// partition, to the same keys so that they conflict (default 5;
	// negative: no partition phase).
	PartitionWrites int
	// PartitionTime is how long the network stays split in two halves
	// (default 20 s).
	PartitionTime time.Duration
	// JoinInterval staggers the joins (default 10 ms); Settle is how long
	// the overlay runs before measuring (default 30 s).
	JoinInterval time.Duration
	Settle       time.Duration
	// AgreeTimeout bounds each wait for agreement (default 2 min).
	AgreeTimeout time.Duration
}

// withDefaults returns a copy of c with the zero fields filled, or an error
// wrapping ErrConfig that names the invalid field.
func (c KVConfig) withDefaults() (KVConfig, error) {
	for _, field := range []struct {
		name     string
		negative bool
	}{
		{"Nodes", c.Nodes < 0},
		{"Writes", c.Writes < 0},
		{"PartitionTime", c.PartitionTime < 0},
		{"JoinInterval", c.JoinInterval < 0},
		{"Settle", c.Settle < 0},
		{"AgreeTimeout", c.AgreeTimeout < 0},
	} {
		if field.negative {
			return c, fmt.Errorf("%w: KVConfig.%s is negative", ErrConfig, field.name)
		}
	}
	setInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	setDuration := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	setInt(&c.Nodes, DefaultKVNodes)
	setInt(&c.Writes, DefaultWrites)
	setInt(&c.PartitionWrites, DefaultPartitionWrites)
	setDuration(&c.PartitionTime, DefaultPartitionTime)
	setDuration(&c.JoinInterval, DefaultJoinInterval)
	setDuration(&c.Settle, DefaultSettle)
	setDuration(&c.AgreeTimeout, DefaultAgreeTimeout)
	if c.Nodes < 2 {
		return c, fmt.Errorf("%w: KVConfig.Nodes %d: need at least 2", ErrConfig, c.Nodes)
	}
	return c, nil
}

// KVResult is what the kv scenario measured.
type KVResult struct {
	Nodes   int     `json:"nodes"`
	Seed    uint64  `json:"seed"`
	Latency string  `json:"latency"`
	Loss    float64 `json:"loss"`
	// Writes is the number of single writes timed; Agreed how many reached
	// every node within the timeout.
	Writes int `json:"writes"`
	Agreed int `json:"agreed"`
	// AgreeP50Ms, AgreeP99Ms and AgreeMaxMs are percentiles over the
	// writes of the time until every node held the write.
	AgreeP50Ms float64 `json:"agree_p50_ms"`
	AgreeP99Ms float64 `json:"agree_p99_ms"`
	AgreeMaxMs float64 `json:"agree_max_ms"`
	// Partition holds the partition phase's figures (nil when skipped).
	Partition *KVPartitionResult `json:"partition,omitempty"`
	// AntiEntropyBytes and AntiEntropyRounds are the sums of the stores'
	// counters over the run.
	AntiEntropyBytes  uint64    `json:"anti_entropy_bytes"`
	AntiEntropyRounds uint64    `json:"anti_entropy_rounds"`
	RecordsRepaired   uint64    `json:"records_repaired"`
	EndMs             float64   `json:"end_ms"`
	Events            uint64    `json:"events"`
	Resources         Resources `json:"resources"`
	agreeTimes        []float64
}

// KVPartitionResult is the partition phase of the kv scenario.
type KVPartitionResult struct {
	// SideA and SideB are the sizes of the two halves.
	SideA int `json:"side_a"`
	SideB int `json:"side_b"`
	// WritesPerSide were made on each side, to the same keys.
	WritesPerSide int `json:"writes_per_side"`
	// DivergedAtHeal reports whether the two sides' digests differed when
	// the partition healed (they should, having taken different writes).
	DivergedAtHeal bool `json:"diverged_at_heal"`
	// Converged reports whether every node held an identical store (equal
	// digests) within the timeout after healing; ConvergeMs is when.
	Converged  bool    `json:"converged"`
	ConvergeMs float64 `json:"converge_ms"`
	// Keys is the number of keys every node held at the end.
	Keys int `json:"keys"`
}

// kvRun is the state of one kv run.
type kvRun struct {
	cfg     KVConfig
	sim     *Sim
	nextReq uint64
	// watching is the key and version being waited for, and who has it.
	watchKey     string
	watchVersion kv.Version
	watchSeen    bitset
	watchCount   int
	phase        string
	// backends holds each node's in-memory backend, by node index.
	backends []*kv.Memory
}

// RunKV runs the kv scenario: cfg.Nodes nodes of gossip plus the replicated
// store join and settle; then writes from random nodes are timed until every
// node holds them; then the network is split in two halves that both write
// the same keys, healed, and timed until every node holds an identical store.
func RunKV(cfg KVConfig) (*KVResult, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	wallClock := cfg.Sim.Clock()
	wallStart := wallClock()
	run := &kvRun{cfg: cfg, phase: "joining"}
	simCfg := cfg.Sim
	// The observer below steps the node that asked to persist, at once:
	// the windowed engine would call it after the window.
	simCfg.Workers = 0
	userObserver := simCfg.Observer
	simCfg.Observer = func(now time.Time, node int, out any) {
		if p, ok := out.(kv.Persist); ok {
			// The node's runtime half: write to its in-memory backend,
			// at once (virtual time does not pass), before the outputs
			// after it.
			// Stepping the outcome releases the outputs the stack
			// held for it (the write's Result, its broadcast).
			run.sim.Step(node, kv.Persisted{Seq: p.Seq, Err: p.WriteTo(run.backends[node])})
		}
		if c, ok := out.(kv.Changed); ok && c.Record.Key == run.watchKey && c.Record.Version == run.watchVersion && !run.watchSeen.has(node) {
			run.watchSeen.set(node)
			run.watchCount++
		}
		if userObserver != nil {
			userObserver(now, node, out)
		}
	}
	simCfg.Status = func() string { return run.phase }
	s, err := New(simCfg)
	if err != nil {
		return nil, err
	}
	run.sim = s
	defer s.FinishProgress()

	if err := s.AddStaggered(cfg.Nodes, cfg.JoinInterval, run.addNode); err != nil {
		return nil, err
	}
	s.RunFor(cfg.Settle)
	result := &KVResult{Nodes: cfg.Nodes, Seed: cfg.Sim.Seed, Latency: s.Latency().String(), Loss: cfg.Sim.Loss, Writes: cfg.Writes}

	run.phase = "writes"
	for w := range cfg.Writes {
		took, ok := run.timedWrite(w)
		if ok {
			result.Agreed++
			result.agreeTimes = append(result.agreeTimes, ms(took))
		}
		s.RunFor(time.Second)
	}
	slices.Sort(result.agreeTimes)
	result.AgreeP50Ms, result.AgreeP99Ms = percentile(result.agreeTimes, 0.5), percentile(result.agreeTimes, 0.99)
	if n := len(result.agreeTimes); n > 0 {
		result.AgreeMaxMs = result.agreeTimes[n-1]
	}
	if cfg.PartitionWrites > 0 {
		result.Partition = run.partition()
	}
	for _, i := range s.LiveNodes() {
		st := s.Core(i).(*stack.Node).Store.Stats()
		result.AntiEntropyBytes += st.AntiEntropyBytes
		result.AntiEntropyRounds += st.AntiEntropyRounds
		result.RecordsRepaired += st.RecordsRepaired
	}
	result.EndMs = ms(s.Elapsed())
	result.Events = s.Events()
	result.Resources = Measure(s.Len(), wallStart, wallClock)
	return result, nil
}

// addNode adds a node of gossip plus store and joins it through a random
// live node.
func (run *kvRun) addNode() error {
	s := run.sim
	var contacts []string
	if s.LiveCount() > 0 {
		contacts = []string{s.Info(s.RandomLive()).Addr}
	}
	backend := kv.NewMemory()
	index, err := s.AddNode(func(id Identity) (overlay.Core, error) {
		gcfg := run.cfg.Gossip
		gcfg.Self, gcfg.Seed = id.Info, id.Seed
		g, err := gossip.New(gcfg)
		if err != nil {
			return nil, err
		}
		kcfg := run.cfg.Store
		kcfg.Key, kcfg.Seed, kcfg.Backend = id.Key, id.Seed^0x6b76, backend
		store, err := kv.New(kcfg)
		if err != nil {
			return nil, err
		}
		return stack.New(g, store), nil
	})
	if err != nil {
		return err
	}
	for len(run.backends) <= index {
		run.backends = append(run.backends, nil)
	}
	run.backends[index] = backend
	s.Step(index, gossip.Join{Contacts: contacts})
	return nil
}

// write makes node write value to key and returns the version written.
func (run *kvRun) write(node int, key string, value []byte) (kv.Version, bool) {
	run.nextReq++
	store := run.sim.Core(node).(*stack.Node)
	run.sim.Step(node, kv.Put{ReqID: run.nextReq, Key: key, Value: value})
	record, ok := store.Store.Get(key)
	return record.Version, ok
}

// timedWrite writes from a random node and runs until every live node holds
// the write, or the timeout.
func (run *kvRun) timedWrite(w int) (time.Duration, bool) {
	s := run.sim
	node := s.RandomLive()
	key := fmt.Sprintf("config/key-%d", s.Rand().IntN(max(run.cfg.Writes/2, 1)))
	run.watchKey, run.watchSeen, run.watchCount = key, nil, 0
	// The writer's own Changed comes out during the Put; watch for the
	// version it will carry by reading it back right after.
	start := s.Elapsed()
	version, ok := run.write(node, key, fmt.Appendf(nil, "value %d from node %d", w, node))
	if !ok {
		return 0, false
	}
	run.watchVersion = version
	if !run.watchSeen.has(node) {
		run.watchSeen.set(node)
		run.watchCount++
	}
	agreed := s.RunUntilCond(s.Now().Add(run.cfg.AgreeTimeout), func() bool { return run.watchCount >= s.LiveCount() })
	run.watchKey = ""
	return s.Elapsed() - start, agreed
}

// partition splits the nodes in two halves, writes the same keys on both
// sides, heals and times the convergence of every node's digest.
func (run *kvRun) partition() *KVPartitionResult {
	s, cfg := run.sim, run.cfg
	run.phase = "partitioned"
	live := s.LiveNodes()
	s.Rand().Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
	sideA, sideB := live[:len(live)/2], live[len(live)/2:]
	s.Partition(sideA, sideB)
	p := &KVPartitionResult{SideA: len(sideA), SideB: len(sideB), WritesPerSide: cfg.PartitionWrites}
	step := cfg.PartitionTime / time.Duration(cfg.PartitionWrites+1)
	for k := range cfg.PartitionWrites {
		s.RunFor(step)
		key := fmt.Sprintf("config/partitioned-%d", k)
		for side, nodes := range [][]int{sideA, sideB} {
			node := nodes[s.Rand().IntN(len(nodes))]
			run.write(node, key, fmt.Appendf(nil, "side %d write %d", side, k))
		}
	}
	s.RunFor(cfg.PartitionTime - time.Duration(cfg.PartitionWrites)*step)
	p.DivergedAtHeal = run.digest(sideA[0]) != run.digest(sideB[0])
	run.phase = "healing"
	s.Heal()
	healedAt := s.Elapsed()
	deadline := s.Now().Add(cfg.AgreeTimeout)
	for s.Now().Before(deadline) {
		if run.allAgree() {
			p.Converged = true
			break
		}
		s.RunFor(DefaultDigestCheck)
	}
	p.ConvergeMs = ms(s.Elapsed() - healedAt)
	p.Keys = s.Core(s.LiveNodes()[0]).(*stack.Node).Store.Len()
	return p
}

// digest returns node's store digest.
func (run *kvRun) digest(node int) [32]byte { return run.sim.Core(node).(*stack.Node).Store.Digest() }

// allAgree reports whether every live node's digest is the same.
func (run *kvRun) allAgree() bool {
	live := run.sim.LiveNodes()
	first := run.digest(live[0])
	for _, i := range live[1:] {
		if run.digest(i) != first {
			return false
		}
	}
	return true
}

// WriteTable prints the result as a readable table.
func (r *KVResult) WriteTable(w io.Writer) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "scenario\tkv (gossip + replicated store)\n")
	fmt.Fprintf(tw, "nodes\t%d (seed %d, latency %s, loss %g)\n", r.Nodes, r.Seed, r.Latency, r.Loss)
	fmt.Fprintf(tw, "writes\t%d, %d reached every node\n", r.Writes, r.Agreed)
	fmt.Fprintf(tw, "time until all nodes hold a write\tp50 %.0f ms, p99 %.0f ms, max %.0f ms\n", r.AgreeP50Ms, r.AgreeP99Ms, r.AgreeMaxMs)
	if p := r.Partition; p != nil {
		fmt.Fprintf(tw, "partition\t%d | %d nodes, %d conflicting writes per side, diverged at heal: %v\n", p.SideA, p.SideB, p.WritesPerSide, p.DivergedAtHeal)
		if p.Converged {
			fmt.Fprintf(tw, "identical stores after heal\tafter %.0f ms (%d keys everywhere)\n", p.ConvergeMs, p.Keys)
		} else {
			fmt.Fprintf(tw, "identical stores after heal\tNOT within %.0f ms\n", p.ConvergeMs)
		}
	}
	fmt.Fprintf(tw, "anti-entropy\t%d rounds, %d bytes, %d records repaired\n", r.AntiEntropyRounds, r.AntiEntropyBytes, r.RecordsRepaired)
	writeResources(tw, r.Resources, r.Events)
	return tw.Flush()
}

// Charts returns the distribution of the agreement times.
func (r *KVResult) Charts() []Chart {
	var points []Point
	for i, t := range r.agreeTimes {
		points = append(points, Point{t, float64(i+1) / float64(max(r.Writes, 1))})
	}
	return []Chart{{
		Title: fmt.Sprintf("kv, %d nodes: time until every node holds a write", r.Nodes), XLabel: "ms after the write",
		YLabel: "share of writes", YMax: 1, Series: []Series{{Name: "writes", Points: points}},
	}}
}
