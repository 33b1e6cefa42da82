package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/p2p-go/p2p/agent"
)

func init() { extraCommands = append(extraCommands, newAgentCommand) }

func newAgentCommand() *cobra.Command {
	var configFile string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the p2p agent: a node with a local HTTP API, handlers and synced files",
		Long: `Run the p2p agent in the foreground: a node of the network with a local HTTP
API (docs/api.md) that the other p2p subcommands, scripts and programs call.

Settings come from a JSON configuration file (--config or $P2P_CONFIG: an
object whose keys are the flag names below, lists as JSON arrays), from
environment variables (named in brackets below; lists comma-separated,
P2P_HANDLERS newline-separated), and from flags (list flags repeat). Flags win over the environment, which wins over the file.

While it runs, the agent serves a cluster page at its API address
(http://127.0.0.1:6967/ by default) and locks its data directory
(agent.lock holds its PID).

On start the agent prints its node ID and its actual addresses on standard
output ("id ...", "addr ...", "api ...") and writes them to agent.json in the
data directory. SIGINT and SIGTERM leave the network politely. SIGHUP re-reads
the file and applies log-level, name, tag, handler and sync; the other
settings need a restart.

Handlers (--handler FILTER=COMMAND, run with /bin/sh -c; the data on stdin):
  msg, msg:broadcast, msg:direct     messages received
  member, member:join|leave|fail     membership changes
  kv, kv:PREFIX                      key changes (puts and deletes)
  sync, sync:PREFIX                  records learnt while catching up with
                                     the network (written before this agent
                                     started, or deletes of keys it never
                                     held): kv handlers do not get them
Keys under _agent/ (the agents' names and tags) reach only handlers whose
PREFIX starts with _agent/.
Environment of a handler: P2P_EVENT, P2P_NODE_ID, P2P_NODE_NAME, and
P2P_FROM, P2P_FROM_ADDR, P2P_DIRECT, P2P_HOPS (messages), P2P_MEMBER_ID,
P2P_MEMBER_ADDR (members), P2P_KEY, P2P_VERSION, P2P_WRITER (keys).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			src := agent.Sources{File: configFile, Env: os.LookupEnv, Flags: map[string][]string{}}
			if src.File == "" {
				src.File = os.Getenv("P2P_CONFIG")
			}
			for _, s := range agent.Settings() {
				f := cmd.Flags().Lookup(s.Name)
				if f == nil || !f.Changed {
					continue
				}
				if s.List {
					values, _ := cmd.Flags().GetStringArray(s.Name)
					src.Flags[s.Name] = values
				} else {
					src.Flags[s.Name] = []string{f.Value.String()}
				}
			}
			return runAgent(cmd, src)
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "JSON configuration file (default $P2P_CONFIG)")
	for _, s := range agent.Settings() {
		usage := s.Usage + " [$" + s.Env + "]"
		if s.Default != "" && !s.Bool {
			usage += " (default " + s.Default + ")"
		}
		switch {
		case s.Bool:
			cmd.Flags().Bool(s.Name, false, usage)
		case s.List:
			cmd.Flags().StringArray(s.Name, nil, usage)
		case s.Type == "int":
			cmd.Flags().Int(s.Name, 0, usage)
		case s.Type == "duration":
			cmd.Flags().Duration(s.Name, 0, usage)
		default:
			cmd.Flags().String(s.Name, "", usage)
		}
	}
	return cmd
}

func runAgent(cmd *cobra.Command, src agent.Sources) error {
	cfg, err := agent.LoadConfig(src)
	if err != nil {
		return err
	}
	cfg.LogOutput = cmd.ErrOrStderr()
	// Subscribe before starting so that no signal is lost.
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(signals)

	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	if err := a.Start(); err != nil {
		a.Close()
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "id %s\naddr %s\napi %s\n", a.Node().ID(), a.Node().Addr(), a.APIAddr())
	for sig := range signals {
		if sig != syscall.SIGHUP {
			a.Logger().Info("leaving the network", "signal", sig.String())
			return a.Close()
		}
		next, err := agent.LoadConfig(src)
		if err == nil {
			next.LogOutput = cfg.LogOutput
			err = a.Reload(next)
		}
		if err != nil {
			a.Logger().Error("reload failed; configuration unchanged", "err", err)
		}
	}
	return nil
}

// envName is the environment variable of a client option.
func envName(flag string) string {
	return "P2P_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}
