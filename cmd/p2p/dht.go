package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/p2p-go/p2p"
	"github.com/p2p-go/p2p/kademlia"
	"github.com/p2p-go/p2p/peer"
)

func init() { extraCommands = append(extraCommands, newDHTCommand) }

// dhtOptions are the flags of `p2p dht`.
type dhtOptions struct {
	runOptions
	timeout time.Duration
}

func newDHTCommand() *cobra.Command {
	var o dhtOptions
	cmd := &cobra.Command{
		Use:   "dht",
		Short: "Run a Kademlia DHT node driven by commands on standard input",
		Long: `Run a node of the Kademlia overlay in the foreground.

Every output is one JSON line on standard output:
  {"event":"listening","id":ID,"addr":ADDR}   once listening
  {"event":"ready","id":ID,"addr":ADDR,"contacts":N}   once joined
  {"event":"message","from":ID,"direct":bool,"hops":N,"data":JSON}   for every message received
  {"cmd":NAME,...}   the result of a command, or {"cmd":NAME,"error":TEXT}

Commands, one per line on standard input (JSON that does not parse is taken as
a JSON string; keys are 64 hex digits):
  put <name> <json>        store a record signed by this node's key; prints its key
  put-immutable <json>     store a record under the SHA-256 of the JSON
  put-record <hex>         store a record given as the hex of its CBOR encoding
                           (kademlia.EncodeRecord); every node verifies it
  get <key>                print the record stored under key
  send <json>              send to every node
  one <json>               send to one neighbour
  lookup <id>              print the nodes closest to id (hex, or a node ID)
  members | neighbors      print the routing table or the closest contacts
  keys list                print every node's cluster secrets (see p2p keys)
  keys install|use|remove <secret>   change every node's keyring; prints
                           who applied it, who refused it, who did not answer
The node runs until interrupted, even after standard input ends.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDHT(ctx, o, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	o.addFlags(f, "data directory (node key, which signs the node's records)")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "longest wait for one command (and for joining)")
	return cmd
}

// jsonLines writes values as JSON lines, one writer at a time.
type jsonLines struct {
	mu  sync.Mutex
	out io.Writer
}

func (w *jsonLines) print(v any) {
	line, err := json.Marshal(v)
	if err != nil {
		line, _ = json.Marshal(map[string]string{"error": "cannot encode output: " + err.Error()})
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	fmt.Fprintf(w.out, "%s\n", line)
}

func runDHT(ctx context.Context, o dhtOptions, stdin io.Reader, stdout, stderr io.Writer) error {
	secret, logger, err := o.secretAndLogger(stderr)
	if err != nil {
		return err
	}
	if o.timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, got %v", o.timeout)
	}
	d, err := p2p.NewDHT(p2p.DHTConfig{
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
	defer d.Close()
	out := &jsonLines{out: stdout}
	d.React(func(m *p2p.Message) {
		out.print(map[string]any{"event": "message", "from": m.From, "direct": m.Direct, "hops": m.Hops, "data": m.Data})
	})
	out.print(map[string]any{"event": "listening", "id": d.ID(), "addr": d.Addr()})
	if err := d.Start(ctx); err != nil {
		return err
	}
	if len(o.join) > 0 {
		// Start joins in the background, retrying every second; the command
		// gives up after --timeout.
		select {
		case <-d.Joined():
		case <-ctx.Done():
			return nil
		case <-time.After(o.timeout):
			return fmt.Errorf("join through %v: no node answered within %v", o.join, o.timeout)
		}
	}
	members, err := d.Members(ctx)
	if err != nil {
		return err
	}
	out.print(map[string]any{"event": "ready", "id": d.ID(), "addr": d.Addr(), "contacts": len(members) - 1})

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
			name, args, _ := strings.Cut(strings.TrimSpace(line), " ")
			if name == "" {
				continue
			}
			cmdCtx, cancel := context.WithTimeout(ctx, o.timeout)
			result, err := dhtCommand(cmdCtx, d, name, strings.TrimSpace(args))
			cancel()
			if err != nil {
				out.print(map[string]any{"cmd": name, "error": err.Error()})
				continue
			}
			result["cmd"] = name
			out.print(result)
		}
	}
}

// asJSON returns text itself when it is JSON, else text as a JSON string.
func asJSON(text string) json.RawMessage {
	if text != "" && json.Valid([]byte(text)) {
		return json.RawMessage(text)
	}
	quoted, _ := json.Marshal(text)
	return quoted
}

// parseKey parses a key or node ID: 64 hex digits, or a node ID's text form.
func parseKey(text string) (peer.ID, error) {
	var id peer.ID
	if raw, err := hex.DecodeString(text); err == nil && len(raw) == peer.IDLen {
		copy(id[:], raw)
		return id, nil
	}
	if id, err := peer.ParseID(text); err == nil {
		return id, nil
	}
	return id, fmt.Errorf("%q is neither %d hex digits nor a node ID", text, 2*peer.IDLen)
}

// dhtCommand runs one command line and returns its result.
func dhtCommand(ctx context.Context, d *p2p.DHT, name, args string) (map[string]any, error) {
	switch name {
	case "put":
		recordName, value, ok := strings.Cut(args, " ")
		if !ok || recordName == "" {
			return nil, errors.New("usage: put <name> <json>")
		}
		key, err := d.Put(ctx, recordName, asJSON(strings.TrimSpace(value)))
		if err != nil {
			return nil, err
		}
		return map[string]any{"name": recordName, "key": hex.EncodeToString(key[:])}, nil
	case "put-immutable":
		key, err := d.PutImmutable(ctx, asJSON(args))
		if err != nil {
			return nil, err
		}
		return map[string]any{"key": hex.EncodeToString(key[:])}, nil
	case "put-record":
		data, err := hex.DecodeString(args)
		if err != nil {
			return nil, fmt.Errorf("put-record: not hex: %w", err)
		}
		rec, err := kademlia.DecodeRecord(data, time.Now(), kademlia.DefaultRecordTTL)
		if err != nil {
			return nil, err
		}
		key, err := d.PutRecord(ctx, rec)
		if err != nil {
			return nil, err
		}
		return map[string]any{"key": hex.EncodeToString(key[:]), "seq": rec.Seq}, nil
	case "get":
		key, err := parseKey(args)
		if err != nil {
			return nil, err
		}
		rec, err := d.Get(ctx, key)
		if err != nil {
			return nil, err
		}
		result := map[string]any{"key": hex.EncodeToString(rec.Key[:]), "seq": rec.Seq}
		if json.Valid(rec.Value) {
			result["value"] = json.RawMessage(rec.Value)
		} else {
			result["value_hex"] = hex.EncodeToString(rec.Value)
		}
		if rec.Record.Mutable() {
			result["name"] = rec.Name
			result["writer"] = rec.Writer
			result["writer_key"] = hex.EncodeToString(rec.Record.Writer)
		}
		return result, nil
	case "send":
		return map[string]any{}, d.Send(ctx, asJSON(args))
	case "one":
		return map[string]any{}, d.SendOne(ctx, asJSON(args))
	case "lookup":
		target, err := parseKey(args)
		if err != nil {
			return nil, err
		}
		closest, err := d.Lookup(ctx, target)
		if err != nil {
			return nil, err
		}
		return map[string]any{"target": hex.EncodeToString(target[:]), "closest": closest}, nil
	case "members":
		members, err := d.Members(ctx)
		return map[string]any{"members": members}, err
	case "neighbors":
		neighbors, err := d.Neighbors(ctx)
		return map[string]any{"neighbors": neighbors}, err
	case "keys":
		return dhtKeysCommand(ctx, d, args)
	}
	return nil, fmt.Errorf("unknown command %q (put, put-immutable, put-record, get, send, one, lookup, members, neighbors)", name)
}

// dhtKeysCommand runs `keys list` or `keys install|use|remove <secret>`.
func dhtKeysCommand(ctx context.Context, d *p2p.DHT, args string) (map[string]any, error) {
	op, secretText, _ := strings.Cut(args, " ")
	var resp p2p.KeyringResponse
	var err error
	if op == "list" {
		resp, err = d.ListKeys(ctx)
	} else {
		ops := map[string]func(context.Context, []byte) (p2p.KeyringResponse, error){
			"install": d.InstallKey, "use": d.UseKey, "remove": d.RemoveKey,
		}
		fn, ok := ops[op]
		secret, perr := p2p.ParseSecret(secretText)
		if !ok || perr != nil || secret == nil {
			return nil, errors.New("usage: keys list | keys install|use|remove <secret from p2p keygen>")
		}
		resp, err = fn(ctx, secret)
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"op": op, "complete": resp.Complete(), "result": resp}, nil
}
