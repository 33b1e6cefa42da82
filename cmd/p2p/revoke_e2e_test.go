package main

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/p2p-go/p2p/agent"
	"github.com/p2p-go/p2p/internal/testutil"
)

// metricValue scrapes an agent's /metrics and returns the value of the
// sample whose name and labels are exactly series (-1 when absent).
func metricValue(t *testing.T, api, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + api + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	scanner := bufio.NewScanner(resp.Body)
	scanner.Buffer(make([]byte, 64<<10), 1<<20)
	for scanner.Scan() {
		name, value, ok := strings.Cut(scanner.Text(), " ")
		if ok && name == series {
			v, err := strconv.ParseFloat(value, 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// linkedTo reports whether the agent at api lists id as a member or has a
// link to it.
func linkedTo(t *testing.T, client *agent.Client, id string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	members, err := client.Members(ctx)
	if err != nil {
		return true
	}
	info, err := client.Info(ctx)
	if err != nil {
		return true
	}
	return slices.ContainsFunc(members, func(m agent.Member) bool { return m.ID == id }) || slices.Contains(info.Neighbors, id)
}

// Issue 11: `p2p members revoke` on one agent cuts a real agent process off
// every member within 10 s; a write it makes afterwards reaches nobody; and
// restarted from its data directory it cannot rejoin through any member.
func TestRevokedAgentIsCutOffAndCannotRejoin(t *testing.T) {
	dir := t.TempDir()
	secret := strings.TrimSpace(mustCLI(t, "keygen"))
	env := []string{"P2P_SECRET=" + secret}
	a := startAgentProc(t, "a", filepath.Join(dir, "a"), env, "--name", "a")
	b := startAgentProc(t, "b", filepath.Join(dir, "b"), env, "--name", "b", "--join", a.state.Addr)
	c := startAgentProc(t, "c", filepath.Join(dir, "c"), env, "--name", "c", "--join", a.state.Addr)
	d := startAgentProc(t, "d", filepath.Join(dir, "d"), env, "--name", "d", "--join", b.state.Addr)
	members := []*agentProc{a, b, c}
	clients := map[string]*agent.Client{}
	for _, p := range []*agentProc{a, b, c, d} {
		clients[p.name] = agent.NewClient(p.state.API, "")
		t.Cleanup(clients[p.name].CloseIdleConnections)
	}
	for _, p := range members {
		testutil.Eventually(t, 30*time.Second, p.name+" lists 4 named members", func() bool {
			list := membersOf(t, p.state.API)
			return len(list) == 4 && slices.ContainsFunc(list, func(m agent.Member) bool { return m.Name == "d" })
		})
	}
	mustCLI(t, "kv", "put", "config/db", "db1", "--api", d.state.API)
	for _, p := range members {
		testutil.Eventually(t, 20*time.Second, "d's write before its revocation on "+p.name, func() bool {
			out, err := cli(t, "kv", "get", "config/db", "--api", p.state.API)
			return err == nil && out == "db1"
		})
	}

	// Revoke d by name through b.
	start := time.Now()
	out := mustCLI(t, "members", "revoke", "d", "--api", b.state.API)
	if !strings.Contains(out, "revoked "+d.state.ID) {
		t.Fatalf("members revoke printed %q", out)
	}
	for _, p := range members {
		testutil.Eventually(t, 10*time.Second-time.Since(start), "d cut off from "+p.name, func() bool { return !linkedTo(t, clients[p.name], d.state.ID) })
	}
	testutil.Eventually(t, 10*time.Second-time.Since(start), "d without links", func() bool {
		info, err := clients["d"].Info(context.Background())
		return err == nil && len(info.Neighbors) == 0
	})
	t.Logf("d cut off everywhere %v after the revocation", time.Since(start))
	revoked := mustCLI(t, "members", "revoked", "--api", c.state.API)
	if !strings.Contains(revoked, d.state.ID) || !strings.Contains(revoked, short(b.state.ID)) {
		t.Fatalf("members revoked on c:\n%s", revoked)
	}

	// d writes after its revocation; c writes after d. c's write reaches
	// every member, d's none, and the value d wrote before stays.
	mustCLI(t, "kv", "put", "config/db", "evil", "--api", d.state.API)
	mustCLI(t, "kv", "put", "config/from-d", "evil", "--api", d.state.API)
	mustCLI(t, "kv", "put", "config/after", "ok", "--api", c.state.API)
	for _, p := range members {
		testutil.Eventually(t, 20*time.Second, "c's later write on "+p.name, func() bool {
			out, err := cli(t, "kv", "get", "config/after", "--api", p.state.API)
			return err == nil && out == "ok"
		})
		if out, err := cli(t, "kv", "get", "config/db", "--api", p.state.API); err != nil || out != "db1" {
			t.Fatalf("config/db on %s = %q, %v; want d's earlier write", p.name, out, err)
		}
		_, err := clients[p.name].Get(context.Background(), "config/from-d")
		var apiErr *agent.APIError
		if !errors.As(err, &apiErr) || apiErr.Code != agent.CodeNotFound {
			t.Fatalf("d's write after its revocation on %s: %v", p.name, err)
		}
	}

	// Restarted from its data directory, d cannot rejoin through any
	// member: each closes its connection right after the handshake.
	if err := d.signal(t, syscall.SIGTERM); err != nil {
		t.Fatalf("d's exit: %v", err)
	}
	for _, p := range members {
		refused := metricValue(t, p.state.API, "p2p_revoked_connections_closed_total")
		again := startAgentProc(t, "d-via-"+p.name, filepath.Join(dir, "d"), env, "--name", "d", "--join", p.state.Addr)
		testutil.Eventually(t, 20*time.Second, p.name+" refusing d's connection", func() bool {
			return metricValue(t, p.state.API, "p2p_revoked_connections_closed_total") > refused
		})
		client := agent.NewClient(again.state.API, "")
		info, err := client.Info(context.Background())
		client.CloseIdleConnections()
		if err != nil || info.Joined || len(info.Neighbors) != 0 {
			t.Fatalf("d restarted via %s: joined %v, neighbours %v, %v", p.name, info.Joined, info.Neighbors, err)
		}
		if linkedTo(t, clients[p.name], d.state.ID) {
			t.Fatalf("%s lists d again", p.name)
		}
		if err := again.signal(t, syscall.SIGTERM); err != nil {
			t.Fatalf("d's exit: %v", err)
		}
	}
	if v := metricValue(t, a.state.API, "p2p_revoked_members"); v != 1 {
		t.Fatalf("p2p_revoked_members on a = %v", v)
	}
}
