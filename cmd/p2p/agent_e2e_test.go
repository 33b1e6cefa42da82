package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/p2p-go/p2p/agent"
	"github.com/p2p-go/p2p/internal/testutil"
)

// binary is the p2p command built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "p2p-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if binary, err = testutil.BuildCommand(dir, "p2p", "."); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// cleanEnv is the environment without P2P_* variables, so that the tests
// see only what they set.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "P2P_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// cli runs one p2p command and returns its standard output.
func cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = cleanEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("p2p %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := cli(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// agentProc is one `p2p agent` process.
type agentProc struct {
	name    string
	dataDir string
	cmd     *exec.Cmd
	logPath string
	state   agent.AgentState
	exited  chan error
}

// startAgentProc starts `p2p agent` with the given flags on loopback with
// kernel-chosen ports and waits until it wrote its addresses to
// agent.json.
func startAgentProc(t *testing.T, name, dataDir string, env []string, flags ...string) *agentProc {
	t.Helper()
	p := &agentProc{name: name, dataDir: dataDir, logPath: filepath.Join(t.TempDir(), name+".log"), exited: make(chan error, 1)}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"agent", "--data", dataDir, "--listen", "127.0.0.1:0", "--api", "127.0.0.1:0"}, flags...)
	p.cmd = exec.Command(binary, args...)
	p.cmd.Env = cleanEnv(env...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.exited <- p.cmd.Wait()
		logFile.Close()
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			data, _ := os.ReadFile(p.logPath)
			t.Logf("log of agent %s (pid %d):\n%s", name, p.cmd.Process.Pid, data)
		}
	})
	statePath := filepath.Join(dataDir, agent.StateFile)
	testutil.Eventually(t, 20*time.Second, "agent "+name+" writes "+statePath, func() bool {
		data, err := os.ReadFile(statePath)
		return err == nil && json.Unmarshal(data, &p.state) == nil && p.state.PID == p.cmd.Process.Pid
	})
	return p
}

// signal sends sig and, unless it is SIGHUP, waits for the exit.
func (p *agentProc) signal(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	if sig == syscall.SIGHUP {
		return nil
	}
	select {
	case err := <-p.exited:
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("agent %s did not exit on %v", p.name, sig)
		return nil
	}
}

// lineStream runs a streaming p2p command and collects its output lines.
type lineStream struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}
}

func startStream(t *testing.T, args ...string) *lineStream {
	t.Helper()
	s := &lineStream{cmd: exec.Command(binary, args...), lines: make(chan string, 256), done: make(chan struct{})}
	s.cmd.Env = cleanEnv()
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	s.cmd.Stderr = &stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(s.done)
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			s.lines <- scanner.Text()
		}
	}()
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(os.Interrupt)
		<-s.done
		_ = s.cmd.Wait()
		if t.Failed() {
			t.Logf("stderr of p2p %s: %s", strings.Join(args, " "), stderr.String())
		}
	})
	return s
}

// waitLine returns the first line for which match holds.
func (s *lineStream) waitLine(t *testing.T, timeout time.Duration, what string, match func(string) bool) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line := <-s.lines:
			if match(line) {
				return line
			}
		case <-s.done:
			t.Fatalf("stream ended while waiting for %s", what)
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

func membersOf(t *testing.T, api string) []agent.Member {
	t.Helper()
	out, err := cli(t, "members", "--api", api, "--json")
	if err != nil {
		return nil
	}
	var resp agent.MembersResponse
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatalf("members --json printed %q: %v", out, err)
	}
	return resp.Members
}

// TestAgentWalkthrough drives three agents through the CLI and the HTTP
// API as the README's walkthrough does: start, join, put a key on one and
// watch it arrive on the others, SIGKILL one, write on another, restart the
// killed one from its data directory and see it catch up.
func TestAgentWalkthrough(t *testing.T) {
	dir := t.TempDir()
	secret := strings.TrimSpace(mustCLI(t, "keygen"))
	env := []string{"P2P_SECRET=" + secret}
	synced := filepath.Join(dir, "db.conf")
	handled := filepath.Join(dir, "handled")
	configB := filepath.Join(dir, "b.json")
	if err := os.WriteFile(configB, []byte(`{"name": "from-file", "tag": ["role=cache"], "sync": ["config/db=`+synced+`"]}`), 0o600); err != nil {
		t.Fatal(err)
	}

	a := startAgentProc(t, "a", filepath.Join(dir, "a"), env, "--name", "a", "--tag", "role=seed")
	b := startAgentProc(t, "b", filepath.Join(dir, "b"), append(env, "P2P_NAME=b", "P2P_CONFIG="+configB),
		"--join", a.state.Addr,
		"--handler", "kv:config/db=t=$(mktemp -p "+dir+") && cat > $t && mv $t "+handled)
	c := startAgentProc(t, "c", filepath.Join(dir, "c"), env, "--name", "c", "--join", a.state.Addr)

	testutil.Eventually(t, 30*time.Second, "a lists 3 named members", func() bool {
		members := membersOf(t, a.state.API)
		names := map[string]bool{}
		for _, m := range members {
			names[m.Name] = true
		}
		return len(members) == 3 && names["a"] && names["b"] && names["c"]
	})
	table := mustCLI(t, "members", "--api", b.state.API)
	if !strings.Contains(table, "NAME") || !strings.Contains(table, "role=seed") || !strings.Contains(table, "self") {
		t.Fatalf("members table:\n%s", table)
	}

	// Watch config/ on c with the CLI, and the event stream on c.
	watch := startStream(t, "kv", "watch", "config/", "--api", c.state.API, "--json")
	watch.waitLine(t, 10*time.Second, "watch synced", func(l string) bool { return strings.Contains(l, `"synced"`) })
	events := startStream(t, "events", "--api", c.state.API, "--json")

	mustCLI(t, "kv", "put", "config/db", "postgres://db1:5432", "--api", a.state.API)
	line := watch.waitLine(t, 20*time.Second, "config/db on c", func(l string) bool { return strings.Contains(l, `"config/db"`) })
	var wev agent.WatchEvent
	if err := json.Unmarshal([]byte(line), &wev); err != nil || wev.Type != "put" || string(wev.Record.Value) != "postgres://db1:5432" || wev.Record.Writer != a.state.ID {
		t.Fatalf("watch line %s: %+v, %v", line, wev, err)
	}
	testutil.Eventually(t, 20*time.Second, "b reads config/db", func() bool {
		out, err := cli(t, "kv", "get", "config/db", "--api", b.state.API)
		return err == nil && out == "postgres://db1:5432"
	})
	testutil.Eventually(t, 10*time.Second, "b's synced file and handler", func() bool {
		data, err := os.ReadFile(synced)
		handledData, herr := os.ReadFile(handled)
		return err == nil && string(data) == "postgres://db1:5432" && herr == nil && string(handledData) == "postgres://db1:5432"
	})
	// b's name came from the environment, which wins over its config
	// file; its tags and synced file from the file.
	for _, m := range membersOf(t, a.state.API) {
		if m.ID == b.state.ID && (m.Name != "b" || m.Tags["role"] != "cache") {
			t.Fatalf("b published %+v, want name b (environment) and role=cache (file)", m)
		}
	}

	// A broadcast through the HTTP API reaches c's event stream.
	resp, err := http.Post("http://"+b.state.API+"/v1/send", "application/json", strings.NewReader(`{"deploy":"v2"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/send = %d", resp.StatusCode)
	}
	events.waitLine(t, 20*time.Second, "message on c", func(l string) bool {
		return strings.Contains(l, `"type":"message"`) && strings.Contains(l, `{"deploy":"v2"}`) && strings.Contains(l, b.state.ID)
	})

	// SIGKILL c, then write on b while c is down.
	if err := c.signal(t, syscall.SIGKILL); err == nil {
		t.Fatal("c exited cleanly on SIGKILL")
	}
	testutil.Eventually(t, 30*time.Second, "a sees c gone", func() bool {
		members := membersOf(t, a.state.API)
		return len(members) == 2
	})
	mustCLI(t, "kv", "put", "config/db", "postgres://db2:5432", "--api", b.state.API)
	put, err := http.NewRequest(http.MethodPut, "http://"+b.state.API+"/v1/kv/config/feature", strings.NewReader("on"))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := http.DefaultClient.Do(put); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT /v1/kv/config/feature: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// Restart c from its data directory: same identity, new ports.
	c2 := startAgentProc(t, "c-restarted", c.dataDir, env, "--name", "c", "--join", a.state.Addr)
	if c2.state.ID != c.state.ID {
		t.Fatalf("restarted c has ID %s, want %s (its key is in its data directory)", c2.state.ID, c.state.ID)
	}
	testutil.Eventually(t, 30*time.Second, "c catches up on config/db", func() bool {
		out, err := cli(t, "kv", "get", "config/db", "--api", c2.state.API)
		return err == nil && out == "postgres://db2:5432"
	})
	testutil.Eventually(t, 30*time.Second, "c catches up on config/feature", func() bool {
		resp, err := http.Get("http://" + c2.state.API + "/v1/kv/config/feature")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && string(body) == "on"
	})
	var info agent.Info
	if err := json.Unmarshal([]byte(mustCLI(t, "info", "--api", c2.state.API, "--json")), &info); err != nil || !info.Joined || info.ID != c.state.ID {
		t.Fatalf("info of restarted c: %+v, %v", info, err)
	}
	testutil.Eventually(t, 30*time.Second, "all three agents hold the same store", func() bool {
		digests := map[string]bool{}
		for _, api := range []string{a.state.API, b.state.API, c2.state.API} {
			var info agent.Info
			out, err := cli(t, "info", "--api", api, "--json")
			if err != nil || json.Unmarshal([]byte(out), &info) != nil {
				return false
			}
			digests[info.Store.Digest] = true
		}
		return len(digests) == 1
	})
	if got := mustCLI(t, "kv", "ls", "config/", "--api", c2.state.API); !strings.Contains(got, "config/db") || !strings.Contains(got, "postgres://db2:5432") || !strings.Contains(got, "config/feature") {
		t.Fatalf("kv ls on c:\n%s", got)
	}

	// SIGHUP: b re-reads its file and starts syncing a second key.
	feature := filepath.Join(dir, "feature")
	if err := os.WriteFile(configB, []byte(`{"name": "from-file", "tag": ["role=cache"], "sync": ["config/db=`+synced+`", "config/feature=`+feature+`"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	b.signal(t, syscall.SIGHUP)
	testutil.Eventually(t, 20*time.Second, "b syncs config/feature after SIGHUP", func() bool {
		data, err := os.ReadFile(feature)
		return err == nil && string(data) == "on"
	})

	// Delete through the CLI; SIGTERM leaves politely and removes agent.json.
	mustCLI(t, "kv", "del", "config/feature", "--api", a.state.API)
	testutil.Eventually(t, 20*time.Second, "the delete reaches c", func() bool {
		_, err := cli(t, "kv", "get", "config/feature", "--api", c2.state.API)
		return err != nil && strings.Contains(err.Error(), "not_found")
	})
	for _, p := range []*agentProc{c2, b, a} {
		if err := p.signal(t, syscall.SIGTERM); err != nil {
			t.Fatalf("agent %s exited with %v on SIGTERM", p.name, err)
		}
		if _, err := os.Stat(filepath.Join(p.dataDir, agent.StateFile)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("agent %s left %s behind: %v", p.name, agent.StateFile, err)
		}
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestCLISaysWhenNoAgentRuns(t *testing.T) {
	_, err := cli(t, "info", "--api", "127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "no agent at 127.0.0.1:1 (nothing listening there): start one with `p2p agent`") {
		t.Fatalf("p2p info without an agent: %v", err)
	}
}

func TestCLIRejectsBadInputBeforeCallingTheAgent(t *testing.T) {
	dir := t.TempDir()
	a := startAgentProc(t, "a", filepath.Join(dir, "a"), nil, "--name", "a")
	_, err := cli(t, "send", `{"unfinished":`, "--api", a.state.API)
	if err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Fatalf("send with bad JSON: %v", err)
	}
	if _, err := cli(t, "send", "plain words", "--text", "--api", a.state.API); err != nil {
		t.Fatalf("send --text: %v", err)
	}
	_, err = cli(t, "kv", "put", "big", strings.Repeat("x", 70000), "--api", a.state.API)
	if err == nil || !strings.Contains(err.Error(), "too_large") {
		t.Fatalf("kv put of 70000 bytes: %v", err)
	}
	if out := mustCLI(t, "kv", "ls", "--api", a.state.API, "--json"); strings.Contains(out, `"big"`) {
		t.Fatalf("rejected key stored: %s", out)
	}
	// A public API address without a token is refused at start.
	cmd := exec.Command(binary, "agent", "--data", filepath.Join(dir, "b"), "--listen", "127.0.0.1:0", "--api", "0.0.0.0:0")
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "api-token") {
		t.Fatalf("agent on 0.0.0.0 without a token: %v, %s", err, out)
	}
	if err := a.signal(t, syscall.SIGINT); err != nil {
		t.Fatalf("SIGINT: %v", err)
	}
}
