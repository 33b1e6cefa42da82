package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/p2p-go/p2p/agent"
	"github.com/p2p-go/p2p/kv"
)

func init() {
	extraCommands = append(extraCommands,
		newInfoCommand, newMembersCommand, func() *cobra.Command { return newSendCommand(false) },
		func() *cobra.Command { return newSendCommand(true) }, newEventsCommand, newKVCommand)
}

// clientTimeout bounds one non-streaming API call.
const clientTimeout = 15 * time.Second

// clientOptions are the flags every client command shares.
type clientOptions struct {
	api       string
	token     string
	tokenFile string
	asJSON    bool
}

func (o *clientOptions) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.api, "api", "", "agent API address, host:port or unix:/path ($P2P_API; default "+agent.DefaultAPIAddr+")")
	f.StringVar(&o.token, "api-token", "", "API bearer token ($P2P_API_TOKEN; visible in the process list: prefer --api-token-file)")
	f.StringVar(&o.tokenFile, "api-token-file", "", "file holding the API bearer token ($P2P_API_TOKEN_FILE)")
	f.BoolVar(&o.asJSON, "json", false, "print JSON for scripts instead of a table")
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error { return o.readTokenFile(cmd) }
}

// slogTo returns a logger writing text to w (for warnings of client
// commands).
func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// readTokenFile reads the token from --api-token-file (or
// $P2P_API_TOKEN_FILE) when no token is given otherwise.
func (o *clientOptions) readTokenFile(cmd *cobra.Command) error {
	if o.token != "" || os.Getenv(envName("api-token")) != "" {
		return nil
	}
	path := o.tokenFile
	if path == "" {
		path = os.Getenv(envName("api-token-file"))
	}
	if path == "" {
		return nil
	}
	token, err := agent.ReadSecretFile(slogTo(cmd.ErrOrStderr()), path, "API token")
	if err != nil {
		return fmt.Errorf("--api-token-file: %w", err)
	}
	o.token = token
	return nil
}

func (o *clientOptions) client() *agent.Client {
	addr, token := o.api, o.token
	if addr == "" {
		addr = os.Getenv(envName("api"))
	}
	if token == "" {
		token = os.Getenv(envName("api-token"))
	}
	return agent.NewClient(addr, token)
}

// callContext bounds a one-shot call and ends it on SIGINT.
func callContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(cmd.Context(), clientTimeout)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	return ctx, func() { stop(); cancel() }
}

// streamContext lasts until SIGINT or SIGTERM.
func streamContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
}

func printJSON(w io.Writer, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", data)
	return err
}

func short(id string) string {
	if len(id) > 10 {
		return id[:10]
	}
	return id
}

func newInfoCommand() *cobra.Command {
	var o clientOptions
	cmd := &cobra.Command{
		Use:   "info",
		Short: "Show the local agent's node, addresses and counters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := callContext(cmd)
			defer cancel()
			info, err := o.client().Info(ctx)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if o.asJSON {
				return printJSON(out, info)
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "id\t%s\nname\t%s\naddr\t%s\napi\t%s\ntags\t%s\nstatus\t%s\nmembers\t%d\nneighbors\t%d\n",
				info.ID, info.Name, info.Addr, info.API, formatTags(info.Tags), describeStatus(info.Status), info.Members, len(info.Neighbors))
			fmt.Fprintf(tw, "store\t%d keys, %d tombstones, digest %.16s, %d anti-entropy rounds\n",
				info.Store.Keys, info.Store.Tombstones, info.Store.Digest, info.Store.AntiEntropyRounds)
			fmt.Fprintf(tw, "messages\t%d in, %d out (%d B in, %d B out)\nrefused\t%d handshakes\nuptime\t%s\n",
				info.Stats.MessagesIn, info.Stats.MessagesOut, info.Stats.BytesIn, info.Stats.BytesOut,
				info.Stats.HandshakesRefused, time.Duration(info.UptimeSeconds*float64(time.Second)).Round(time.Second))
			return tw.Flush()
		},
	}
	o.register(cmd)
	return cmd
}

// describeStatus explains Info.Status in words.
func describeStatus(status string) string {
	switch status {
	case agent.StatusLinked:
		return "linked to the network"
	case agent.StatusAlone:
		return "alone: started a new network, waiting for other nodes to join it"
	case agent.StatusJoining:
		return "joining: no --join address has answered yet (retrying every second)"
	case agent.StatusIsolated:
		return "isolated: no open link to another member (the overlay is repairing)"
	}
	return status
}

func formatTags(tags map[string]string) string {
	if len(tags) == 0 {
		return "-"
	}
	pairs := make([]string, 0, len(tags))
	for k, v := range tags {
		pairs = append(pairs, k+"="+v)
	}
	sort.Strings(pairs)
	return strings.Join(pairs, ",")
}

// membersWait bounds `p2p members --wait`.
const membersWait = time.Minute

func newMembersCommand() *cobra.Command {
	var o clientOptions
	var wait int
	cmd := &cobra.Command{
		Use:   "members",
		Short: "List the live members with their names and tags",
		Long: `List the live members with their names and tags.

With --wait N, first wait (up to a minute) until the agent answers and lists
exactly N live members, each with its published name: handy right after
starting agents, or after stopping one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var members []agent.Member
			var err error
			if wait > 0 {
				members, err = waitMembers(cmd, o.client(), wait)
			} else {
				ctx, cancel := callContext(cmd)
				members, err = o.client().Members(ctx)
				cancel()
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if o.asJSON {
				return printJSON(out, agent.MembersResponse{Members: members})
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tID\tADDR\tLINK\tTAGS")
			for _, m := range members {
				link := "-"
				switch {
				case m.Self:
					link = "self"
				case m.Neighbor:
					link = "neighbor"
				}
				name := m.Name
				if name == "" {
					name = "?"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, short(m.ID), m.Addr, link, formatTags(m.Tags))
			}
			return tw.Flush()
		},
	}
	o.register(cmd)
	cmd.AddCommand(newRevokeCommand(), newRevokedCommand())
	cmd.Flags().IntVar(&wait, "wait", 0, "wait until exactly this many named members are listed (up to a minute)")
	return cmd
}

// waitMembers polls the agent until it lists want live members, all named;
// an agent that is not up yet is waited for too.
func waitMembers(cmd *cobra.Command, c *agent.Client, want int) ([]agent.Member, error) {
	ctx, cancel := context.WithTimeout(cmd.Context(), membersWait)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	ticker := time.NewTicker(250 * time.Millisecond)
	defer ticker.Stop()
	var last []agent.Member
	var lastErr error
	for {
		members, err := c.Members(ctx)
		if err == nil {
			named := 0
			for _, m := range members {
				if m.Name != "" {
					named++
				}
			}
			if len(members) == want && named == want {
				return members, nil
			}
			last, lastErr = members, nil
		} else if errors.Is(err, agent.ErrNoAgent) {
			lastErr = err
		} else if ctx.Err() == nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return nil, fmt.Errorf("waited %v for %d members: %w", membersWait, want, lastErr)
			}
			return nil, fmt.Errorf("waited %v for %d named members; the agent lists %d", membersWait, want, len(last))
		case <-ticker.C:
		}
	}
}

// jsonArg returns the JSON of a command-line argument ("-": standard input).
func jsonArg(cmd *cobra.Command, arg string, asText bool) (json.RawMessage, error) {
	data := []byte(arg)
	if arg == "-" {
		var err error
		if data, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), agent.MaxRequestBody+1)); err != nil {
			return nil, err
		}
		data = []byte(strings.TrimSpace(string(data)))
	}
	if asText {
		quoted, _ := json.Marshal(string(data))
		return quoted, nil
	}
	if !json.Valid(data) {
		return nil, fmt.Errorf("%.40q is not valid JSON (quote a string as '\"text\"' or use --text)", data)
	}
	return data, nil
}

func newSendCommand(one bool) *cobra.Command {
	var o clientOptions
	var asText bool
	use, short := "send <json>", "Send a JSON message to every member"
	if one {
		use, short = "send-one <json>", "Send a JSON message to one neighbour chosen at random"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  short + ". The argument is a JSON value, or - to read it from standard input.",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := jsonArg(cmd, args[0], asText)
			if err != nil {
				return err
			}
			ctx, cancel := callContext(cmd)
			defer cancel()
			c := o.client()
			if one {
				err = c.SendOne(ctx, data)
			} else {
				err = c.Send(ctx, data)
			}
			if err != nil {
				return err
			}
			if o.asJSON {
				return printJSON(cmd.OutOrStdout(), map[string]bool{"sent": true})
			}
			return nil
		},
	}
	o.register(cmd)
	cmd.Flags().BoolVar(&asText, "text", false, "send the argument as a JSON string")
	return cmd
}

func newEventsCommand() *cobra.Command {
	var o clientOptions
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Print received messages and membership changes as they happen",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := streamContext(cmd)
			defer cancel()
			out := cmd.OutOrStdout()
			return o.client().Events(ctx, func(ev agent.Event) error {
				if o.asJSON {
					return printJSON(out, ev)
				}
				var err error
				switch ev.Type {
				case "message":
					how := fmt.Sprintf("broadcast, %d hops", ev.Hops)
					if ev.Direct {
						how = "direct"
					}
					_, err = fmt.Fprintf(out, "message from %s (%s): %s\n", nameOrID(ev.Name, ev.From), how, ev.Data)
				case "member":
					_, err = fmt.Fprintf(out, "member %s %s %s\n", ev.Kind, nameOrID(ev.Name, ev.ID), ev.Addr)
				case "error":
					return errors.New(ev.Error)
				}
				return err
			})
		},
	}
	o.register(cmd)
	return cmd
}

// nameOrID shows a node as "name (id…)", or its short ID when its name has
// not reached the agent yet.
func nameOrID(name, id string) string {
	if name == "" {
		return short(id)
	}
	return name + " (" + short(id) + ")"
}

func newKVCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kv",
		Short: "Read, write and watch the replicated configuration store",
	}
	cmd.AddCommand(newKVGetCommand(), newKVPutCommand(), newKVDelCommand(), newKVLsCommand(), newKVWatchCommand())
	return cmd
}

func newKVGetCommand() *cobra.Command {
	var o clientOptions
	cmd := &cobra.Command{
		Use:   "get <key>",
		Short: "Print the value of a key (exact bytes; --json for the record)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := callContext(cmd)
			defer cancel()
			rec, err := o.client().Get(ctx, args[0])
			if err != nil {
				return err
			}
			if o.asJSON {
				return printJSON(cmd.OutOrStdout(), rec)
			}
			_, err = cmd.OutOrStdout().Write(rec.Value)
			return err
		},
	}
	o.register(cmd)
	return cmd
}

func newKVPutCommand() *cobra.Command {
	var o clientOptions
	cmd := &cobra.Command{
		Use:   "put <key> [value]",
		Short: "Write a key on every member (value from the argument, or standard input when absent or -)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var value []byte
			if len(args) == 2 && args[1] != "-" {
				value = []byte(args[1])
			} else {
				var err error
				if value, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), kv.MaxValueLen+1)); err != nil {
					return err
				}
			}
			ctx, cancel := callContext(cmd)
			defer cancel()
			rec, err := o.client().Put(ctx, args[0], value)
			if err != nil {
				return err
			}
			if o.asJSON {
				return printJSON(cmd.OutOrStdout(), rec)
			}
			return nil
		},
	}
	o.register(cmd)
	return cmd
}

func newKVDelCommand() *cobra.Command {
	var o clientOptions
	cmd := &cobra.Command{
		Use:     "del <key>",
		Aliases: []string{"delete", "rm"},
		Short:   "Delete a key on every member",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := callContext(cmd)
			defer cancel()
			if err := o.client().Delete(ctx, args[0]); err != nil {
				return err
			}
			if o.asJSON {
				return printJSON(cmd.OutOrStdout(), map[string]string{"deleted": args[0]})
			}
			return nil
		},
	}
	o.register(cmd)
	return cmd
}

// displayValue shows a value in a table: text when printable, else its size.
func displayValue(v []byte) string {
	s := string(v)
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < ' ' && r != '\t' }) {
		return fmt.Sprintf("<%d bytes>", len(v))
	}
	if utf8.RuneCountInString(s) > 60 {
		return string([]rune(s)[:57]) + "..."
	}
	return s
}

// keyColumn and valueColumn bound the KEY and VALUE columns of `kv ls`: a
// longer cell overflows its own row rather than pushing every row to its
// width.
const (
	keyColumn   = 40
	valueColumn = 30
)

func newKVLsCommand() *cobra.Command {
	var o clientOptions
	var all bool
	cmd := &cobra.Command{
		Use:     "ls [prefix]",
		Aliases: []string{"list"},
		Short:   "List the keys under a prefix",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			prefix := ""
			if len(args) == 1 {
				prefix = args[0]
			}
			ctx, cancel := callContext(cmd)
			defer cancel()
			list := o.client().List
			if all {
				list = o.client().ListAll
			}
			recs, err := list(ctx, prefix)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if o.asJSON {
				return printJSON(out, agent.ListResponse{Records: recs})
			}
			return printRecords(out, recs)
		},
	}
	o.register(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "include the agent's internal keys ("+agent.InternalPrefix+"...)")
	return cmd
}

// printRecords prints a table of records whose KEY and VALUE columns are
// as wide as their longest cell up to a bound; a longer cell overflows its
// own row only.
func printRecords(w io.Writer, recs []agent.Record) error {
	keyWidth, valueWidth, versionWidth := len("KEY"), len("VALUE"), len("VERSION")
	values := make([]string, len(recs))
	for i, r := range recs {
		values[i] = displayValue(r.Value)
		if n := utf8.RuneCountInString(r.Key); n <= keyColumn {
			keyWidth = max(keyWidth, n)
		}
		if n := utf8.RuneCountInString(values[i]); n <= valueColumn {
			valueWidth = max(valueWidth, n)
		}
		versionWidth = max(versionWidth, len(r.Version))
	}
	pad := func(s string, width int) string {
		if n := utf8.RuneCountInString(s); n < width {
			return s + strings.Repeat(" ", width-n)
		}
		return s
	}
	var b strings.Builder
	row := func(key, value, version, writer string) {
		b.WriteString(pad(key, keyWidth) + "  " + pad(value, valueWidth) + "  " + pad(version, versionWidth) + "  " + writer)
		b.WriteString("\n")
	}
	row("KEY", "VALUE", "VERSION", "WRITER")
	for i, r := range recs {
		row(r.Key, values[i], r.Version, short(r.Writer))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func newKVWatchCommand() *cobra.Command {
	var o clientOptions
	var all bool
	cmd := &cobra.Command{
		Use:   "watch [prefix]",
		Short: "Print the keys under a prefix, then every change to them",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			prefix := ""
			if len(args) == 1 {
				prefix = args[0]
			}
			ctx, cancel := streamContext(cmd)
			defer cancel()
			out := cmd.OutOrStdout()
			watch := o.client().Watch
			if all {
				watch = o.client().WatchAll
			}
			return watch(ctx, prefix, func(ev agent.WatchEvent) error {
				if o.asJSON {
					return printJSON(out, ev)
				}
				var err error
				switch ev.Type {
				case "put":
					_, err = fmt.Fprintf(out, "put %s = %s\n", ev.Record.Key, displayValue(ev.Record.Value))
				case "delete":
					_, err = fmt.Fprintf(out, "delete %s\n", ev.Record.Key)
				case "synced":
					_, err = fmt.Fprintln(out, "# synced: changes follow")
				case "error":
					return errors.New(ev.Error)
				}
				return err
			})
		},
	}
	o.register(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "include the agent's internal keys ("+agent.InternalPrefix+"...)")
	return cmd
}
