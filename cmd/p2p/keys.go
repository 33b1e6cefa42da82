package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/p2p-go/p2p/agent"
)

func init() { extraCommands = append(extraCommands, newKeysCommand) }

func newKeysCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "List and rotate the cluster secrets of every member (list, install, use, remove)",
		Long: `Manage the keyring of every member through the local agent: the
operation is broadcast, every member applies it, saves its keyring in its data
directory (keyring.json, mode 0600) and answers; the command prints who applied
it and who did not, and fails unless every member did.

A rotation without downtime:
  p2p keygen -o new.secret
  p2p keys install --key-file new.secret    # accepted from peers everywhere
  p2p keys use --key-file new.secret        # used to dial everywhere
  p2p keys remove --key-file old.secret     # refused from then on

The primary key cannot be removed. A restarted agent uses its saved keyring,
whatever --secret says.`,
	}
	cmd.AddCommand(newKeysListCommand())
	for _, op := range []struct{ name, short string }{
		{"install", "Install a cluster secret on every member (accepted from peers; the primary stays)"},
		{"use", "Make an installed secret the primary one on every member (used to dial)"},
		{"remove", "Remove a cluster secret from every member (the primary cannot be removed)"},
	} {
		cmd.AddCommand(newKeyOpCommand(op.name, op.short))
	}
	return cmd
}

func newKeysListCommand() *cobra.Command {
	var o clientOptions
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the secrets installed on the members, with how many hold and use each",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := callContext(cmd)
			defer cancel()
			resp, err := o.client().Keys(ctx)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if o.asJSON {
				return printJSON(out, resp)
			}
			keys := make([]string, 0, len(resp.Keys))
			for k := range resp.Keys {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY\tINSTALLED ON\tPRIMARY ON")
			for _, k := range keys {
				fmt.Fprintf(tw, "%s\t%d/%d\t%d\n", k, resp.Keys[k], resp.Members, resp.Primary[k])
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			return keysOutcome(out, "list", resp)
		},
	}
	o.register(cmd)
	return cmd
}

func newKeyOpCommand(op, short string) *cobra.Command {
	var o clientOptions
	var keyFile string
	cmd := &cobra.Command{
		Use:   op + " [KEY]",
		Short: short,
		Long: short + `.

The secret comes from --key-file (a file written by "p2p keygen -o", which
keeps it out of the process list) or from the argument.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := keyArgument(cmd, args, keyFile)
			if err != nil {
				return err
			}
			ctx, cancel := callContext(cmd)
			defer cancel()
			resp, err := o.client().KeyOp(ctx, op, key)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if o.asJSON {
				if err := printJSON(out, resp); err != nil {
					return err
				}
				if !resp.Complete() {
					return fmt.Errorf("%s: not applied on every member", op)
				}
				return nil
			}
			return keysOutcome(out, op, resp)
		},
	}
	o.register(cmd)
	cmd.Flags().StringVar(&keyFile, "key-file", "", "file holding the secret (from p2p keygen -o)")
	return cmd
}

// keyArgument returns the secret from --key-file or the argument.
func keyArgument(cmd *cobra.Command, args []string, keyFile string) (string, error) {
	switch {
	case keyFile != "" && len(args) > 0:
		return "", errors.New("give the secret as an argument or with --key-file, not both")
	case keyFile != "":
		return agent.ReadSecretFile(slogTo(cmd.ErrOrStderr()), keyFile, "cluster secret")
	case len(args) == 1:
		return args[0], nil
	}
	return "", errors.New("which secret? give it with --key-file FILE (from p2p keygen -o) or as an argument")
}

// keysOutcome prints who applied an operation and fails unless everyone
// did.
func keysOutcome(out io.Writer, op string, resp agent.KeysResponse) error {
	fmt.Fprintf(out, "%s: applied on %d of %d members\n", op, len(resp.Applied), resp.Members)
	for _, m := range resp.Failed {
		fmt.Fprintf(out, "  refused by %s %s (%s): %s\n", nameOr(m), short(m.ID), m.Addr, m.Error)
	}
	for _, m := range resp.NoAnswer {
		fmt.Fprintf(out, "  no answer from %s %s (%s)\n", nameOr(m), short(m.ID), m.Addr)
	}
	if !resp.Complete() {
		return fmt.Errorf("%s: %d members refused, %d did not answer", op, len(resp.Failed), len(resp.NoAnswer))
	}
	return nil
}

func nameOr(m agent.KeyMember) string {
	if m.Name == "" {
		return "-"
	}
	return m.Name
}
