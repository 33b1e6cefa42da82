package agent

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2p-go/p2p/internal/testutil"
)

// A new node's kv handlers fire for changes made while it runs, not for the
// records it pulls in when it joins (those go to sync handlers), not for
// deletes of keys it never held, and never for the agent's internal keys.
func TestJoiningNodeGivesLearntRecordsToSyncHandlersOnly(t *testing.T) {
	a := startAgent(t, testConfig(t, "a"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store := a.Node().Store()
	for _, step := range []func() error{
		func() error { _, err := store.Put(ctx, "config/old", []byte("1")); return err },
		func() error { _, err := store.Put(ctx, "config/gone", []byte("2")); return err },
		func() error { return store.Delete(ctx, "config/gone") },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}

	dir := t.TempDir()
	kvLog, syncLog := filepath.Join(dir, "kv.log"), filepath.Join(dir, "sync.log")
	cfgB := testConfig(t, "b")
	cfgB.Join = []string{a.Node().Addr()}
	cfgB.HandlerConcurrency = 1 // one worker: jobs run in the order they were queued
	cfgB.Handlers = []string{
		`kv=echo "$P2P_EVENT $P2P_KEY" >> ` + kvLog,
		`sync=echo "$P2P_EVENT $P2P_KEY" >> ` + syncLog,
	}
	b := startAgent(t, cfgB)
	lines := func(path string) []string {
		out := strings.Fields(strings.ReplaceAll(readFileOr(path, ""), " ", "|"))
		slices.Sort(out)
		return out
	}
	testutil.Eventually(t, 20*time.Second, "b's sync handler to see a's history", func() bool {
		return slices.Equal(lines(syncLog), []string{"sync-delete|config/gone", "sync-put|config/old"})
	})
	// A write made now is a change: b's kv handler runs for it, after
	// everything queued before it (one worker).
	if _, err := store.Put(ctx, "config/new", []byte("3")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, "b's kv handler to see the new write", func() bool {
		return slices.Contains(lines(kvLog), "kv-put|config/new")
	})
	if got := lines(kvLog); !slices.Equal(got, []string{"kv-put|config/new"}) {
		t.Fatalf("b's kv handler ran for %q, want only the write made after it joined", got)
	}
	if got := lines(syncLog); slices.ContainsFunc(got, func(l string) bool { return strings.Contains(l, InternalPrefix) }) {
		t.Fatalf("sync handler ran for internal keys: %q", got)
	}
	_ = b
}

func TestInternalKeysHiddenFromListingUnlessAsked(t *testing.T) {
	a := startAgent(t, testConfig(t, "a"))
	c := client(t, a, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Put(ctx, "app/x", []byte("1")); err != nil {
		t.Fatal(err)
	}
	keys := func(recs []Record, err error) []string {
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range recs {
			out = append(out, r.Key)
		}
		return out
	}
	if got := keys(c.List(ctx, "")); !slices.Equal(got, []string{"app/x"}) {
		t.Fatalf("List(\"\") = %q, want only app/x", got)
	}
	self := NodesPrefix + a.Node().ID().String()
	if got := keys(c.ListAll(ctx, "")); !slices.Equal(got, []string{self, "app/x"}) && !slices.Equal(got, []string{"app/x", self}) {
		t.Fatalf("ListAll(\"\") = %q, want app/x and %s", got, self)
	}
	if got := keys(c.List(ctx, InternalPrefix)); !slices.Equal(got, []string{self}) {
		t.Fatalf("List(%q) = %q: asking for the prefix shows the internal keys", InternalPrefix, got)
	}
}

// A node that started a network alone says so, rather than only
// "joined": false.
func TestInfoStatusOfLoneNodeAndPair(t *testing.T) {
	lone := startAgent(t, testConfig(t, "lone"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := lone.Info(ctx)
	if err != nil || info.Status != StatusAlone {
		t.Fatalf("lone node: status %q, %v; want %q", info.Status, err, StatusAlone)
	}
	a, b := joinedPair(t, testConfig(t, "a"), testConfig(t, "b"))
	for _, n := range []*Agent{a, b} {
		testutil.Eventually(t, 10*time.Second, n.cfg.Name+" linked", func() bool {
			info, err := n.Info(ctx)
			return err == nil && info.Status == StatusLinked
		})
	}
}
