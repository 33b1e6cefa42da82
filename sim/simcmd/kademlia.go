package simcmd

import (
	"time"

	"github.com/p2p-go/p2p/sim"
	"github.com/spf13/cobra"
)

// kademliaCommand returns the kademlia scenario's command.
func kademliaCommand() *cobra.Command {
	var (
		flags common
		cfg   sim.KademliaConfig
	)
	cmd := &cobra.Command{
		Use:   "kademlia",
		Short: "Kademlia nodes bootstrap, then lookups and records: hops, messages, success vs the true k closest",
		Args:  cobra.NoArgs,
	}
	flags.register(cmd, sim.DefaultNodes)
	flags.registerWorkers(cmd)
	f := cmd.Flags()
	f.IntVar(&cfg.Lookups, "lookups", sim.DefaultLookups, "number of lookups of random IDs")
	f.IntVar(&cfg.Records, "records", sim.DefaultRecords, "number of records stored and fetched (negative: none)")
	f.Float64Var(&cfg.ChurnRate, "churn", 0, "nodes killed and nodes joined per second of virtual time during the measurements")
	f.DurationVar(&cfg.JoinInterval, "join-interval", sim.DefaultJoinInterval, "time between two bootstraps")
	f.DurationVar(&cfg.Settle, "settle", sim.DefaultKadSettle, "time the network runs after the last bootstrap")
	f.IntVar(&cfg.Kademlia.K, "k", 0, "bucket size and replication factor (0: the package default)")
	f.IntVar(&cfg.Kademlia.Alpha, "alpha", 0, "lookup parallelism (0: the package default)")
	f.DurationVar(&cfg.Kademlia.RPCTimeout, "rpc-timeout", 0, "request timeout (0: the package default)")
	f.DurationVar(&cfg.LookupTimeout, "lookup-timeout", 30*time.Second, "longest wait for one lookup's answer")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		simCfg, err := flags.simConfig(cmd)
		if err != nil {
			return err
		}
		cfg.Sim = simCfg
		cfg.Nodes = flags.nodes
		result, err := sim.RunKademlia(cfg)
		if err != nil {
			return err
		}
		return flags.output(cmd, result)
	}
	return cmd
}
