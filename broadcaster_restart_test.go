package p2p_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/p2p-go/p2p"
	"github.com/p2p-go/p2p/internal/testutil"
)

// TestRestartedBootstrapNodesRejoinThroughKnownMembers restarts every
// bootstrap node of a network (new instances on the same data directories
// and addresses): each finds the members it knew through the member list it
// kept in its data directory, so membership is whole again at once, although
// no bootstrap address led to the members that stayed up.
func TestRestartedBootstrapNodesRejoinThroughKnownMembers(t *testing.T) {
	secret, _ := p2p.ParseSecret(p2p.GenerateSecret())
	const bootstraps, others = 2, 4
	type slot struct {
		dir, addr string
		node      *p2p.Broadcaster
	}
	var slots []*slot
	start := func(s *slot, bootstrap []string) {
		t.Helper()
		listen := s.addr
		if listen == "" {
			listen = "127.0.0.1:0"
		}
		b, err := p2p.NewBroadcaster(p2p.Config{
			Bootstrap: bootstrap, ListenAddr: listen, DataDir: s.dir, Secret: secret, Logger: testLogger(t),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		if err := b.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		s.node, s.addr = b, b.Addr()
	}
	for range bootstraps + others {
		slots = append(slots, &slot{dir: t.TempDir()})
	}
	start(slots[0], nil)
	start(slots[1], []string{slots[0].addr})
	bootstrap := []string{slots[0].addr, slots[1].addr}
	for _, s := range slots[bootstraps:] {
		start(s, bootstrap)
	}
	whole := func() bool {
		for _, s := range slots {
			members, err := s.node.Members(context.Background())
			if err != nil || len(members) != len(slots) {
				return false
			}
		}
		return true
	}
	testutil.Eventually(t, 30*time.Second, "the first membership to be whole", whole)
	// Let every node write its member list (once a second while it changes).
	testutil.Eventually(t, 10*time.Second, "the member lists to be kept", func() bool {
		for _, s := range slots {
			kept, err := p2p.ReadMembersFileForTest(s.dir)
			if err != nil || len(kept) != len(slots)-1 {
				return false
			}
		}
		return true
	})
	if fi, err := os.Stat(filepath.Join(slots[0].dir, p2p.MembersFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("members file: %v, mode %v, want 0600", err, fi.Mode().Perm())
	}
	for _, s := range slots[:bootstraps] {
		if err := s.node.Close(); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 30*time.Second, "the others to see the bootstrap nodes leave", func() bool {
		members, err := slots[bootstraps].node.Members(context.Background())
		return err == nil && len(members) == others
	})
	for _, s := range slots[:bootstraps] {
		start(s, bootstrap)
	}
	lastStart := time.Now()
	testutil.Eventually(t, 30*time.Second, "membership to be whole after the restart", whole)
	t.Logf("membership whole on every node %v after the last of %d bootstrap nodes restarted", time.Since(lastStart).Round(time.Millisecond), bootstraps)
}
