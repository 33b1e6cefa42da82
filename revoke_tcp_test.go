package p2p_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/p2p-go/p2p"
	"github.com/p2p-go/p2p/internal/testutil"
	"github.com/p2p-go/p2p/kv"
	"github.com/p2p-go/p2p/peer"
)

// startKeyedTCPNode starts a node over TCP with a key the test knows.
func startKeyedTCPNode(t *testing.T, secret []byte, key *peer.Key, configure func(*p2p.Config), bootstrap ...string) *p2p.Broadcaster {
	t.Helper()
	cfg := p2p.Config{
		Bootstrap:  bootstrap,
		ListenAddr: "127.0.0.1:0",
		DataDir:    t.TempDir(),
		Secret:     secret,
		Logger:     testLogger(t),
		Key:        key,
	}
	if configure != nil {
		configure(&cfg)
	}
	b, err := p2p.NewBroadcaster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return b
}

func newKey(t *testing.T) *peer.Key {
	t.Helper()
	key, err := peer.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// valueOf returns the value of key on b, "" when b does not hold it.
func valueOf(b *p2p.Broadcaster, key string) string {
	rec, err := b.Store().Get(context.Background(), key)
	if err != nil {
		return ""
	}
	return string(rec.Value)
}

// Issue 10, row 4 (store): an insider, a node built from the project's
// packages that holds the cluster secret, relays through the broadcast tree
// records that claim another member as their writer. No node applies them,
// every node counts them, and a genuine record the insider sends the same
// way afterwards reaches everybody (the path works).
func TestInsiderCannotForgeStoreWritersOverTCP(t *testing.T) {
	ctx := context.Background()
	secret, _ := p2p.ParseSecret(p2p.GenerateSecret())
	a := startKeyedTCPNode(t, secret, newKey(t), nil)
	b := startKeyedTCPNode(t, secret, newKey(t), nil, a.Addr())
	c := startKeyedTCPNode(t, secret, newKey(t), nil, a.Addr())
	insiderKey := newKey(t)
	insider := startKeyedTCPNode(t, secret, insiderKey, nil, b.Addr())
	for _, n := range []*p2p.Broadcaster{b, c, insider} {
		waitJoined(t, n)
	}
	honest := []*p2p.Broadcaster{a, b, c}
	genuine, err := a.Store().Put(ctx, "config/db", []byte("postgres://db1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range append(honest, insider) {
		testutil.Eventually(t, 20*time.Second, "config/db everywhere", func() bool { return valueOf(n, "config/db") == "postgres://db1" })
	}

	claim := kv.Record{Key: "config/db", Value: []byte("postgres://evil"), Version: kv.Version{Time: kv.HLC{Wall: time.Now().UnixNano()}, Writer: a.ID()}}
	ownKey := claim.Sign(insiderKey) // the insider's key, a's ID
	victimKey := ownKey
	victimKey.PublicKey = genuine.PublicKey // a's key, the insider's signature
	replayed := claim
	replayed.PublicKey, replayed.Signature = genuine.PublicKey, genuine.Signature // a's signature of another record
	if err := p2p.SendStoreRecordsForTest(ctx, insider, []kv.Record{ownKey, victimKey, replayed}); err != nil {
		t.Fatal(err)
	}
	control := kv.Record{Key: "config/insider", Value: []byte("ok"), Version: kv.Version{Time: kv.HLC{Wall: time.Now().UnixNano()}, Writer: insider.ID()}}.Sign(insiderKey)
	if err := p2p.SendStoreRecordsForTest(ctx, insider, []kv.Record{control}); err != nil {
		t.Fatal(err)
	}
	for i, n := range honest {
		testutil.Eventually(t, 20*time.Second, "the genuine record of the insider", func() bool { return valueOf(n, "config/insider") == "ok" })
		testutil.Eventually(t, 20*time.Second, "the forgeries to be counted", func() bool { return n.Stats().Store.RecordsForged >= 3 })
		if got := valueOf(n, "config/db"); got != "postgres://db1" {
			t.Fatalf("node %d holds config/db = %q after the forgery", i, got)
		}
	}
}

// Issue 11: a revoked node loses its links everywhere at once, its writes
// reach nobody, and the deny list is the same on every member.
func TestRevokedNodeIsCutOffOverTCP(t *testing.T) {
	ctx := context.Background()
	secret, _ := p2p.ParseSecret(p2p.GenerateSecret())
	a := startKeyedTCPNode(t, secret, newKey(t), nil)
	b := startKeyedTCPNode(t, secret, newKey(t), nil, a.Addr())
	c := startKeyedTCPNode(t, secret, newKey(t), nil, b.Addr())
	keyD := newKey(t)
	d := startKeyedTCPNode(t, secret, keyD, nil, a.Addr())
	all := []*p2p.Broadcaster{a, b, c, d}
	for _, n := range all[1:] {
		waitJoined(t, n)
	}
	for _, n := range all {
		testutil.Eventually(t, 20*time.Second, "four members", func() bool { m, _ := n.Members(ctx); return len(m) == 4 })
	}
	if err := c.Revoke(ctx, c.ID()); !errors.Is(err, p2p.ErrBadRevocation) {
		t.Fatalf("self-revocation = %v", err)
	}
	start := time.Now()
	if err := c.Revoke(ctx, d.ID()); err != nil {
		t.Fatal(err)
	}
	honest := []*p2p.Broadcaster{a, b, c}
	for _, n := range honest {
		testutil.Eventually(t, 10*time.Second, "d out of every member's links and list", func() bool {
			neighbors, _ := n.Neighbors(ctx)
			members, _ := n.Members(ctx)
			isD := func(m p2p.Member) bool { return m.ID == d.ID() }
			return !slices.ContainsFunc(neighbors, isD) && !slices.ContainsFunc(members, isD)
		})
		revoked, err := n.Revoked(ctx)
		if err != nil || len(revoked) != 1 || revoked[0].ID != d.ID() || revoked[0].By != c.ID() {
			t.Fatalf("deny list %+v, %v", revoked, err)
		}
	}
	testutil.Eventually(t, 10*time.Second, "d without links", func() bool { neighbors, _ := d.Neighbors(ctx); return len(neighbors) == 0 })
	t.Logf("d cut off after %v", time.Since(start))

	// d writes; c writes after it. c's write reaches a and b, d's nobody.
	if _, err := d.Store().Put(ctx, "config/from-d", []byte("evil")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Store().Put(ctx, "config/after", []byte("ok")); err != nil {
		t.Fatal(err)
	}
	for _, n := range honest {
		testutil.Eventually(t, 20*time.Second, "c's later write", func() bool { return valueOf(n, "config/after") == "ok" })
		if got := valueOf(n, "config/from-d"); got != "" {
			t.Fatalf("d's write after its revocation reached a member: %q", got)
		}
	}
	// A member colludes: b relays a record d signed after its revocation.
	// a and c refuse it and count it; a record b relays next is applied.
	late := kv.Record{Key: "config/relayed", Value: []byte("evil"), Version: kv.Version{Time: kv.HLC{Wall: time.Now().UnixNano()}, Writer: d.ID()}}.Sign(keyD)
	if err := p2p.SendStoreRecordsForTest(ctx, b, []kv.Record{late}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Store().Put(ctx, "config/relayed-after", []byte("ok")); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*p2p.Broadcaster{a, c} {
		testutil.Eventually(t, 20*time.Second, "b's later write", func() bool { return valueOf(n, "config/relayed-after") == "ok" })
		testutil.Eventually(t, 20*time.Second, "the relayed record to be refused", func() bool { return n.Stats().Store.RecordsRevoked >= 1 })
		if got := valueOf(n, "config/relayed"); got != "" {
			t.Fatalf("a record d wrote after its revocation was applied: %q", got)
		}
	}
	refused := uint64(0)
	for _, n := range honest {
		refused += n.Stats().Runtime.DeniedConns + n.Stats().Runtime.DeniedSends
	}
	if refused == 0 {
		t.Fatal("no refusal of d counted")
	}
}

// With Config.Admins set, a member that is not an admin cannot revoke.
func TestOnlyAdminsRevokeWhenConfigured(t *testing.T) {
	ctx := context.Background()
	adminKey := newKey(t)
	admins := func(c *p2p.Config) { c.Admins = []peer.ID{adminKey.ID()} }
	admin := startKeyedTCPNode(t, nil, adminKey, admins)
	member := startKeyedTCPNode(t, nil, newKey(t), admins, admin.Addr())
	waitJoined(t, member)
	if err := member.Revoke(ctx, admin.ID()); !errors.Is(err, p2p.ErrNotAdmin) {
		t.Fatalf("member's Revoke = %v, want ErrNotAdmin", err)
	}
	if err := admin.Revoke(ctx, member.ID()); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the member to learn of its revocation or lose its links", func() bool {
		neighbors, _ := admin.Neighbors(ctx)
		return len(neighbors) == 0
	})
}
