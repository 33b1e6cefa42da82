package tcp

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/p2p-go/p2p/internal/testutil"
	"github.com/p2p-go/p2p/transport"
)

func TestKeyringOperations(t *testing.T) {
	k, err := NewKeyring(secret(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Use(secret(2)); !errors.Is(err, ErrKeyNotInstalled) {
		t.Fatalf("Use of a key not installed = %v, want ErrKeyNotInstalled", err)
	}
	for range 2 { // installing twice changes nothing
		if err := k.Install(secret(2)); err != nil {
			t.Fatal(err)
		}
	}
	if keys := k.Keys(); len(keys) != 2 || !bytes.Equal(keys[0], secret(1)) || !bytes.Equal(keys[1], secret(2)) {
		t.Fatalf("Keys = %x, want [1, 2]", keys)
	}
	if err := k.Remove(secret(1)); !errors.Is(err, ErrRemovePrimary) {
		t.Fatalf("Remove of the primary = %v, want ErrRemovePrimary", err)
	}
	if err := k.Use(secret(2)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k.Primary(), secret(2)) {
		t.Fatalf("Primary = %x after Use(2)", k.Primary())
	}
	if err := k.Remove(secret(1)); err != nil {
		t.Fatal(err)
	}
	if err := k.Remove(secret(1)); err != nil {
		t.Fatalf("Remove of a key no longer installed = %v, want nil", err)
	}
	if keys := k.Keys(); len(keys) != 1 || !bytes.Equal(keys[0], secret(2)) {
		t.Fatalf("Keys = %x, want [2]", keys)
	}
	// Keys are copies.
	k.Keys()[0][0] ^= 0xff
	k.Primary()[0] ^= 0xff
	if !bytes.Equal(k.Primary(), secret(2)) {
		t.Fatal("a caller changed the keyring through a returned slice")
	}
	if err := k.Install([]byte("short")); err == nil {
		t.Fatal("Install of a 5-byte key succeeded")
	}
	for i := range MaxKeys - 1 {
		if err := k.Install(secret(byte(10 + i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := k.Install(secret(99)); !errors.Is(err, ErrKeyringFull) {
		t.Fatalf("Install beyond MaxKeys = %v, want ErrKeyringFull", err)
	}
	open, err := NewKeyring(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := open.Install(secret(1)); !errors.Is(err, ErrOpenNetwork) {
		t.Fatalf("Install on an open network = %v, want ErrOpenNetwork", err)
	}
	if _, err := NewKeyring(nil, secret(1)); err == nil {
		t.Fatal("NewKeyring without a primary but with other keys succeeded")
	}
}

func TestKeyringAndSecretAreExclusive(t *testing.T) {
	k, _ := NewKeyring(secret(1))
	if _, err := Listen(Config{ListenAddr: "127.0.0.1:0", Key: newKey(t), Secret: secret(1), Keyring: k}); err == nil {
		t.Fatal("Listen with both Secret and Keyring succeeded")
	}
}

// TestKeyringRotationWithoutDowntime follows a rolling rotation from old
// to new between a server and two dialers that each know one key: while
// both keys are installed the server accepts both; the dialers' primary
// decides what they send; once the old key is removed its holder is refused
// and counted as bad_secret.
func TestKeyringRotationWithoutDowntime(t *testing.T) {
	old, next := secret(1), secret(2)
	ring, err := NewKeyring(old)
	if err != nil {
		t.Fatal(err)
	}
	server := newTransport(t, func(cfg *Config) { cfg.Keyring = ring })
	oldOnly := newTransport(t, func(cfg *Config) { cfg.Secret = old })
	newOnly := newTransport(t, func(cfg *Config) { cfg.Secret = next })

	// Before: the old key only.
	connect(t, oldOnly, server)
	if _, err := newOnly.Dial(testContext(t), server.ListenAddr().String()); !errors.Is(err, transport.ErrRefused) {
		t.Fatalf("new-key dialer before install: %v, want ErrRefused", err)
	}
	testutil.Eventually(t, 10*time.Second, "refusal counted", func() bool { return server.Stats().RefusedBadSecret == 1 })

	// Installed: both accepted, the server still dials with the old key.
	if err := server.Keyring().Install(next); err != nil {
		t.Fatal(err)
	}
	connect(t, oldOnly, server)
	connect(t, newOnly, server)
	connect(t, server, oldOnly)
	if _, err := server.Dial(testContext(t), newOnly.ListenAddr().String()); !errors.Is(err, transport.ErrRefused) {
		t.Fatalf("server dialing with the old primary to a new-key node: %v, want ErrRefused", err)
	}

	// Used: the server dials with the new key.
	if err := server.Keyring().Use(next); err != nil {
		t.Fatal(err)
	}
	connect(t, server, newOnly)
	connect(t, oldOnly, server)

	// Removed: the old key's holder is refused and counted.
	if err := server.Keyring().Remove(old); err != nil {
		t.Fatal(err)
	}
	before := server.Stats().RefusedBadSecret
	if _, err := oldOnly.Dial(testContext(t), server.ListenAddr().String()); !errors.Is(err, transport.ErrRefused) {
		t.Fatalf("old-key dialer after removal: %v, want ErrRefused", err)
	}
	testutil.Eventually(t, 10*time.Second, "bad_secret counted", func() bool { return server.Stats().RefusedBadSecret == before+1 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if conn, err := server.Accept(ctx); err == nil {
		t.Fatalf("the old key's holder was accepted after removal: %v", conn.Remote())
	}
	connect(t, newOnly, server)
}
