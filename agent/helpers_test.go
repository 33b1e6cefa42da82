package agent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testLogWriter routes logs to t.Log until the test ends.
type testLogWriter struct {
	mu   sync.Mutex // guards done
	t    testing.TB
	done bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	w := &testLogWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// testConfig is an agent on loopback with kernel-chosen ports and its own
// data directory.
func testConfig(t testing.TB, name string) Config {
	return Config{
		DataDir: filepath.Join(t.TempDir(), name),
		Listen:  "127.0.0.1:0",
		API:     "127.0.0.1:0",
		Name:    name,
		Logger:  testLogger(t).With("agent", name),
	}
}

// startAgent creates and starts an agent closed at the end of the test.
func startAgent(t testing.TB, cfg Config) *Agent {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%s): %v", cfg.Name, err)
	}
	t.Cleanup(func() { a.Close() })
	if err := a.Start(); err != nil {
		t.Fatalf("Start(%s): %v", cfg.Name, err)
	}
	return a
}

// client returns an API client of a, closed at the end of the test.
func client(t testing.TB, a *Agent, token string) *Client {
	c := NewClient(a.APIAddr(), token)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// joinedPair starts two agents, the second joining the first, and waits
// until each sees the other.
func joinedPair(t testing.TB, cfgA, cfgB Config) (*Agent, *Agent) {
	t.Helper()
	a := startAgent(t, cfgA)
	cfgB.Join = []string{a.Node().Addr()}
	b := startAgent(t, cfgB)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, n := range []*Agent{a, b} {
		select {
		case <-n.Node().Joined():
		case <-ctx.Done():
			t.Fatalf("%s did not join", n.cfg.Name)
		}
	}
	return a, b
}

func readFileOr(path, otherwise string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return otherwise
	}
	return string(data)
}
