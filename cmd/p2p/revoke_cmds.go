package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/p2p-go/p2p/agent"
	"github.com/p2p-go/p2p/peer"
)

// newRevokeCommand is `p2p members revoke`.
func newRevokeCommand() *cobra.Command {
	var o clientOptions
	cmd := &cobra.Command{
		Use:   "revoke ID|PREFIX|NAME",
		Short: "Revoke a member for good: every node closes its links, refuses it and ignores its later writes",
		Long: `Revoke adds a node to the cluster's deny list, a signed record replicated to
every member. Every node closes its links to the node, refuses its
connections and ignores the store writes it makes afterwards. Any member may
revoke, unless the agents run with --admin: then only those nodes may. There
is no undo; a revoked machine comes back only with a new data directory.

The node is named by its full ID, by a prefix of the ID of a live member (as
"p2p members" shows it), or by a live member's name.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := callContext(cmd)
			defer cancel()
			client := o.client()
			id, err := resolveMember(ctx, client, args[0])
			if err != nil {
				return err
			}
			rev, err := client.Revoke(ctx, id)
			if err != nil {
				return err
			}
			if o.asJSON {
				return printJSON(cmd.OutOrStdout(), rev)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s (by %s at %s)\n", rev.ID, short(rev.By), rev.At)
			return nil
		},
	}
	o.register(cmd)
	return cmd
}

// newRevokedCommand is `p2p members revoked`.
func newRevokedCommand() *cobra.Command {
	var o clientOptions
	cmd := &cobra.Command{
		Use:   "revoked",
		Short: "List the revoked nodes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := callContext(cmd)
			defer cancel()
			list, err := o.client().Revocations(ctx)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if o.asJSON {
				return printJSON(out, agent.RevocationsResponse{Revocations: list})
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tBY\tAT")
			for _, r := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", r.ID, short(r.By), r.At)
			}
			return tw.Flush()
		},
	}
	o.register(cmd)
	return cmd
}

// resolveMember turns a full node ID, or the ID prefix or name of exactly
// one live member, into a full node ID.
func resolveMember(ctx context.Context, client *agent.Client, arg string) (string, error) {
	arg = strings.TrimSpace(arg)
	if id, err := peer.ParseID(arg); err == nil {
		return id.String(), nil
	}
	members, err := client.Members(ctx)
	if err != nil {
		return "", err
	}
	var byName, byPrefix []agent.Member
	for _, m := range members {
		if m.Name == arg {
			byName = append(byName, m)
		}
		if strings.HasPrefix(m.ID, strings.ToLower(arg)) {
			byPrefix = append(byPrefix, m)
		}
	}
	for _, matches := range [][]agent.Member{byName, byPrefix} {
		switch len(matches) {
		case 0:
			continue
		case 1:
			return matches[0].ID, nil
		default:
			return "", fmt.Errorf("%q names %d members: give more of the ID", arg, len(matches))
		}
	}
	return "", fmt.Errorf("%q is neither a node ID nor the name or ID prefix of a live member", arg)
}
