package simcmd

import (
	"github.com/p2p-go/p2p/sim"
	"github.com/spf13/cobra"
)

// kvCommand returns the kv scenario's command.
func kvCommand() *cobra.Command {
	var (
		flags common
		cfg   sim.KVConfig
	)
	cmd := &cobra.Command{
		Use:   "kv",
		Short: "Nodes of gossip + replicated store: time until all agree after a write and after a partition heals",
		Args:  cobra.NoArgs,
	}
	flags.register(cmd, sim.DefaultKVNodes)
	f := cmd.Flags()
	f.IntVar(&cfg.Writes, "writes", sim.DefaultWrites, "number of timed writes")
	f.IntVar(&cfg.PartitionWrites, "partition-writes", sim.DefaultPartitionWrites, "conflicting writes per side during the partition (negative: no partition)")
	f.DurationVar(&cfg.PartitionTime, "partition-time", sim.DefaultPartitionTime, "how long the network stays split")
	f.DurationVar(&cfg.JoinInterval, "join-interval", sim.DefaultJoinInterval, "time between two joins")
	f.DurationVar(&cfg.Settle, "settle", sim.DefaultSettle, "time the overlay runs after the last join")
	f.DurationVar(&cfg.AgreeTimeout, "agree-timeout", sim.DefaultAgreeTimeout, "longest wait for agreement")
	f.DurationVar(&cfg.Store.AntiEntropyInterval, "anti-entropy", 0, "anti-entropy period (0: the package default)")
	plumtreeFlags(f, &cfg.Gossip.Plumtree)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		simCfg, err := flags.simConfig(cmd)
		if err != nil {
			return err
		}
		cfg.Sim = simCfg
		cfg.Nodes = flags.nodes
		result, err := sim.RunKV(cfg)
		if err != nil {
			return err
		}
		return flags.output(cmd, result)
	}
	return cmd
}
