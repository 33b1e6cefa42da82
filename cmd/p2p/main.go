// Command p2p is the framework's binary: it runs a node, an agent with a
// local HTTP API, the agent's CLI, and the simulator.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/p2p-go/p2p/sim/simcmd"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "p2p:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "p2p",
		Short:         "A light peer-to-peer framework: broadcast, membership and replicated configuration",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildVersion(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(newRunCommand(), newKeygenCommand(), newVersionCommand(), simcmd.Command())
	root.AddCommand(extraCommands...)
	return root
}

// extraCommands are added by the other files of this package (the agent and
// its client commands) from their init functions.
var extraCommands []*cobra.Command

func newKeygenCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "keygen",
		Short: "Print a new cluster secret",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), p2pGenerateSecret())
			return nil
		},
	}
}
