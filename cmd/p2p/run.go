package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/p2p-go/p2p"
	"github.com/p2p-go/p2p/agent"
	"github.com/p2p-go/p2p/peer"
)

var p2pGenerateSecret = p2p.GenerateSecret

// runOptions are the flags of `p2p run`.
type runOptions struct {
	join       []string
	listen     string
	advertise  string
	dataDir    string
	secret     string
	secretFile string
	logLevel   string
}

func newRunCommand() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run a node that prints received messages and sends what you type",
		Long: `Run a node of the Broadcaster overlay in the foreground.

Every message the node receives is printed on standard output as one JSON line:
{"from": ID, "direct": bool, "hops": N, "data": ...}.
Every line typed on standard input is sent to everybody; a line that is not
valid JSON is sent as a JSON string. Commands:
  /one <json>   send to one neighbour
  /members      print the member list
  /neighbors    print the active neighbours`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runNode(ctx, o, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.addFlags(cmd.Flags(), "data directory (node key)")
	return cmd
}

// addFlags registers the flags every foreground node command shares.
func (o *runOptions) addFlags(f *pflag.FlagSet, dataHelp string) {
	f.StringSliceVar(&o.join, "join", nil, "address of a node already in the network (repeatable, or comma-separated; none starts a new network)")
	f.StringVar(&o.listen, "listen", p2p.DefaultListenAddr, "TCP address to listen on")
	f.StringVar(&o.advertise, "advertise", "", "address other nodes dial to reach this one (default: the listen address)")
	f.StringVar(&o.dataDir, "data", p2p.DefaultDataDir, dataHelp)
	f.StringVar(&o.secret, "secret", os.Getenv("P2P_SECRET"), `cluster secret printed by "p2p keygen" (default $P2P_SECRET; visible in the process list: prefer --secret-file)`)
	f.StringVar(&o.secretFile, "secret-file", os.Getenv("P2P_SECRET_FILE"), `file holding the cluster secret, from "p2p keygen -o FILE" (default $P2P_SECRET_FILE)`)
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
}

// secretAndLogger parses --secret (or reads --secret-file) and --log-level,
// the logger writing text to stderr. It warns about a secret file or a node
// key readable by other users.
func (o *runOptions) secretAndLogger(stderr io.Writer) ([]byte, *slog.Logger, error) {
	if err := agent.CheckAdvertise(o.advertise); err != nil {
		return nil, nil, fmt.Errorf("--advertise: %w", err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, nil, fmt.Errorf("--log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	text := o.secret
	if text == "" && o.secretFile != "" {
		var err error
		if text, err = agent.ReadSecretFile(logger, o.secretFile, "cluster secret"); err != nil {
			return nil, nil, fmt.Errorf("--secret-file: %w", err)
		}
	}
	secret, err := p2p.ParseSecret(text)
	if err != nil {
		if o.secret != "" {
			return nil, nil, fmt.Errorf("--secret ($P2P_SECRET): %w", err)
		}
		return nil, nil, fmt.Errorf("--secret-file %s: %w", o.secretFile, err)
	}
	agent.WarnLooseMode(logger, filepath.Join(o.dataDir, peer.KeyFile), "node key")
	return secret, logger, nil
}

func runNode(ctx context.Context, o runOptions, stdin io.Reader, stdout, stderr io.Writer) error {
	secret, logger, err := o.secretAndLogger(stderr)
	if err != nil {
		return err
	}
	b, err := p2p.NewBroadcaster(p2p.Config{
		Bootstrap:     o.join,
		ListenAddr:    o.listen,
		AdvertiseAddr: o.advertise,
		DataDir:       o.dataDir,
		Secret:        secret,
		Logger:        logger,
	})
	if err != nil {
		return err
	}
	defer b.Close()

	var outMu sync.Mutex
	printJSON := func(v any) {
		line, _ := json.Marshal(v)
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(stdout, "%s\n", line)
	}
	b.React(func(m *p2p.Message) {
		printJSON(map[string]any{"from": m.From, "direct": m.Direct, "hops": m.Hops, "data": m.Data})
	})
	if err := b.Start(ctx); err != nil {
		return err
	}
	logger.Info("node running", "id", b.ID(), "addr", b.Addr())

	lines := readLines(ctx, stdin)
	for {
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok {
				<-ctx.Done()
				return nil
			}
			if err := handleLine(ctx, b, strings.TrimSpace(line), printJSON); err != nil {
				logger.Warn("command failed", "err", err)
			}
		}
	}
}

func handleLine(ctx context.Context, b *p2p.Broadcaster, line string, printJSON func(any)) error {
	toJSON := func(text string) json.RawMessage {
		if json.Valid([]byte(text)) {
			return json.RawMessage(text)
		}
		quoted, _ := json.Marshal(text)
		return quoted
	}
	switch {
	case line == "":
		return nil
	case line == "/members":
		members, err := b.Members(ctx)
		if err != nil {
			return err
		}
		printJSON(map[string]any{"members": members})
		return nil
	case line == "/neighbors":
		neighbors, err := b.Neighbors(ctx)
		if err != nil {
			return err
		}
		printJSON(map[string]any{"neighbors": neighbors})
		return nil
	case strings.HasPrefix(line, "/one "):
		return b.SendOne(ctx, toJSON(strings.TrimSpace(strings.TrimPrefix(line, "/one "))))
	default:
		return b.Send(ctx, toJSON(line))
	}
}

// readLines delivers the lines of r (up to 1 MiB each) on a channel that is
// closed at the end of r; the reading goroutine stops when ctx ends.
func readLines(ctx context.Context, r io.Reader) <-chan string {
	lines := make(chan string)
	go func() {
		scanner := bufio.NewScanner(r)
		scanner.Buffer(make([]byte, 64*1024), 1<<20)
		for scanner.Scan() {
			select {
			case lines <- scanner.Text():
			case <-ctx.Done():
				return
			}
		}
		close(lines)
	}()
	return lines
}
