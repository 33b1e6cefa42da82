package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/p2p-go/p2p"
)

// update is the message that sets everybody's token: {"update": true,
// "token": X, "at": T}. At is when the token was set (Unix nanoseconds on
// the machine that set it): a broadcast network does not deliver messages
// in the order they were sent (a node that joins as a message is sent may
// receive it seconds later, after a newer one), so a process keeps the
// latest token by At and ignores older ones, as the store does with its
// versions. The original example had no such field and could go back to
// an older token.
type update struct {
	Update bool            `json:"update"`
	Token  json.RawMessage `json:"token"`
	At     int64           `json:"at"`
}

// hello is the newcomer's question to one neighbour: {"hi": true}.
type hello struct {
	Hi bool `json:"hi"`
}

func main() {
	join := flag.String("join", "", "comma-separated addresses of nodes already in the network (none: start a new one)")
	listen := flag.String("listen", p2p.DefaultListenAddr, "address to listen on")
	dataDir := flag.String("data", "token-data", "data directory (node key)")
	secret := flag.String("secret", os.Getenv("P2P_SECRET"), "cluster secret (base64; see `p2p keygen`)")
	verbose := flag.Bool("v", false, "log to standard error")
	flag.Parse()
	if err := run(*join, *listen, *dataDir, *secret, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "token:", err)
		os.Exit(1)
	}
}

func run(join, listen, dataDir, secretText string, verbose bool) error {
	secret, err := p2p.ParseSecret(secretText)
	if err != nil {
		return err
	}
	logger := slog.New(slog.DiscardHandler)
	if verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	var bootstrap []string
	if join != "" {
		bootstrap = strings.Split(join, ",")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// In order to connect to the network we need the address of a node
	// that is already in it; none starts a new network.
	b, err := p2p.NewBroadcaster(p2p.Config{
		Bootstrap: bootstrap, ListenAddr: listen, DataDir: dataDir, Secret: secret, Logger: logger,
	})
	if err != nil {
		return err
	}
	defer b.Close()

	var mu sync.Mutex
	var token json.RawMessage // nil: we have no token yet
	var tokenAt int64         // when token was set
	// setToken keeps t if it is newer than the token held (ties broken by
	// the bytes, so that every process keeps the same one).
	setToken := func(t json.RawMessage, at int64) {
		mu.Lock()
		defer mu.Unlock()
		if at < tokenAt || at == tokenAt && string(t) <= string(token) {
			return
		}
		changed := string(t) != string(token)
		token, tokenAt = t, at
		if changed {
			fmt.Printf("token %s\n", t)
		}
	}

	// Reactor (b): everybody update your tokens to X.
	b.React(func(m *p2p.Message) {
		var u update
		if m.Decode(&u) != nil || !u.Update || len(u.Token) == 0 || string(u.Token) == "null" {
			return // not something we want to react to
		}
		setToken(u.Token, u.At)
	})
	// Reactor (a): hi, I'm new here, what's the current token? Answered
	// straight back to the sender through the reply handle.
	b.React(func(m *p2p.Message) {
		var h hello
		if m.Decode(&h) != nil || !h.Hi {
			return
		}
		mu.Lock()
		t, at := token, tokenAt
		mu.Unlock()
		if t == nil {
			return // nothing to tell yet
		}
		_ = m.Reply(ctx, update{Update: true, Token: t, At: at})
	})

	if err := b.Start(ctx); err != nil {
		return err
	}
	fmt.Printf("listening %s id %s\n", b.Addr(), b.ID())

	// Now ask a neighbour for the current token, since we have none.
	if len(bootstrap) > 0 {
		go func() {
			select {
			case <-b.Joined():
			case <-ctx.Done():
				return
			}
			fmt.Println("joined")
			// Ask until somebody answers: our first neighbour may have no
			// token yet either.
			for i := 0; i < 50; i++ {
				mu.Lock()
				have := token != nil
				mu.Unlock()
				if have {
					return
				}
				_ = b.SendOne(ctx, hello{Hi: true})
				select {
				case <-ctx.Done():
					return
				case <-time.After(200 * time.Millisecond):
				}
			}
		}()
	}

	// ...time passes... each line on stdin is a new token, sent to everybody.
	lines := make(chan string)
	go func() {
		scanner := bufio.NewScanner(os.Stdin)
		for scanner.Scan() {
			lines <- scanner.Text()
		}
		close(lines)
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok {
				<-ctx.Done()
				return nil
			}
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			t := json.RawMessage(line)
			if !json.Valid(t) {
				t, _ = json.Marshal(line)
			}
			at := time.Now().UnixNano()
			setToken(t, at)
			if err := b.Send(ctx, update{Update: true, Token: t, At: at}); err != nil {
				fmt.Fprintln(os.Stderr, "token: send:", err)
			}
		}
	}
}
