package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/p2p-go/p2p/agent"
	"github.com/p2p-go/p2p/internal/testutil"
)

// messageLog collects the sequence numbers of the messages one agent's
// event stream reports.
type messageLog struct {
	mu     sync.Mutex
	seqs   map[int]bool
	probes int
}

func (l *messageLog) collect(s *lineStream) {
	for {
		select {
		case line := <-s.lines:
			var ev agent.Event
			if json.Unmarshal([]byte(line), &ev) != nil || ev.Type != "message" {
				continue
			}
			var body struct {
				Seq   *int `json:"seq"`
				Probe bool `json:"probe"`
			}
			if json.Unmarshal(ev.Data, &body) != nil {
				continue
			}
			l.mu.Lock()
			if body.Probe {
				l.probes++
			} else if body.Seq != nil {
				l.seqs[*body.Seq] = true
			}
			l.mu.Unlock()
		case <-s.done:
			return
		}
	}
}

func (l *messageLog) has(seqs int) (missing []int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range seqs {
		if !l.seqs[i] {
			missing = append(missing, i)
		}
	}
	return missing
}

// badSecretRefusals reads p2p_handshakes_refused_total{reason="bad_secret"}
// from an agent's /metrics.
func badSecretRefusals(t *testing.T, api string) int {
	t.Helper()
	resp, err := http.Get("http://" + api + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	scanner := bufio.NewScanner(resp.Body)
	for scanner.Scan() {
		if v, ok := strings.CutPrefix(scanner.Text(), `p2p_handshakes_refused_total{reason="bad_secret"} `); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric value %q: %v", v, err)
			}
			return int(n)
		}
	}
	t.Fatal("no bad_secret refusal counter in /metrics")
	return 0
}

// TestRollingKeyRotationUnderTraffic rotates the cluster secret of five
// agent processes with the CLI (install the new secret, use it, remove the
// old one) while one agent broadcasts a message every 100 ms and another
// writes a key every 100 ms. Every message reaches every other agent and
// every write every agent; a restarted agent keeps the rotated keyring; an
// agent holding only the old secret is refused and counted as bad_secret.
func TestRollingKeyRotationUnderTraffic(t *testing.T) {
	dir := t.TempDir()
	oldSecret, newSecret := filepath.Join(dir, "old.secret"), filepath.Join(dir, "new.secret")
	mustCLI(t, "keygen", "-o", oldSecret)
	mustCLI(t, "keygen", "-o", newSecret)

	names := []string{"a", "b", "c", "d", "e"}
	procs := make([]*agentProc, len(names))
	for i, name := range names {
		flags := []string{"--name", name, "--secret-file", oldSecret}
		if i > 0 {
			flags = append(flags, "--join", procs[0].state.Addr)
		}
		procs[i] = startAgentProc(t, name, filepath.Join(dir, name), nil, flags...)
	}
	for _, p := range procs {
		testutil.Eventually(t, 60*time.Second, p.name+" lists 5 members", func() bool { return len(membersOf(t, p.state.API)) == 5 })
	}
	sender, writer := procs[0], procs[1]
	logs := map[string]*messageLog{}
	for _, p := range procs[1:] {
		l := &messageLog{seqs: map[int]bool{}}
		logs[p.name] = l
		go l.collect(startStream(t, "events", "--api", p.state.API, "--json"))
	}
	// The streams are open once each has seen a probe.
	senderClient := agent.NewClient(sender.state.API, "")
	defer senderClient.CloseIdleConnections()
	testutil.Eventually(t, 30*time.Second, "every event stream sees a probe", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := senderClient.Send(ctx, json.RawMessage(`{"probe":true}`)); err != nil {
			t.Fatalf("probe: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // pace the probes
		for _, l := range logs {
			l.mu.Lock()
			seen := l.probes > 0
			l.mu.Unlock()
			if !seen {
				return false
			}
		}
		return true
	})

	// Traffic: a broadcast every 100 ms from a, a write every 100 ms on b.
	stop := make(chan struct{})
	var stopOnce sync.Once
	var wg sync.WaitGroup
	stopTraffic := func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }
	t.Cleanup(stopTraffic) // also when the test fails half-way
	var trafficMu sync.Mutex
	sent, written := 0, 0
	var trafficErr error
	traffic := func(do func(ctx context.Context, i int) error, count *int) {
		defer wg.Done()
		ticker := time.NewTicker(100 * time.Millisecond)
		defer ticker.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-ticker.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := do(ctx, i)
			cancel()
			trafficMu.Lock()
			if err != nil && trafficErr == nil {
				trafficErr = fmt.Errorf("operation %d: %w", i, err)
			}
			if err == nil {
				*count = i + 1
			}
			trafficMu.Unlock()
			if err != nil {
				return
			}
		}
	}
	writerClient := agent.NewClient(writer.state.API, "")
	defer writerClient.CloseIdleConnections()
	wg.Add(2)
	go traffic(func(ctx context.Context, i int) error {
		return senderClient.Send(ctx, json.RawMessage(fmt.Sprintf(`{"seq":%d}`, i)))
	}, &sent)
	go traffic(func(ctx context.Context, i int) error {
		_, err := writerClient.Put(ctx, fmt.Sprintf("rotation/%04d", i), []byte(strconv.Itoa(i)))
		return err
	}, &written)
	progress := func() int {
		trafficMu.Lock()
		defer trafficMu.Unlock()
		if trafficErr != nil {
			t.Fatalf("traffic during the rotation: %v", trafficErr)
		}
		return min(sent, written)
	}
	// Let traffic flow for ten rounds between the steps, so that every step
	// happens under load.
	settle := func(step string) {
		from := progress()
		testutil.Eventually(t, 30*time.Second, "traffic after "+step, func() bool { return progress() >= from+10 })
	}

	settle("start")
	rotator := procs[2].state.API
	mustCLI(t, "keys", "install", "--key-file", newSecret, "--api", rotator)
	settle("install")
	mustCLI(t, "keys", "use", "--key-file", newSecret, "--api", rotator)
	settle("use")
	out := mustCLI(t, "keys", "remove", "--key-file", oldSecret, "--api", rotator)
	if !strings.Contains(out, "applied on 5 of 5 members") {
		t.Fatalf("keys remove printed:\n%s", out)
	}
	settle("remove")
	stopTraffic()
	progress()
	t.Logf("during the rotation: %d messages broadcast, %d keys written", sent, written)

	for name, l := range logs {
		testutil.Eventually(t, 30*time.Second, fmt.Sprintf("%s received all %d messages", name, sent), func() bool { return len(l.has(sent)) == 0 })
	}
	for _, p := range procs {
		c := agent.NewClient(p.state.API, "")
		testutil.Eventually(t, 30*time.Second, fmt.Sprintf("%s holds all %d writes", p.name, written), func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			recs, err := c.List(ctx, "rotation/")
			return err == nil && len(recs) == written
		})
		c.CloseIdleConnections()
	}
	list := mustCLI(t, "keys", "list", "--api", procs[4].state.API, "--json")
	var keys agent.KeysResponse
	newText, _ := os.ReadFile(newSecret)
	if err := json.Unmarshal([]byte(list), &keys); err != nil || len(keys.Keys) != 1 || keys.Primary[strings.TrimSpace(string(newText))] != 5 {
		t.Fatalf("keys list after the rotation: %s (%v)", list, err)
	}

	// e restarts with the old secret on its command line: its saved
	// keyring wins, and it rejoins.
	e := procs[4]
	if err := e.signal(t, syscall.SIGTERM); err != nil {
		t.Fatalf("e on SIGTERM: %v", err)
	}
	e2 := startAgentProc(t, "e-restarted", e.dataDir, nil, "--name", "e", "--secret-file", oldSecret, "--join", procs[0].state.Addr)
	testutil.Eventually(t, 60*time.Second, "the restarted e lists 5 members", func() bool { return len(membersOf(t, e2.state.API)) == 5 })

	// An agent holding only the old secret is refused by a, and counted.
	before := badSecretRefusals(t, sender.state.API)
	outsider := startAgentProc(t, "outsider", filepath.Join(dir, "outsider"), nil, "--name", "outsider", "--secret-file", oldSecret, "--join", sender.state.Addr)
	testutil.Eventually(t, 30*time.Second, "a counts the outsider's handshake as bad_secret", func() bool {
		return badSecretRefusals(t, sender.state.API) > before
	})
	if members := membersOf(t, sender.state.API); len(members) != 5 {
		t.Fatalf("a lists %d members after the outsider tried, want 5", len(members))
	}
	if n := len(membersOf(t, outsider.state.API)); n != 1 {
		t.Fatalf("the outsider lists %d members, want itself alone", n)
	}
	http.DefaultClient.CloseIdleConnections()
}
