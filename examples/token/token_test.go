package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2p-go/p2p"
	"github.com/p2p-go/p2p/internal/testutil"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "token-test")
	if err != nil {
		panic(err)
	}
	if binary, err = testutil.BuildCommand(dir, "token", "."); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one running token process whose output lines are collected.
type proc struct {
	t     *testing.T
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser

	mu     sync.Mutex
	lines  []string
	errs   []string
	change chan struct{}
	done   chan struct{}
}

func start(t *testing.T, name, secret string, join ...string) *proc {
	t.Helper()
	args := []string{"-listen", "127.0.0.1:0", "-data", t.TempDir(), "-v"}
	if len(join) > 0 {
		args = append(args, "-join", strings.Join(join, ","))
	}
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "P2P_SECRET="+secret)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	p := &proc{t: t, name: name, cmd: cmd, stdin: stdin, change: make(chan struct{}, 1), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var readers sync.WaitGroup
	readers.Add(2)
	collect := func(r io.Reader, dst *[]string) {
		defer readers.Done()
		scanner := bufio.NewScanner(r)
		for scanner.Scan() {
			p.mu.Lock()
			*dst = append(*dst, scanner.Text())
			p.mu.Unlock()
			select {
			case p.change <- struct{}{}:
			default:
			}
		}
	}
	go collect(stdout, &p.lines)
	go collect(stderr, &p.errs)
	go func() {
		readers.Wait()
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			p.mu.Lock()
			t.Logf("%s stdout:\n%s\n%s stderr:\n%s", name, strings.Join(p.lines, "\n"), name, strings.Join(p.errs, "\n"))
			p.mu.Unlock()
		}
	})
	return p
}

// waitFor waits until a line of stdout (or stderr) matches re and returns
// its submatches.
func (p *proc) waitFor(re *regexp.Regexp, stderr bool) []string {
	p.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		p.mu.Lock()
		lines := p.lines
		if stderr {
			lines = p.errs
		}
		for _, l := range lines {
			if m := re.FindStringSubmatch(l); m != nil {
				p.mu.Unlock()
				return m
			}
		}
		p.mu.Unlock()
		select {
		case <-p.change:
		case <-p.done:
			p.t.Fatalf("%s exited while waiting for %q", p.name, re)
		case <-deadline:
			p.t.Fatalf("%s: timed out waiting for %q", p.name, re)
		}
	}
}

func (p *proc) addr() string {
	return p.waitFor(regexp.MustCompile(`^listening (\S+) id`), false)[1]
}

func (p *proc) send(line string) {
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		p.t.Fatalf("%s: write stdin: %v", p.name, err)
	}
}

func tokenLine(v string) *regexp.Regexp {
	return regexp.MustCompile(`^token ` + regexp.QuoteMeta(v) + `$`)
}

// TestTokenExampleAcrossProcesses runs the README's example as separate
// processes over real, encrypted TCP on loopback: late joiners get the
// current token from a neighbour through SendOne and a reply, and an update
// from any process reaches all of them.
func TestTokenExampleAcrossProcesses(t *testing.T) {
	secret := p2p.GenerateSecret()
	first := start(t, "p0", secret)
	seed := first.addr()
	first.send("41")
	first.waitFor(tokenLine("41"), false)

	procs := []*proc{first}
	for i := 1; i < 4; i++ {
		p := start(t, "p"+string(rune('0'+i)), secret, seed)
		p.waitFor(regexp.MustCompile(`^joined$`), false)
		p.waitFor(tokenLine("41"), false) // from a neighbour's reply
		procs = append(procs, p)
	}

	// An update from any process reaches all.
	procs[2].send(`{"v":42}`)
	for _, p := range procs {
		p.waitFor(tokenLine(`{"v":42}`), false)
	}

	// A late joiner, through another member, gets the current token.
	late := start(t, "p4", secret, procs[3].addr())
	late.waitFor(tokenLine(`{"v":42}`), false)
	procs = append(procs, late)

	late.send("43")
	for _, p := range procs {
		p.waitFor(tokenLine("43"), false)
	}
}

// TestTokenExampleWrongSecretIsRefused checks that a process with another
// cluster secret is refused during the handshake and never joins.
func TestTokenExampleWrongSecretIsRefused(t *testing.T) {
	member := start(t, "member", p2p.GenerateSecret())
	seed := member.addr()
	member.send("7")

	intruder := start(t, "intruder", p2p.GenerateSecret(), seed)
	member.waitFor(regexp.MustCompile(`refus`), true)
	intruder.waitFor(regexp.MustCompile(`refus|handshake`), true)
	intruder.mu.Lock()
	defer intruder.mu.Unlock()
	for _, l := range intruder.lines {
		if l == "joined" || strings.HasPrefix(l, "token 7") {
			t.Fatalf("intruder with the wrong secret got in: %q", l)
		}
	}
}
