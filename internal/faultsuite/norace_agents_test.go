//go:build !race

package faultsuite

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/p2p-go/p2p/agent"
)

// cluster is a set of agents in one lab, all with one secret unless told
// otherwise. Agent i (1-based) lives in the lab's namespace i. Agent 1
// starts the network; agent 2 joins through agent 1; every other agent joins
// through agents 1 and 2 (its bootstrap addresses).
type cluster struct {
	t      *testing.T
	lab    *lab
	dir    string
	secret string
	agents map[int]*agentProc
}

func newCluster(t *testing.T, size int) *cluster {
	t.Helper()
	l := newLab(t, size)
	out, err := exec.Command(binary, "keygen").Output()
	if err != nil {
		t.Fatalf("p2p keygen: %v", err)
	}
	return &cluster{t: t, lab: l, dir: t.TempDir(), secret: strings.TrimSpace(string(out)), agents: map[int]*agentProc{}}
}

// joinFlags are agent i's --join flags.
func (c *cluster) joinFlags(i int) []string {
	switch i {
	case 1:
		return nil
	case 2:
		return []string{"--join", c.lab.overlayAddr(1)}
	}
	return []string{"--join", c.lab.overlayAddr(1), "--join", c.lab.overlayAddr(2)}
}

// startAll starts agent 1, which starts the network, then agents 2 to n at
// once, and waits until each is running. (Started all at once, the agents
// have been seen to form two networks that never merged: the suite tests
// faults, not that.)
func (c *cluster) startAll(n int) []*agentProc {
	c.t.Helper()
	first := c.start(1, c.secret, c.joinFlags(1)...)
	first.waitRunning()
	procs := []*agentProc{first}
	for i := 2; i <= n; i++ {
		procs = append(procs, c.start(i, c.secret, c.joinFlags(i)...))
	}
	for _, p := range procs[1:] {
		p.waitRunning()
	}
	return procs
}

// all returns the agents 1 to n.
func (c *cluster) all(n int) []*agentProc {
	var out []*agentProc
	for i := 1; i <= n; i++ {
		out = append(out, c.agents[i])
	}
	return out
}

// agentProc is one agent: its settings, and its current process.
type agentProc struct {
	c       *cluster
	index   int
	name    string
	dataDir string
	secret  string
	flags   []string
	client  *agent.Client
	logPath string

	cmd     *exec.Cmd
	exited  chan struct{}
	started time.Time
	state   agent.AgentState
	recs    []*recorder
}

// start starts agent i in its namespace (secret "" for none) without
// waiting for it; waitRunning waits.
func (c *cluster) start(i int, secret string, flags ...string) *agentProc {
	c.t.Helper()
	dataDir := filepath.Join(c.dir, fmt.Sprintf("a%d", i))
	p := &agentProc{
		c: c, index: i, name: fmt.Sprintf("a%02d", i), dataDir: dataDir, secret: secret, flags: flags,
		client: agent.NewClient("unix:"+filepath.Join(dataDir, "api.sock"), ""), logPath: dataDir + ".log",
	}
	c.agents[i] = p
	c.t.Cleanup(func() {
		p.stop()
		p.client.CloseIdleConnections()
		if c.t.Failed() {
			p.logTail(60)
		}
	})
	p.launch()
	return p
}

// launch starts the process: `ip netns exec NS p2p agent ...`, which execs
// the agent itself, so cmd.Process is the agent.
func (p *agentProc) launch() {
	t := p.c.t
	t.Helper()
	if err := os.MkdirAll(p.dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"netns", "exec", p.c.lab.ns(p.index), binary, "agent",
		"--data", p.dataDir, "--name", p.name, "--listen", p.c.lab.overlayAddr(p.index),
		"--api", "unix:" + filepath.Join(p.dataDir, "api.sock")}, p.flags...)
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logFile, "=== start at %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command("ip", args...)
	cmd.Env = agentEnv(p.secret)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Should the test binary die, the agent dies with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start agent %s: %v", p.name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(exited)
	}()
	p.cmd, p.exited, p.started = cmd, exited, time.Now()
}

// agentEnv is the test's environment without P2P_* variables, plus the
// secret.
func agentEnv(secret string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "P2P_") {
			env = append(env, kv)
		}
	}
	if secret != "" {
		env = append(env, "P2P_SECRET="+secret)
	}
	return env
}

// waitRunning waits until the agent wrote agent.json with its own PID (its
// API serves from then on), then records its event stream.
func (p *agentProc) waitRunning() {
	t := p.c.t
	t.Helper()
	statePath := filepath.Join(p.dataDir, agent.StateFile)
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, err := os.ReadFile(statePath)
		if err == nil && json.Unmarshal(data, &p.state) == nil && p.state.PID == p.cmd.Process.Pid {
			break
		}
		select {
		case <-p.exited:
			p.logTail(30)
			t.Fatalf("agent %s exited while starting", p.name)
		default:
		}
		if time.Now().After(deadline) {
			p.logTail(30)
			t.Fatalf("agent %s did not write %s within 30s", p.name, statePath)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.recs = append(p.recs, startRecorder(p.client))
}

// restart starts the agent again on its data directory with its settings.
func (p *agentProc) restart() {
	p.c.t.Helper()
	p.launch()
}

// kill sends SIGKILL and waits for the exit.
func (p *agentProc) kill() {
	p.c.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.c.t.Fatalf("SIGKILL %s: %v", p.name, err)
	}
	p.waitExit()
}

func (p *agentProc) waitExit() {
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		p.c.t.Fatalf("agent %s did not exit", p.name)
	}
	for _, r := range p.recs {
		r.stop()
	}
}

// stop kills the process if it runs and ends its recorders.
func (p *agentProc) stop() {
	if p.cmd != nil {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.exited
		}
	}
	for _, r := range p.recs {
		r.stop()
	}
}

// logTail logs the last lines of the agent's log.
func (p *agentProc) logTail(lines int) {
	data, _ := os.ReadFile(p.logPath)
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	p.c.t.Logf("last %d lines of the log of agent %s:\n%s", len(all), p.name, strings.Join(all, "\n"))
}

// logCount counts the lines of the agent's log that contain s.
func (p *agentProc) logCount(s string) int {
	data, _ := os.ReadFile(p.logPath)
	return bytes.Count(data, []byte(s))
}

// memberIDs returns the IDs of the live members the agent lists.
func (p *agentProc) memberIDs() (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	members, err := p.client.Members(ctx)
	if err != nil {
		return nil, fmt.Errorf("members of %s: %w", p.name, err)
	}
	ids := map[string]bool{}
	for _, m := range members {
		ids[m.ID] = true
	}
	return ids, nil
}

// events returns the events of every run of the agent, in order.
func (p *agentProc) events() []timedEvent {
	var out []timedEvent
	for _, r := range p.recs {
		out = append(out, r.snapshot()...)
	}
	return out
}

// requireStreams fails t if the event stream of one of agents dropped
// events (the agent ends a stream whose client falls behind with an
// "error" event): its counts would then prove nothing.
func requireStreams(t *testing.T, agents []*agentProc) {
	t.Helper()
	for _, p := range agents {
		for _, te := range p.events() {
			if te.ev.Type == "error" {
				t.Fatalf("the event stream of %s ended with an error, so its counts are incomplete: %s", p.name, te.ev.Error)
			}
		}
	}
}

// timedEvent is an event of an agent's /v1/events stream and when the test
// read it.
type timedEvent struct {
	at time.Time
	ev agent.Event
}

// recorder keeps every event of one agent process's /v1/events stream.
type recorder struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex // guards events
	events []timedEvent
}

func startRecorder(client *agent.Client) *recorder {
	ctx, cancel := context.WithCancel(context.Background())
	r := &recorder{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		_ = client.Events(ctx, func(ev agent.Event) error {
			r.mu.Lock()
			r.events = append(r.events, timedEvent{at: time.Now(), ev: ev})
			r.mu.Unlock()
			return nil
		})
	}()
	return r
}

func (r *recorder) stop() {
	r.cancel()
	<-r.done
}

func (r *recorder) snapshot() []timedEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// probeMessage is the body of the suite's broadcasts.
type probeMessage struct {
	Probe string `json:"faultsuite"`
	Seq   int    `json:"seq"`
}

// received counts, by sequence number, the suite's broadcasts tagged tag
// that the agent delivered.
func (p *agentProc) received(tag string) map[int]int {
	counts := map[int]int{}
	for _, te := range p.events() {
		if te.ev.Type != "message" {
			continue
		}
		var m probeMessage
		if json.Unmarshal(te.ev.Data, &m) == nil && m.Probe == tag {
			counts[m.Seq]++
		}
	}
	return counts
}

// fails returns the "member fail" events the agent announced.
func (p *agentProc) fails() []timedEvent {
	var out []timedEvent
	for _, te := range p.events() {
		if te.ev.Type == "member" && te.ev.Kind == "fail" {
			out = append(out, te)
		}
	}
	return out
}

// poll calls cond every 100 ms until it holds or timeout passes, and
// returns how long that took, whether it held, and cond's last reason.
func poll(timeout time.Duration, cond func() (bool, string)) (time.Duration, bool, string) {
	start := time.Now()
	for {
		ok, why := cond()
		if ok {
			return time.Since(start), true, ""
		}
		if time.Since(start) > timeout {
			return time.Since(start), false, why
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pollFrom is poll with the time measured from ref (an event already past)
// and the timeout counted from ref too.
func pollFrom(ref time.Time, timeout time.Duration, cond func() (bool, string)) (time.Duration, bool, string) {
	_, ok, why := poll(time.Until(ref.Add(timeout)), cond)
	return time.Since(ref), ok, why
}

// pollEach polls every condition every 100 ms until each has held once or
// timeout (from ref) passes, and returns for each the time from ref when it
// first held, whether it did, and its last reason.
func pollEach(ref time.Time, timeout time.Duration, conds ...func() (bool, string)) ([]time.Duration, []bool, []string) {
	took := make([]time.Duration, len(conds))
	held := make([]bool, len(conds))
	whys := make([]string, len(conds))
	for {
		pending := 0
		for i, cond := range conds {
			if held[i] {
				continue
			}
			ok, why := cond()
			took[i], held[i], whys[i] = time.Since(ref), ok, why
			if !ok {
				pending++
			}
		}
		if pending == 0 || time.Since(ref) > timeout {
			return took, held, whys
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// mustPoll is poll that fails t on timeout.
func mustPoll(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	took, ok, why := poll(timeout, cond)
	if !ok {
		t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, why)
	}
	return took
}

// idsOf returns the node IDs of agents.
func idsOf(agents []*agentProc) map[string]bool {
	ids := map[string]bool{}
	for _, p := range agents {
		ids[p.state.ID] = true
	}
	return ids
}

// membersAre reports whether every agent in observers lists exactly the
// agents in want as live members.
func membersAre(observers, want []*agentProc) func() (bool, string) {
	wantIDs := idsOf(want)
	return func() (bool, string) {
		for _, o := range observers {
			got, err := o.memberIDs()
			if err != nil {
				return false, err.Error()
			}
			if !mapsEqual(got, wantIDs) {
				return false, fmt.Sprintf("%s lists %d members, want %d (%s)", o.name, len(got), len(wantIDs), diffNames(o.c, got, wantIDs))
			}
		}
		return true, ""
	}
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// diffNames names the agents missing from got and the extra ones.
func diffNames(c *cluster, got, want map[string]bool) string {
	var missing, extra []string
	for id := range want {
		if !got[id] {
			missing = append(missing, c.nameOf(id))
		}
	}
	for id := range got {
		if !want[id] {
			extra = append(extra, c.nameOf(id))
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	return fmt.Sprintf("missing %v, extra %v", missing, extra)
}

// byID returns the agent with node ID id, or nil.
func (c *cluster) byID(id string) *agentProc {
	for _, p := range c.agents {
		if p.state.ID == id {
			return p
		}
	}
	return nil
}

// nameOf returns the name of the agent with node ID id.
func (c *cluster) nameOf(id string) string {
	for _, p := range c.agents {
		if p.state.ID == id {
			return p.name
		}
	}
	if len(id) > 8 {
		id = id[:8]
	}
	return "unknown:" + id
}

// sender broadcasts a probeMessage from one agent every period until
// stopped, and keeps when each was accepted.
type sender struct {
	tag    string
	stopCh chan struct{}
	once   sync.Once
	done   chan struct{}

	mu       sync.Mutex // guards accepted, refused
	accepted map[int]time.Time
	refused  map[int]error
	next     int
}

func startSender(p *agentProc, tag string, period time.Duration) *sender {
	s := &sender{tag: tag, stopCh: make(chan struct{}), done: make(chan struct{}), accepted: map[int]time.Time{}, refused: map[int]error{}}
	go func() {
		defer close(s.done)
		ticker := time.NewTicker(period)
		defer ticker.Stop()
		for {
			s.mu.Lock()
			seq := s.next
			s.next++
			s.mu.Unlock()
			body, _ := json.Marshal(probeMessage{Probe: tag, Seq: seq})
			at := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			err := p.client.Send(ctx, body)
			cancel()
			s.mu.Lock()
			if err == nil {
				s.accepted[seq] = at
			} else {
				s.refused[seq] = err
			}
			s.mu.Unlock()
			select {
			case <-s.stopCh:
				return
			case <-ticker.C:
			}
		}
	}()
	return s
}

// stop ends the broadcasts; it may be called more than once.
func (s *sender) stop() {
	s.once.Do(func() { close(s.stopCh) })
	<-s.done
}

// acceptedAt returns when broadcast seq was accepted.
func (s *sender) acceptedAt(seq int) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted[seq]
}

// acceptedSince returns the sequence numbers accepted at or after from,
// sorted.
func (s *sender) acceptedSince(from time.Time) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for seq, at := range s.accepted {
		if !at.Before(from) {
			out = append(out, seq)
		}
	}
	slices.Sort(out)
	return out
}

// refusedCount returns how many sends the agent refused, and one reason.
func (s *sender) refusedCount() (int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, err := range s.refused {
		return len(s.refused), err.Error()
	}
	return 0, ""
}

// since formats the time from ref to at in seconds.
func since(ref, at time.Time) string { return fmt.Sprintf("%.2fs", at.Sub(ref).Seconds()) }

// because formats the reason a condition did not hold, if any.
func because(why string) string {
	if why == "" {
		return ""
	}
	return " (" + why + ")"
}

// counter returns the value of the unlabelled counter name that the agent's
// /metrics page shows (read over its API socket).
func (p *agentProc) counter(name string) (float64, error) {
	socket := filepath.Join(p.dataDir, "api.sock")
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		},
	}}
	resp, err := client.Get("http://agent/metrics")
	if err != nil {
		return 0, fmt.Errorf("metrics of %s: %w", p.name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("metrics of %s: status %d, %v", p.name, resp.StatusCode, err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if value, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(value), 64)
		}
	}
	return 0, fmt.Errorf("metrics of %s: no %s", p.name, name)
}

// recovered sums p2p_broadcasts_recovered_total over agents: the broadcasts
// they missed while cut off and fetched from a new neighbour's summary
// (membership events and store writes included).
func recovered(agents []*agentProc) (int, error) {
	total := 0
	for _, p := range agents {
		v, err := p.counter("p2p_broadcasts_recovered_total")
		if err != nil {
			return 0, err
		}
		total += int(v)
	}
	return total, nil
}
