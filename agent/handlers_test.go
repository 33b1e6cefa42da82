package agent

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2p-go/p2p/internal/testutil"
)

// envOf parses the output of `env`.
func envOf(text string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = v
		}
	}
	return out
}

func TestHandlersRunWithDataOnStdinAndDetailsInEnvironment(t *testing.T) {
	dir := t.TempDir()
	cfgA, cfgB := testConfig(t, "a"), testConfig(t, "b")
	// Each handler saves its stdin and its P2P_* environment under a
	// file named after the event.
	save := func(name string) string {
		base := filepath.Join(dir, name)
		return "cat > " + base + ".in && env | grep ^P2P_ > " + base + ".tmp && mv " + base + ".tmp " + base + ".env"
	}
	cfgB.Handlers = []string{
		"kv:config/=" + save("kv-$P2P_EVENT"),
		"kv:other/=" + save("other"),
		"msg:broadcast=" + save("broadcast"),
		"msg:direct=" + save("direct"),
	}
	cfgA.Handlers = []string{"member:join=" + save("join")}
	a, b := joinedPair(t, cfgA, cfgB)
	ca := client(t, a, "")
	ctx := context.Background()
	if _, err := ca.Put(ctx, "config/db", []byte("postgres://db:5432")); err != nil {
		t.Fatal(err)
	}
	if err := ca.Send(ctx, json.RawMessage(`{"deploy":42}`)); err != nil {
		t.Fatal(err)
	}
	if err := ca.SendOne(ctx, json.RawMessage(`"just you"`)); err != nil {
		t.Fatal(err)
	}
	ready := func(name string) bool {
		_, err := os.Stat(filepath.Join(dir, name+".env"))
		return err == nil
	}
	testutil.Eventually(t, 20*time.Second, "handlers ran", func() bool {
		return ready("kv-kv-put") && ready("broadcast") && ready("direct") && ready("join")
	})
	// The .env file appears (by rename) after stdin is saved.
	aID, bID := a.Node().ID().String(), b.Node().ID().String()
	checks := []struct {
		name  string
		stdin string
		env   map[string]string
	}{
		{"kv-kv-put", "postgres://db:5432", map[string]string{"P2P_EVENT": "kv-put", "P2P_KEY": "config/db", "P2P_WRITER": aID, "P2P_NODE_ID": bID, "P2P_NODE_NAME": "b"}},
		{"broadcast", `{"deploy":42}`, map[string]string{"P2P_EVENT": "message", "P2P_FROM": aID, "P2P_FROM_ADDR": a.Node().Addr(), "P2P_DIRECT": "false", "P2P_HOPS": "1"}},
		{"direct", `"just you"`, map[string]string{"P2P_EVENT": "message", "P2P_FROM": aID, "P2P_DIRECT": "true"}},
		{"join", "", map[string]string{"P2P_EVENT": "member-join", "P2P_MEMBER_ID": bID, "P2P_MEMBER_ADDR": b.Node().Addr(), "P2P_NODE_ID": aID}},
	}
	for _, c := range checks {
		stdin := readFileOr(filepath.Join(dir, c.name+".in"), "<missing>")
		if c.stdin != "" && stdin != c.stdin {
			t.Errorf("%s handler stdin = %q, want %q", c.name, stdin, c.stdin)
		}
		env := envOf(readFileOr(filepath.Join(dir, c.name+".env"), ""))
		for k, want := range c.env {
			if env[k] != want {
				t.Errorf("%s handler %s = %q, want %q", c.name, k, env[k], want)
			}
		}
	}
	var joinEvent Event
	if err := json.Unmarshal([]byte(readFileOr(filepath.Join(dir, "join.in"), "")), &joinEvent); err != nil || joinEvent.Kind != "join" || joinEvent.ID != bID {
		t.Errorf("member handler stdin = %+v, %v", joinEvent, err)
	}
	// A delete runs the kv handler again; the other prefix never matched.
	if err := ca.Delete(ctx, "config/db"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, "delete handler ran", func() bool { return ready("kv-kv-delete") })
	if env := envOf(readFileOr(filepath.Join(dir, "kv-kv-delete.env"), "")); env["P2P_KEY"] != "config/db" {
		t.Errorf("delete handler env %v", env)
	}
	if ready("other") {
		t.Error("kv:other/ handler ran for config/db")
	}
	testutil.Eventually(t, 10*time.Second, "b counts 4 handler runs", func() bool { return b.handlers.runsOK.Load() == 4 })
}

func TestHandlerKilledAfterTimeoutAndFailuresCounted(t *testing.T) {
	cfg := testConfig(t, "a")
	cfg.HandlerTimeout = 200 * time.Millisecond
	cfg.Handlers = []string{"kv:slow=sleep 30", "kv:fail=exit 3"}
	a := startAgent(t, cfg)
	c := client(t, a, "")
	start := time.Now()
	for _, key := range []string{"slow", "fail"} {
		if _, err := c.Put(context.Background(), key, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, "both handlers failed", func() bool { return a.handlers.runsFailed.Load() == 2 })
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Fatalf("slow handler not killed: %v", elapsed)
	}
}

func TestHandlerQueueDropsWhenFull(t *testing.T) {
	// No workers: every event waits in the queue, which overflows.
	p := newHandlerPool(testLogger(t), 0, time.Second, nil, []Handler{{Kind: "kv", Command: "true"}})
	defer p.close()
	for i := range DefaultHandlerQueueLen + 10 {
		p.dispatch(kvEvent(Record{Key: "k" + string(rune('a'+i%26))}))
	}
	if got := p.dropped.Load(); got != 10 {
		t.Fatalf("dropped = %d, want 10", got)
	}
}

func TestSyncFileFollowsKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.json")
	cfg := testConfig(t, "a")
	cfg.Sync = []string{"config/app=" + path}
	a := startAgent(t, cfg)
	c := client(t, a, "")
	ctx := context.Background()
	for _, v := range []string{`{"v":1}`, `{"v":2}`, ""} {
		if _, err := c.Put(ctx, "config/app", []byte(v)); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 10*time.Second, "file holds "+v, func() bool { return readFileOr(path, "<missing>") == v })
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != SyncFileMode {
		t.Fatalf("synced file %v, %v; want mode %o", st, err, SyncFileMode)
	}
	if err := c.Delete(ctx, "config/app"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "file removed", func() bool { return readFileOr(path, "<missing>") == "<missing>" })
	// A key present before the agent starts is written at start.
	if _, err := c.Put(ctx, "config/app", []byte("at start")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "file written", func() bool { return readFileOr(path, "") == "at start" })
	a.Close()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	cfg.Logger = testLogger(t).With("agent", "a-again")
	startAgent(t, cfg)
	testutil.Eventually(t, 10*time.Second, "file written at restart", func() bool { return readFileOr(path, "") == "at start" })
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only app.json (no temporary files left)", len(entries))
	}
}

func TestSyncFileFollowsRemoteWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "remote.conf")
	cfgB := testConfig(t, "b")
	cfgB.Sync = []string{"config/remote=" + path}
	a, _ := joinedPair(t, testConfig(t, "a"), cfgB)
	if _, err := client(t, a, "").Put(context.Background(), "config/remote", []byte("from a")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, "b's file holds a's write", func() bool { return readFileOr(path, "") == "from a" })
}

func TestWriteFileAtomicReplacesWholeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	for _, content := range []string{"first, longer content", "short"} {
		if err := writeFileAtomic(path, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
		if got := readFileOr(path, ""); got != content {
			t.Fatalf("file = %q, want %q", got, content)
		}
	}
	if err := writeFileAtomic(filepath.Join(t.TempDir(), "missing", "f"), nil, 0o600); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
}

func TestReloadAppliesHandlersSyncsNameAndLevel(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, "before")
	cfg.Logger = nil
	cfg.LogOutput = &testLogWriter{t: t}
	t.Cleanup(func() {
		w := cfg.LogOutput.(*testLogWriter)
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	a := startAgent(t, cfg)
	c := client(t, a, "")
	ctx := context.Background()
	if _, err := c.Put(ctx, "config/x", []byte("present")); err != nil {
		t.Fatal(err)
	}
	next := cfg
	next.Name = "after"
	next.LogLevel = "debug"
	next.Sync = []string{"config/x=" + filepath.Join(dir, "x")}
	next.Handlers = []string{"kv:config/=cat > " + filepath.Join(dir, "handled")}
	next.Listen = "127.0.0.1:1" // needs a restart: ignored
	if err := a.Reload(next); err != nil {
		t.Fatal(err)
	}
	if got := readFileOr(filepath.Join(dir, "x"), ""); got != "present" {
		t.Fatalf("newly synced file = %q, want it written at reload", got)
	}
	if a.level.Level().String() != "DEBUG" {
		t.Errorf("log level = %v after reload", a.level.Level())
	}
	if _, err := c.Put(ctx, "config/y", []byte("handled")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "new handler ran", func() bool { return readFileOr(filepath.Join(dir, "handled"), "") == "handled" })
	members, err := c.Members(ctx)
	if err != nil || len(members) != 1 || members[0].Name != "after" {
		t.Fatalf("members after reload = %+v, %v", members, err)
	}
	if a.Node().Addr() == "127.0.0.1:1" {
		t.Fatal("listen address changed by reload")
	}
	bad := next
	bad.Handlers = []string{"nonsense"}
	if err := a.Reload(bad); err == nil {
		t.Fatal("Reload accepted a bad handler")
	}
	if hs := *a.handlers.handlers.Load(); len(hs) != 1 || hs[0].Kind != "kv" {
		t.Fatalf("handlers after a failed reload = %+v", hs)
	}
}

func TestCloseTwiceAndBeforeStart(t *testing.T) {
	a, err := New(testConfig(t, "never-started"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err == nil {
		t.Fatal("Start after Close succeeded")
	}
}
