package p2p_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/p2p-go/p2p"
	"github.com/p2p-go/p2p/internal/testutil"
	"github.com/p2p-go/p2p/kademlia"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport"
	"github.com/p2p-go/p2p/transport/tcp"
)

// keyedNode is a Broadcaster on its own TCP transport, whose counters the
// test reads.
type keyedNode struct {
	b       *p2p.Broadcaster
	tr      *tcp.Transport
	dataDir string
}

func startKeyedNode(t *testing.T, dataDir string, secret []byte, bootstrap ...string) *keyedNode {
	t.Helper()
	key, err := peer.LoadOrCreateKey(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := p2p.OpenKeyring(dataDir, secret, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := tcp.Listen(tcp.Config{ListenAddr: "127.0.0.1:0", Key: key, Keyring: ring, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := p2p.NewBroadcaster(p2p.Config{Bootstrap: bootstrap, DataDir: dataDir, Key: key, Transport: tr, Logger: testLogger(t)})
	if err != nil {
		tr.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &keyedNode{b: b, tr: tr, dataDir: dataDir}
}

func keysOf(t *testing.T, r p2p.KeyringResponse, key []byte) (holders, primaries int) {
	t.Helper()
	return r.Keys[p2p.FormatSecret(key)], r.Primary[p2p.FormatSecret(key)]
}

// TestKeyringRotationAcrossTheCluster rotates the cluster secret of three
// nodes over TCP with the cluster-wide operations: each step is applied and
// answered by every member; removing the primary is refused everywhere; the
// keyring is kept in each data directory (0600) and wins over the old
// secret at restart; a node holding only the old secret is refused with a
// bad secret.
func TestKeyringRotationAcrossTheCluster(t *testing.T) {
	ctx := context.Background()
	oldKey, _ := p2p.ParseSecret(p2p.GenerateSecret())
	newKey, _ := p2p.ParseSecret(p2p.GenerateSecret())
	dir := t.TempDir()
	a := startKeyedNode(t, filepath.Join(dir, "a"), oldKey)
	b := startKeyedNode(t, filepath.Join(dir, "b"), oldKey, a.b.Addr())
	c := startKeyedNode(t, filepath.Join(dir, "c"), oldKey, a.b.Addr())
	nodes := []*keyedNode{a, b, c}
	for _, n := range nodes {
		testutil.Eventually(t, 20*time.Second, "every node lists 3 members", func() bool {
			m, err := n.b.Members(ctx)
			return err == nil && len(m) == 3
		})
	}

	list, err := b.b.ListKeys(ctx)
	if err != nil || !list.Complete() || list.Members != 3 {
		t.Fatalf("ListKeys = %+v, %v", list, err)
	}
	if h, p := keysOf(t, list, oldKey); h != 3 || p != 3 {
		t.Fatalf("old key held by %d, primary on %d; want 3, 3", h, p)
	}

	step := func(name string, op func(context.Context, []byte) (p2p.KeyringResponse, error), key []byte) p2p.KeyringResponse {
		t.Helper()
		r, err := op(ctx, key)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !r.Complete() || len(r.Applied) != 3 {
			t.Fatalf("%s: %+v, want applied on 3 members", name, r)
		}
		return r
	}
	r := step("install", a.b.InstallKey, newKey)
	if h, p := keysOf(t, r, newKey); h != 3 || p != 0 {
		t.Fatalf("after install, new key held by %d, primary on %d; want 3, 0", h, p)
	}
	r = step("use", b.b.UseKey, newKey)
	if _, p := keysOf(t, r, newKey); p != 3 {
		t.Fatalf("after use, new key primary on %d, want 3", p)
	}
	// The primary cannot be removed: every member says so.
	r, err = c.b.RemoveKey(ctx, newKey)
	if err != nil || len(r.Failed) != 3 || len(r.Applied) != 0 {
		t.Fatalf("removing the primary = %+v, %v; want refused by 3", r, err)
	}
	r = step("remove", c.b.RemoveKey, oldKey)
	if h, _ := keysOf(t, r, oldKey); h != 0 {
		t.Fatalf("after remove, old key held by %d", h)
	}

	// Messages still flow, over links opened before and after.
	in := newInbox()
	c.b.React(in.react)
	if err := a.b.Send(ctx, map[string]int{"after": 1}); err != nil {
		t.Fatal(err)
	}
	in.waitFor(t, "a message after the rotation", hasField("after", 1))

	// Each data directory keeps the new keyring, readable by its owner
	// alone; it wins over the old secret at restart.
	for _, n := range nodes {
		info, err := os.Stat(filepath.Join(n.dataDir, p2p.KeyringFile))
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("keyring file of %s: %v, %v", n.dataDir, info, err)
		}
		ring, err := p2p.OpenKeyring(n.dataDir, oldKey, nil)
		if err != nil || len(ring.Keys()) != 1 || !bytes.Equal(ring.Primary(), newKey) {
			t.Fatalf("reopened keyring of %s = %x, %v; want the new key alone", n.dataDir, ring.Keys(), err)
		}
	}

	// A node holding only the old secret is refused, as a bad secret.
	outsider, err := tcp.Listen(tcp.Config{ListenAddr: "127.0.0.1:0", Key: mustKey(t), Secret: oldKey})
	if err != nil {
		t.Fatal(err)
	}
	defer outsider.Close()
	before := a.tr.Stats().RefusedBadSecret
	if conn, err := outsider.Dial(ctx, a.b.Addr()); !errors.Is(err, transport.ErrRefused) {
		if conn != nil {
			conn.Close()
		}
		t.Fatalf("dial with the old secret = %v, want ErrRefused", err)
	}
	testutil.Eventually(t, 10*time.Second, "bad_secret counted", func() bool { return a.tr.Stats().RefusedBadSecret == before+1 })
	// A node with the new secret joins.
	d := startKeyedNode(t, filepath.Join(dir, "d"), newKey, b.b.Addr())
	waitJoined(t, d.b)
}

func TestKeyringOperationsNeedAKeyring(t *testing.T) {
	ctx := context.Background()
	open := startKeyedNode(t, t.TempDir(), nil)
	if _, err := open.b.ListKeys(ctx); err != nil {
		t.Fatalf("ListKeys on an open network: %v", err)
	}
	key, _ := p2p.ParseSecret(p2p.GenerateSecret())
	r, err := open.b.InstallKey(ctx, key)
	if err != nil || len(r.Failed) != 1 || r.Complete() {
		t.Fatalf("InstallKey on an open network = %+v, %v; want refused by the node", r, err)
	}
	if _, err := open.b.InstallKey(ctx, []byte("short")); err == nil {
		t.Fatal("InstallKey of a 5-byte key succeeded")
	}
}

func mustKey(t *testing.T) *peer.Key {
	t.Helper()
	k, err := peer.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestDHTKeyringRotation rotates the secret of four DHT nodes over TCP with
// the DHT's keyring operations, whose requests travel by the DHT's broadcast;
// reactors never see them, and a newcomer with the old secret cannot join.
func TestDHTKeyringRotation(t *testing.T) {
	oldKey, _ := p2p.ParseSecret(p2p.GenerateSecret())
	newKey, _ := p2p.ParseSecret(p2p.GenerateSecret())
	const n = 4
	c := startDHTCluster(t, n, func(int, *peer.Key) p2p.DHTConfig {
		return p2p.DHTConfig{ListenAddr: "127.0.0.1:0", Secret: oldKey}
	})
	ctx := context.Background()
	for _, d := range c.nodes {
		testutil.Eventually(t, 20*time.Second, "every DHT node knows the others", func() bool {
			m, err := d.Members(ctx)
			return err == nil && len(m) == n
		})
	}
	for _, step := range []struct {
		name string
		op   func(context.Context, []byte) (p2p.KeyringResponse, error)
		key  []byte
	}{
		{"install", c.nodes[1].InstallKey, newKey},
		{"use", c.nodes[2].UseKey, newKey},
		{"remove", c.nodes[3].RemoveKey, oldKey},
	} {
		r, err := step.op(ctx, step.key)
		if err != nil || !r.Complete() || len(r.Applied) != n {
			t.Fatalf("%s: %+v, %v", step.name, r, err)
		}
	}
	r, err := c.nodes[0].ListKeys(ctx)
	if err != nil || r.Keys[p2p.FormatSecret(newKey)] != n || r.Primary[p2p.FormatSecret(newKey)] != n || len(r.Keys) != 1 {
		t.Fatalf("ListKeys after the rotation = %+v, %v", r, err)
	}
	for i, in := range c.inboxes {
		if got := in.count(func(*p2p.Message) bool { return true }); got != 0 {
			t.Fatalf("node %d's reactor saw %d messages: keyring messages leaked to reactors", i, got)
		}
	}
	if err := c.nodes[0].Send(ctx, map[string]string{"after": "rotation"}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < n; i++ {
		c.inboxes[i].waitFor(t, "the broadcast after the rotation", hasField("after", "rotation"))
	}
	outsider, err := p2p.NewDHT(p2p.DHTConfig{
		ListenAddr: "127.0.0.1:0", Secret: oldKey, Key: dhtKey(t, 100), DataDir: t.TempDir(),
		Bootstrap: []string{c.nodes[0].Addr()}, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer outsider.Close()
	joinCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := outsider.Bootstrap(joinCtx, []string{c.nodes[0].Addr()}); !errors.Is(err, kademlia.ErrNoContacts) {
		t.Fatalf("Bootstrap with the removed secret: %v, want ErrNoContacts", err)
	}
}
