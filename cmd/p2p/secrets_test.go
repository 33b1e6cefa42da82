package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2p-go/p2p"
	"github.com/p2p-go/p2p/agent"
)

// runRoot runs the p2p command in this process and returns its output.
func runRoot(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRootCommand()
	var stdout, stderr bytes.Buffer
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return stdout.String(), stderr.String(), err
}

// TestKeygenOutputIsPrivateAndNeverOverwrites: `p2p keygen -o FILE` writes a
// parseable secret readable by its owner alone, and refuses to replace a
// file, which may hold the secret a cluster runs on.
func TestKeygenOutputIsPrivateAndNeverOverwrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	stdout, _, err := runRoot(t, "keygen", "-o", path)
	if err != nil || stdout != "" {
		t.Fatalf("keygen -o = %q, %v; want no output and no error", stdout, err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Fatalf("secret file mode = %#o, want 0600", mode)
	}
	first, _ := os.ReadFile(path)
	if secret, err := p2p.ParseSecret(string(first)); err != nil || len(secret) != p2p.SecretLen {
		t.Fatalf("secret file %q does not parse: %v", first, err)
	}
	if _, _, err := runRoot(t, "keygen", "--output", path); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("keygen over an existing file = %v, want a refusal", err)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, first) {
		t.Fatal("keygen changed an existing secret file")
	}
}

// TestKeygenToLooseFileWarns: `p2p keygen > secret`, where the shell makes
// the file 0644, still writes the secret, and says on stderr how to keep it
// private; a private file or a pipe gets no warning.
func TestKeygenToLooseFileWarns(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		mode os.FileMode
		warn bool
	}{{0o644, true}, {0o640, true}, {0o600, false}} {
		path := filepath.Join(dir, fmt.Sprintf("secret-%o", tc.mode))
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, tc.mode)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Chmod(tc.mode); err != nil { // whatever the umask
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd := exec.Command(binary, "keygen")
		cmd.Stdout, cmd.Stderr = f, &stderr
		err = cmd.Run()
		f.Close()
		if err != nil {
			t.Fatalf("keygen > file (mode %#o): %v %s", tc.mode, err, stderr.String())
		}
		if data, _ := os.ReadFile(path); !strings.Contains(string(data), "=") {
			t.Fatalf("keygen > file (mode %#o) wrote %q", tc.mode, data)
		}
		if got := strings.Contains(stderr.String(), "readable by other users") && strings.Contains(stderr.String(), "keygen -o"); got != tc.warn {
			t.Errorf("keygen > file (mode %#o): warned %v, want %v; stderr %q", tc.mode, got, tc.warn, stderr.String())
		}
	}
	out, err := exec.Command(binary, "keygen").CombinedOutput()
	if err != nil || strings.Contains(string(out), "readable") {
		t.Fatalf("keygen to a pipe: %q, %v", out, err)
	}
}

// TestRunSecretFile: `p2p run` and `p2p dht` read the secret from
// --secret-file, and warn when it or the node key is readable by others.
func TestRunSecretFile(t *testing.T) {
	dir := t.TempDir()
	secret := p2p.GenerateSecret()
	path := filepath.Join(dir, "secret")
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "node.key"), bytes.Repeat([]byte{1}, 32), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	o := runOptions{secretFile: path, dataDir: dataDir, logLevel: "info"}
	got, _, err := o.secretAndLogger(&stderr)
	want, _ := p2p.ParseSecret(secret)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("secret from --secret-file = %x, %v; want %x", got, err, want)
	}
	for _, what := range []string{"cluster secret file", "node key file"} {
		if !strings.Contains(stderr.String(), what+" is readable by other users") {
			t.Errorf("no warning about the %s; stderr:\n%s", what, stderr.String())
		}
	}
	// --secret wins over --secret-file, and a missing file is an error.
	o = runOptions{secret: secret, secretFile: filepath.Join(dir, "missing"), dataDir: dataDir, logLevel: "info"}
	if _, _, err := o.secretAndLogger(&stderr); err != nil {
		t.Fatalf("--secret with a missing --secret-file: %v", err)
	}
	o = runOptions{secretFile: filepath.Join(dir, "missing"), dataDir: dataDir, logLevel: "info"}
	if _, _, err := o.secretAndLogger(&stderr); err == nil || !strings.Contains(err.Error(), "--secret-file") {
		t.Fatalf("a missing --secret-file = %v, want an error naming the flag", err)
	}
}

// TestClientTokenFile: the client commands read the API token from
// --api-token-file.
func TestClientTokenFile(t *testing.T) {
	dir := t.TempDir()
	a, err := agent.New(agent.Config{
		DataDir: filepath.Join(dir, "a"), Listen: "127.0.0.1:0", API: "127.0.0.1:0", Name: "a",
		APIToken: "tok3n", Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("tok3n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("P2P_API_TOKEN", "")
	t.Setenv("P2P_API_TOKEN_FILE", "")
	if out, errOut, err := runRoot(t, "info", "--api", a.APIAddr()); err == nil {
		t.Fatalf("info without the token succeeded: %q %q", out, errOut)
	}
	stdout, _, err := runRoot(t, "info", "--api", a.APIAddr(), "--api-token-file", token, "--json")
	if err != nil || !strings.Contains(stdout, a.Node().ID().String()) {
		t.Fatalf("info with --api-token-file = %q, %v", stdout, err)
	}
	t.Setenv("P2P_API_TOKEN_FILE", token)
	if _, _, err := runRoot(t, "members", "--api", a.APIAddr()); err != nil {
		t.Fatalf("members with $P2P_API_TOKEN_FILE: %v", err)
	}
}

// TestDHTKeysCommand: the `keys` command of `p2p dht` lists and changes the
// keyring.
func TestDHTKeysCommand(t *testing.T) {
	secret, _ := p2p.ParseSecret(p2p.GenerateSecret())
	d, err := p2p.NewDHT(p2p.DHTConfig{ListenAddr: "127.0.0.1:0", DataDir: t.TempDir(), Secret: secret, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	next := p2p.GenerateSecret()
	for _, line := range []string{"install " + next, "use " + next, "remove " + p2p.FormatSecret(secret), "list"} {
		result, err := dhtCommand(ctx, d, "keys", line)
		if err != nil || result["complete"] != true {
			t.Fatalf("keys %s = %v, %v", line, result, err)
		}
	}
	if got := d.Keyring().Keys(); len(got) != 1 || p2p.FormatSecret(got[0]) != next {
		t.Fatalf("keyring after the rotation = %d keys", len(got))
	}
	if _, err := dhtCommand(ctx, d, "keys", "install not-a-secret"); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Fatalf("keys install of a bad secret = %v", err)
	}
}
