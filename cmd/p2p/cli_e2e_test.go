package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/p2p-go/p2p/agent"
	"github.com/p2p-go/p2p/internal/testutil"
)

func TestCLIVersion(t *testing.T) {
	sub := mustCLI(t, "version")
	flag := mustCLI(t, "--version")
	if sub != flag {
		t.Fatalf("p2p version %q and p2p --version %q differ", sub, flag)
	}
	// TestMain builds like CI (GOFLAGS may hold -buildvcs=false): the
	// revision is then unknown, and the line says so rather than failing.
	for _, want := range []string{"p2p ", "revision ", runtime.Version()} {
		if !strings.Contains(sub, want) {
			t.Errorf("p2p version = %q, missing %q", sub, want)
		}
	}
}

// Pointed at a web server, the CLI says where it called and what answered,
// in one line, and does not print the page.
func TestCLINamesTheAddressAndWhatAnsweredWhenNotAnAgent(t *testing.T) {
	page := "<!DOCTYPE html><html><body>" + strings.Repeat("<p>welcome</p>", 500) + "</body></html>"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(page))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, api := range []string{addr, srv.URL, srv.URL + "/"} {
		_, err := cli(t, "members", "--api", api)
		if err == nil {
			t.Fatalf("members --api %s succeeded against a web page", api)
		}
		msg := err.Error()
		for _, want := range []string{"not a p2p agent at " + addr, "200 OK", "text/html"} {
			if !strings.Contains(msg, want) {
				t.Errorf("members --api %s: %q does not say %q", api, msg, want)
			}
		}
		if strings.Count(msg, "welcome") > 10 {
			t.Errorf("members --api %s printed the page: %q", api, msg)
		}
	}
}

func TestCLIAcceptsURLFormOfAPI(t *testing.T) {
	a := startAgentProc(t, "a", filepath.Join(t.TempDir(), "a"), nil, "--name", "a")
	for _, api := range []string{"http://" + a.state.API, "http://" + a.state.API + "/"} {
		out := mustCLI(t, "info", "--api", api)
		if !strings.Contains(out, a.state.ID) || !strings.Contains(out, "alone: started a new network") {
			t.Fatalf("info --api %s:\n%s", api, out)
		}
	}
	if err := a.signal(t, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
}

func TestCLIAgentOnDataDirInUseNamesThePID(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a")
	a := startAgentProc(t, "a", dir, nil, "--name", "a")
	cmd := exec.Command(binary, "agent", "--data", dir, "--listen", "127.0.0.1:0", "--api", "127.0.0.1:0")
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if want := dir + " is in use by PID " + strconv.Itoa(a.cmd.Process.Pid); err == nil || !strings.Contains(string(out), want) {
		t.Fatalf("second agent on %s: %v, %s; want %q", dir, err, out, want)
	}
	if err := a.signal(t, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
}

func TestCLIAgentFlagsAreTyped(t *testing.T) {
	for _, args := range [][]string{{"--handler-timeout", "3"}, {"--handler-concurrency", "many"}} {
		cmd := exec.Command(binary, append([]string{"agent", "--data", t.TempDir()}, args...)...)
		cmd.Env = cleanEnv()
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), args[0]) {
			t.Fatalf("agent %v: %v, %s", args, err, out)
		}
	}
	help := mustCLI(t, "agent", "--help")
	for _, want := range []string{"--handler-concurrency int", "--handler-timeout duration"} {
		if !strings.Contains(help, want) {
			t.Errorf("agent --help lacks %q", want)
		}
	}
	// A switch is a switch, not a string that defaults to "false".
	if !regexp.MustCompile(`--sign-broadcasts {2,}sign`).MatchString(help) {
		t.Errorf("agent --help: --sign-broadcasts is not shown as a switch:\n%s", help)
	}
	for _, sub := range []string{"run", "dht"} {
		help := mustCLI(t, sub, "--help")
		if !strings.Contains(help, "repeatable, or comma-separated") {
			t.Errorf("%s --help:\n%s", sub, help)
		}
	}
	// A backtick in a flag's usage is taken by pflag as the value's type
	// name ("--secret p2p keygen"): every flag shows at most one word there.
	flagLine := regexp.MustCompile(`^\s+(?:-\w, )?--[\w-]+( [^ ].*?)?(?:  |$)`)
	for _, sub := range []string{"run", "dht", "agent", "members", "kv"} {
		for _, line := range strings.Split(mustCLI(t, sub, "--help"), "\n") {
			if m := flagLine.FindStringSubmatch(line); m != nil && strings.Count(strings.TrimSpace(m[1]), " ") > 0 {
				t.Errorf("%s --help: flag with a several-word type: %q", sub, line)
			}
		}
	}
}

// Names in `p2p events`, internal keys out of `p2p kv ls` unless --all.
func TestCLIEventsShowNamesAndListingHidesInternalKeys(t *testing.T) {
	dir := t.TempDir()
	a := startAgentProc(t, "a", filepath.Join(dir, "a"), nil, "--name", "alpha")
	b := startAgentProc(t, "b", filepath.Join(dir, "b"), nil, "--name", "beta", "--join", a.state.Addr)
	testutil.Eventually(t, 30*time.Second, "b knows alpha's name", func() bool {
		for _, m := range membersOf(t, b.state.API) {
			if m.ID == a.state.ID && m.Name == "alpha" {
				return true
			}
		}
		return false
	})
	events := startStream(t, "events", "--api", b.state.API)
	// The stream is open once the agent answered its request; a send
	// repeated until a line arrives covers the moment before that.
	var line string
	testutil.Eventually(t, 20*time.Second, "a line on the events stream", func() bool {
		mustCLI(t, "send", `{"hello":"all"}`, "--api", a.state.API)
		select {
		case line = <-events.lines:
			return true
		case <-time.After(500 * time.Millisecond):
			return false
		}
	})
	if want := "message from alpha (" + a.state.ID[:10] + ")"; !strings.HasPrefix(line, want) {
		t.Fatalf("events line %q, want it to start with %q", line, want)
	}

	mustCLI(t, "kv", "put", "app/x", "1", "--api", a.state.API)
	ls := mustCLI(t, "kv", "ls", "--api", a.state.API)
	if strings.Contains(ls, agent.InternalPrefix) || !strings.Contains(ls, "app/x") {
		t.Fatalf("kv ls:\n%s", ls)
	}
	header := strings.SplitN(ls, "\n", 2)[0]
	if strings.Index(header, "VALUE") > len("app/x")+4 {
		t.Fatalf("kv ls pads the key column beyond its keys:\n%s", ls)
	}
	all := mustCLI(t, "kv", "ls", "--all", "--api", a.state.API)
	if !strings.Contains(all, agent.NodesPrefix+a.state.ID) {
		t.Fatalf("kv ls --all:\n%s", all)
	}
	for _, p := range []*agentProc{b, a} {
		if err := p.signal(t, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
}

// Values the library would refuse are reported by the flag that set them,
// never by a Go field name (Config.AdvertiseAddr, Config.Name).
func TestCLIErrorsNameFlagsNotGoFields(t *testing.T) {
	long := strings.Repeat("n", 200)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"agent", "--advertise", "nonsense"}, `--advertise ($P2P_ADVERTISE): "nonsense": want host:port`},
		{[]string{"agent", "--name", long}, "--name ($P2P_NAME) is 200 bytes long: at most 128"},
		{[]string{"run", "--advertise", "nonsense"}, `--advertise: "nonsense": want host:port`},
		{[]string{"dht", "--advertise", "nonsense"}, `--advertise: "nonsense": want host:port`},
		// The library's own "p2p: " prefix is not said twice.
		{[]string{"run", "--advertise", "127.0.0.1:1", "--listen", "nonsense"}, "p2p: listen on nonsense"},
	} {
		// The case's own flags come last, so that they win.
		args := []string{tc.args[0], "--data", t.TempDir(), "--listen", "127.0.0.1:0"}
		if tc.args[0] == "agent" {
			args = append(args, "--api", "127.0.0.1:0")
		}
		// A command that starts instead of failing is killed, and fails the
		// case, after a bound.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, binary, append(args, tc.args[1:]...)...)
		cmd.Env = cleanEnv()
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), tc.want) || strings.Contains(string(out), "Config.") || strings.Contains(string(out), "p2p: p2p:") {
			t.Errorf("p2p %s: %v\n%s\nwant an error saying %q", strings.Join(tc.args, " "), err, out, tc.want)
		}
	}
}
