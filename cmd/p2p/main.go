package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/p2p-go/p2p/sim/simcmd"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		// The library's errors start with "p2p: " too: say it once.
		fmt.Fprintln(os.Stderr, "p2p:", strings.TrimPrefix(err.Error(), "p2p: "))
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
	for _, newCommand := range extraCommands {
		root.AddCommand(newCommand())
	}
	return root
}

// extraCommands are added by the other files of this package (the agent and
// its client commands) from their init functions.
// Each is a constructor, so that every root command gets fresh flags.
var extraCommands []func() *cobra.Command

func newKeygenCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Make a new cluster secret: print it, or write it to a file (-o) readable by you alone",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			secret := p2pGenerateSecret()
			if output == "" {
				warnLooseOutput(cmd)
				fmt.Fprintln(cmd.OutOrStdout(), secret)
				return nil
			}
			return writeNewSecretFile(output, secret)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the secret to this new file, mode 0600 (an existing file is never overwritten)")
	return cmd
}

// warnLooseOutput tells the user of `p2p keygen > FILE` when FILE may be
// read by other users (the shell creates it 0644 under the usual umask),
// and what to run instead.
func warnLooseOutput(cmd *cobra.Command) {
	f, ok := cmd.OutOrStdout().(*os.File)
	if !ok {
		return
	}
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() || info.Mode().Perm()&0o077 == 0 {
		return
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "keygen: the secret goes to a file readable by other users (mode %#o): run chmod 600 on it, or use p2p keygen -o FILE, which writes mode 0600\n", info.Mode().Perm())
}

// writeNewSecretFile creates path, mode 0600, with secret and a newline; it
// refuses to replace an existing file, which may hold the secret a cluster
// runs on.
func writeNewSecretFile(path, secret string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("keygen: %s already exists; it may hold the secret a cluster uses: remove it first or choose another name", path)
		}
		return fmt.Errorf("keygen: %w", err)
	}
	if _, err := fmt.Fprintln(f, secret); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("keygen: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("keygen: write %s: %w", path, err)
	}
	return f.Close()
}
