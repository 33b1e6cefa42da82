package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/p2p-go/p2p"
	"github.com/p2p-go/p2p/agent"
	"github.com/p2p-go/p2p/internal/testutil"
)

// kvNode is one agent process of the store test with its API client.
type kvNode struct {
	proc   *agentProc
	client *agent.Client
}

func newKVNode(t *testing.T, proc *agentProc) *kvNode {
	c := agent.NewClient(proc.state.API, "")
	t.Cleanup(c.CloseIdleConnections)
	return &kvNode{proc: proc, client: c}
}

// kvSnapshot is what one agent shows of its store: the full listing of
// GET /v1/kv?prefix= and GET /v1/info.
type kvSnapshot struct {
	records []agent.Record
	info    agent.Info
}

func kvSnapshotOf(n *kvNode) (kvSnapshot, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	records, err := n.client.ListAll(ctx, "")
	if err != nil {
		return kvSnapshot{}, fmt.Errorf("list on %s: %w", n.proc.name, err)
	}
	info, err := n.client.Info(ctx)
	if err != nil {
		return kvSnapshot{}, fmt.Errorf("info of %s: %w", n.proc.name, err)
	}
	return kvSnapshot{records: records, info: info}, nil
}

// userValues returns the live keys outside the agent's own prefix (_agent/)
// with their values.
func userValues(records []agent.Record) map[string]string {
	out := map[string]string{}
	for _, r := range records {
		if !strings.HasPrefix(r.Key, "_agent/") {
			out[r.Key] = string(r.Value)
		}
	}
	return out
}

// kvConverged reports whether every node shows the same full listing (keys,
// values, versions, writers), the same store digest and the same number of
// tombstones, whether the user keys are exactly want, and whether every
// node lists every other as a live member; when not, it says why.
func kvConverged(nodes []*kvNode, want map[string]string) (bool, string) {
	var first kvSnapshot
	for i, n := range nodes {
		snap, err := kvSnapshotOf(n)
		if err != nil {
			return false, err.Error()
		}
		if got := userValues(snap.records); !maps.Equal(got, want) {
			return false, fmt.Sprintf("%s holds %d user keys %v, want %d %v", n.proc.name, len(got), got, len(want), want)
		}
		if snap.info.Members != len(nodes) {
			return false, fmt.Sprintf("%s lists %d members, want %d", n.proc.name, snap.info.Members, len(nodes))
		}
		if i == 0 {
			first = snap
			continue
		}
		if !reflect.DeepEqual(snap.records, first.records) {
			return false, fmt.Sprintf("listings differ:\n%s: %+v\n%s: %+v", nodes[0].proc.name, first.records, n.proc.name, snap.records)
		}
		if s, f := snap.info.Store, first.info.Store; s.Digest != f.Digest || s.Keys != f.Keys || s.Tombstones != f.Tombstones {
			return false, fmt.Sprintf("stores differ: %s %+v, %s %+v", nodes[0].proc.name, f, n.proc.name, s)
		}
	}
	return true, ""
}

// kvWaitConverged waits until kvConverged holds, and fails with its last
// reason when the deadline passes.
func kvWaitConverged(t *testing.T, timeout time.Duration, what string, nodes []*kvNode, want map[string]string) {
	t.Helper()
	testutil.EventuallyWhy(t, timeout, what, func() (bool, string) { return kvConverged(nodes, want) })
}

// withoutKey returns records without the one of key.
func withoutKey(records []agent.Record, key string) []agent.Record {
	return slices.DeleteFunc(slices.Clone(records), func(r agent.Record) bool { return r.Key == key })
}

// TestStoreConvergesAfterSIGKILLAndRestart checks the store's claims on
// real processes (issue 4): five agents on loopback; several write; one is
// killed with SIGKILL; the others write, overwrite and delete, among them
// keys the killed one wrote; the killed one restarts from its data
// directory, first alone (it holds exactly what it held when it was killed:
// every write it acknowledged or applied was on disk) then joining, and
// anti-entropy brings all five to identical stores: the same listing
// (keys, values, versions, writers), the same digest and tombstones.
func TestStoreConvergesAfterSIGKILLAndRestart(t *testing.T) {
	dir := t.TempDir()
	env := []string{"P2P_SECRET=" + strings.TrimSpace(mustCLI(t, "keygen"))}
	names := []string{"a", "b", "c", "d", "e"}
	nodes := make([]*kvNode, len(names))
	nodes[0] = newKVNode(t, startAgentProc(t, "a", filepath.Join(dir, "a"), env, "--name", "a"))
	for i := 1; i < len(names); i++ {
		flags := []string{"--name", names[i], "--join", nodes[0].proc.state.Addr}
		if i > 1 {
			flags = append(flags, "--join", nodes[i-1].proc.state.Addr)
		}
		nodes[i] = newKVNode(t, startAgentProc(t, names[i], filepath.Join(dir, names[i]), env, flags...))
	}
	a, b, c, d, e := nodes[0], nodes[1], nodes[2], nodes[3], nodes[4]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	want := map[string]string{}
	put := func(n *kvNode, key, value string) {
		t.Helper()
		if _, err := n.client.Put(ctx, key, []byte(value)); err != nil {
			t.Fatalf("put %s on %s: %v", key, n.proc.name, err)
		}
		want[key] = value
	}
	del := func(n *kvNode, key string) {
		t.Helper()
		if err := n.client.Delete(ctx, key); err != nil {
			t.Fatalf("delete %s on %s: %v", key, n.proc.name, err)
		}
		delete(want, key)
	}

	// Writes from several nodes, the victim e among them, and a key
	// overwritten by another node.
	for _, n := range []*kvNode{a, b, c, e} {
		for i := range 6 {
			put(n, fmt.Sprintf("w/%s/%d", n.proc.name, i), fmt.Sprintf("%s wrote %d", n.proc.name, i))
		}
	}
	put(a, "shared/config", "from a")
	kvWaitConverged(t, 60*time.Second, "the five stores converge before the kill", nodes, want)
	put(c, "shared/config", "from c, after a")
	kvWaitConverged(t, 30*time.Second, "the overwrite reaches the five", nodes, want)
	beforeKill, err := kvSnapshotOf(e)
	if err != nil {
		t.Fatal(err)
	}
	wantBeforeKill := maps.Clone(want)

	// SIGKILL e; the others see it gone, then write, overwrite and delete.
	if err := e.proc.signal(t, syscall.SIGKILL); err == nil {
		t.Fatal("e exited cleanly on SIGKILL")
	}
	live := nodes[:4]
	testutil.Eventually(t, 30*time.Second, "a, b, c and d see e gone", func() bool {
		for _, n := range live {
			info, err := n.client.Info(ctx)
			if err != nil || info.Members != len(live) {
				return false
			}
		}
		return true
	})
	for _, n := range live {
		for i := range 4 {
			put(n, fmt.Sprintf("w/%s/after-%d", n.proc.name, i), fmt.Sprintf("%s wrote %d while e was down", n.proc.name, i))
		}
	}
	put(b, "w/e/0", "b overwrote e's key")
	put(d, "w/e/1", "d overwrote e's key")
	put(a, "shared/config", "from a, while e was down")
	del(c, "w/e/2")
	del(d, "w/e/3")
	del(a, "w/b/0")
	del(b, "w/a/5")
	put(c, "w/d/after-0", "c overwrote d's key")
	del(d, "w/d/after-1")
	put(a, "w/deleted-then-written", "first")
	testutil.Eventually(t, 20*time.Second, "b reads a's new key", func() bool {
		rec, err := b.client.Get(ctx, "w/deleted-then-written")
		return err == nil && string(rec.Value) == "first"
	})
	del(b, "w/deleted-then-written")
	put(c, "w/deleted-then-written", "written again")
	kvWaitConverged(t, 60*time.Second, "a, b, c and d converge while e is down", live, want)

	// e restarts from its data directory alone: it holds what it held when
	// killed, its own node info aside (republished with its new address).
	// Its member snapshot would let it rejoin the others by itself: remove
	// it so that e starts alone and shows only what its store kept.
	ownInfo := agent.NodesPrefix + e.proc.state.ID
	if err := os.Remove(filepath.Join(e.proc.dataDir, p2p.MembersFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	alone := newKVNode(t, startAgentProc(t, "e-alone", e.proc.dataDir, env, "--name", "e"))
	if alone.proc.state.ID != e.proc.state.ID {
		t.Fatalf("restarted e has ID %s, want %s (its key is in its data directory)", alone.proc.state.ID, e.proc.state.ID)
	}
	afterRestart, err := kvSnapshotOf(alone)
	if err != nil {
		t.Fatal(err)
	}
	if got := userValues(afterRestart.records); !maps.Equal(got, wantBeforeKill) {
		t.Fatalf("e restarted from its data directory holds %v, want what it held when killed: %v", got, wantBeforeKill)
	}
	if got, want := withoutKey(afterRestart.records, ownInfo), withoutKey(beforeKill.records, ownInfo); !reflect.DeepEqual(got, want) {
		t.Fatalf("e's records after the restart:\n%+v\nwant those before the kill:\n%+v", got, want)
	}
	if err := alone.proc.signal(t, syscall.SIGTERM); err != nil {
		t.Fatalf("e (alone) exited with %v on SIGTERM", err)
	}

	// e restarts again, joining: anti-entropy brings the five together.
	rejoined := newKVNode(t, startAgentProc(t, "e-rejoined", e.proc.dataDir, env, "--name", "e",
		"--join", a.proc.state.Addr, "--join", c.proc.state.Addr))
	all := []*kvNode{a, b, c, d, rejoined}
	kvWaitConverged(t, 60*time.Second, "the five stores converge after e's restart", all, want)
	final, err := kvSnapshotOf(rejoined)
	if err != nil {
		t.Fatal(err)
	}
	if final.info.Store.Tombstones < 5 {
		t.Errorf("e holds %d tombstones, want at least the 5 deletes made while it was down", final.info.Store.Tombstones)
	}
	for _, r := range final.records {
		if r.Key == "w/e/0" && (string(r.Value) != "b overwrote e's key" || r.Writer != b.proc.state.ID) {
			t.Errorf("e's record of w/e/0 = %+v, want b's overwrite", r)
		}
	}
	if final.info.Store.AntiEntropyRounds == 0 {
		t.Errorf("e converged with no anti-entropy round: %+v", final.info.Store)
	}
}
