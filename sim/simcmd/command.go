package simcmd

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/p2p-go/p2p/gossip"
	"github.com/p2p-go/p2p/plumtree"
	"github.com/p2p-go/p2p/sim"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// common holds the flags every scenario shares.
type common struct {
	nodes    int
	seed     uint64
	latency  string
	loss     float64
	detect   time.Duration
	bytes    bool
	jsonPath string
	plotPath string
	quiet    bool
	workers  int
}

// register adds the shared flags to cmd.
func (c *common) register(cmd *cobra.Command, defaultNodes int) {
	f := cmd.Flags()
	f.IntVar(&c.nodes, "nodes", defaultNodes, "number of simulated nodes")
	f.Uint64Var(&c.seed, "seed", 1, "seed of every random choice; a run is repeatable with the same seed")
	f.StringVar(&c.latency, "latency", "fixed:20ms", "one-way link latency: fixed:D, uniform:MIN,MAX or normal:MEAN,STDDEV")
	f.Float64Var(&c.loss, "loss", 0, "probability that a message is lost, in [0, 1)")
	f.DurationVar(&c.detect, "detect", 0, "delay before a broken link is reported to the surviving end (0: one round trip)")
	f.BoolVar(&c.bytes, "bytes", false, "count bytes on the wire (encodes every message: slower)")
	f.StringVar(&c.jsonPath, "json-out", "", "write the full result as JSON to this file")
	// --json is the client commands' switch for JSON output; the
	// simulator's file flag was once spelt --json and still works.
	f.StringVar(&c.jsonPath, "json", "", "")
	_ = f.MarkDeprecated("json", "use --json-out FILE (--json is a switch in the other commands)")
	f.StringVar(&c.plotPath, "plot", "", "write charts as SVG to this file")
	f.BoolVar(&c.quiet, "quiet", false, "no progress line on stderr")
}

// registerWorkers adds the --workers flag, for the scenarios whose
// observers only measure (the windowed engine calls them after each
// window).
func (c *common) registerWorkers(cmd *cobra.Command) {
	cmd.Flags().IntVar(&c.workers, "workers", defaultWorkers(),
		"goroutines stepping nodes at once: 1 runs the sequential engine; 2 or more the windowed parallel engine, "+
			"whose results are the same for a given --seed whatever the number of workers (2 or more) but differ from the sequential engine's; "+
			"the default is the number of CPUs, at least 2, so that the default output is the same on every machine")
}

// defaultWorkers is the default of --workers: the number of CPUs, at least
// 2, so that the default run is the windowed engine's on every machine.
func defaultWorkers() int { return max(runtime.NumCPU(), 2) }

// simConfig builds the engine configuration from the flags.
func (c *common) simConfig(cmd *cobra.Command) (sim.Config, error) {
	latency, err := sim.ParseLatency(c.latency)
	if err != nil {
		return sim.Config{}, fmt.Errorf("--latency: %w", err)
	}
	if c.workers < 0 {
		return sim.Config{}, fmt.Errorf("--workers %d is negative", c.workers)
	}
	cfg := sim.Config{Seed: c.seed, Latency: latency, Loss: c.loss, DetectDelay: c.detect, CountBytes: c.bytes, Workers: c.workers}
	if !c.quiet {
		cfg.Progress = cmd.ErrOrStderr()
	}
	return cfg, nil
}

// report is what every scenario result offers.
type report interface {
	WriteTable(w io.Writer) error
	Charts() []sim.Chart
}

// output prints the table and writes the JSON and SVG files asked for.
func (c *common) output(cmd *cobra.Command, result report) error {
	if err := result.WriteTable(cmd.OutOrStdout()); err != nil {
		return err
	}
	if c.jsonPath != "" {
		data, err := json.MarshalIndent(result, "", "  ")
		if err != nil {
			return fmt.Errorf("encode JSON: %w", err)
		}
		if err := os.WriteFile(c.jsonPath, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("write --json-out: %w", err)
		}
	}
	if c.plotPath != "" {
		file, err := os.Create(c.plotPath)
		if err != nil {
			return fmt.Errorf("write --plot: %w", err)
		}
		if err := sim.WriteSVG(file, result.Charts()...); err != nil {
			file.Close()
			return fmt.Errorf("write --plot: %w", err)
		}
		if err := file.Close(); err != nil {
			return fmt.Errorf("write --plot: %w", err)
		}
	}
	return nil
}

// Command returns the "sim" command with its scenario subcommands.
func Command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Simulate thousands of nodes in one process with a virtual clock",
		Long: `sim drives the very protocol cores that real nodes run, thousands of them in one
process, on a modelled network (latency, loss, partitions, crashes) with a
virtual clock. A run with a given --seed is repeatable exactly.`,
	}
	cmd.AddCommand(broadcastCommand(false), broadcastCommand(true), kademliaCommand(), kvCommand())
	return cmd
}

// broadcastCommand returns the broadcast scenario's command, or massfail's.
func broadcastCommand(massfail bool) *cobra.Command {
	var (
		flags   common
		cfg     sim.BroadcastConfig
		profile profiling
	)
	cmd := &cobra.Command{
		Use:   "broadcast",
		Short: "Nodes join a gossip overlay, then broadcast: delivery, RMR, hops, latency, bytes",
		Args:  cobra.NoArgs,
	}
	if massfail {
		cmd.Use = "massfail"
		cmd.Short = "As broadcast, but a share of the nodes crashes at once before the messages"
	}
	flags.register(cmd, sim.DefaultNodes)
	flags.registerWorkers(cmd)
	profile.register(cmd)
	f := cmd.Flags()
	messages, interval := sim.DefaultMessages, sim.DefaultMessageInterval
	if massfail {
		messages, interval = 30, sim.DefaultMassFailInterval
		f.Float64Var(&cfg.KillFraction, "kill", 0.5, "share of the nodes killed at once, in (0, 1)")
	}
	f.IntVar(&cfg.Messages, "messages", messages, "number of broadcasts, from random live nodes")
	f.IntVar(&cfg.PayloadSize, "payload", sim.DefaultPayloadSize, "payload size in bytes")
	f.DurationVar(&cfg.JoinInterval, "join-interval", sim.DefaultJoinInterval, "time between two joins")
	f.DurationVar(&cfg.Settle, "settle", sim.DefaultSettle, "time the overlay runs after the last join before measuring")
	f.DurationVar(&cfg.MessageInterval, "interval", interval, "time between two broadcasts")
	if !massfail {
		f.Float64Var(&cfg.ChurnFraction, "churn", 0, "share of the nodes replaced (crashed and joined anew, one at a time over 10 s) after settling, before the messages, in [0, 1)")
	}
	f.DurationVar(&cfg.Drain, "drain", sim.DefaultDrain, "longest wait for deliveries after the last broadcast")
	var (
		protocol  string
		tree      plumtree.Config
		treeShape string
	)
	f.StringVar(&protocol, "protocol", "gossip", "overlay: gossip (the Broadcaster core: member list included) or plumtree (Plumtree over HyParView alone, as in the papers)")
	f.StringVar(&treeShape, "tree", "relay", "how Plumtree shapes its tree: relay (the default: a breadth-first tree from the smallest ID, and each broadcast also sent straight to its root), rooted (the tree without the relay) or paper (prune on duplicate)")
	plumtreeFlags(f, &tree)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		simCfg, err := flags.simConfig(cmd)
		if err != nil {
			return err
		}
		if massfail && cfg.KillFraction <= 0 {
			return fmt.Errorf("--kill must be in (0, 1), got %v", cfg.KillFraction)
		}
		cfg.Sim = simCfg
		cfg.Nodes = flags.nodes
		shape, ok := map[string]gossip.TreeShape{"relay": gossip.TreeRootedRelay, "rooted": gossip.TreeRooted, "paper": gossip.TreePaper}[treeShape]
		if !ok {
			return fmt.Errorf("--tree %q: want relay, rooted or paper", treeShape)
		}
		switch protocol {
		case "gossip":
			cfg.Protocol = sim.GossipProtocol{Config: gossip.Config{Plumtree: tree, Tree: shape}}
		case "plumtree":
			tree.RootedTree = shape != gossip.TreePaper
			tree.RelayToRoot = shape == gossip.TreeRootedRelay
			cfg.Protocol = sim.PlumtreeProtocol{Plumtree: tree}
		default:
			return fmt.Errorf("--protocol %q: want gossip or plumtree", protocol)
		}
		result, err := profile.run(cmd, cfg.Nodes, func() (report, error) { return sim.RunBroadcast(cfg) })
		if err != nil {
			return err
		}
		return flags.output(cmd, result)
	}
	return cmd
}

// plumtreeFlags registers the Plumtree timers and optimisation flags shared
// by the scenarios that broadcast.
func plumtreeFlags(f *pflag.FlagSet, tree *plumtree.Config) {
	f.DurationVar(&tree.IHaveTimeout, "ihave-timeout", 0, "Plumtree timer 1 (0: the package default)")
	f.DurationVar(&tree.GraftTimeout, "graft-timeout", 0, "Plumtree timer 2 (0: the package default)")
	f.DurationVar(&tree.LazyBatchInterval, "lazy-batch", 0, "Plumtree IHAVE batching interval (0: the package default)")
	f.IntVar(&tree.OptimizationThreshold, "optimize", 0, "Plumtree optimisation threshold in hops (0: off)")
}
