package agent

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/p2p-go/p2p"
	"github.com/p2p-go/p2p/peer"
)

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestSecretFilesWithLooseModesWarn: a cluster secret, an API token or a
// node key readable by group or others is used, with a warning that names
// the file; the same files at 0600 raise no warning.
func TestSecretFilesWithLooseModesWarn(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode os.FileMode
		warn bool
	}{{"loose", 0o644, true}, {"group", 0o640, true}, {"private", 0o600, false}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			secretFile := filepath.Join(dir, "secret")
			tokenFile := filepath.Join(dir, "token")
			if err := os.WriteFile(secretFile, []byte(p2p.GenerateSecret()+"\n"), tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(tokenFile, []byte("tok3n\n"), tc.mode); err != nil {
				t.Fatal(err)
			}
			cfg := testConfig(t, "a")
			// The node key exists before the agent starts, with the mode
			// under test.
			if _, err := peer.LoadOrCreateKey(cfg.DataDir); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(filepath.Join(cfg.DataDir, peer.KeyFile), tc.mode); err != nil {
				t.Fatal(err)
			}
			var logs syncBuffer
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			cfg.SecretFile, cfg.APITokenFile = secretFile, tokenFile
			a := startAgent(t, cfg)
			for _, want := range []string{"cluster secret file", "API token file", "node key file"} {
				if got := strings.Contains(logs.String(), want+" is readable by other users"); got != tc.warn {
					t.Errorf("mode %#o: warning about %q logged = %v, want %v; logs:\n%s", tc.mode, want, got, tc.warn, logs.String())
				}
			}
			// The token from the file is required.
			hc := httpClient(t)
			if status, _ := rawCall(t, hc, a, "GET", "/v1/info", nil, nil); status != http.StatusUnauthorized {
				t.Fatalf("GET /v1/info without the token = %d, want 401", status)
			}
			if _, err := client(t, a, "tok3n").Info(context.Background()); err != nil {
				t.Fatalf("Info with the token from the file: %v", err)
			}
		})
	}
}

// TestConfigFileWithSecretAndLooseModeWarns: a configuration file that
// holds the cluster secret or the API token is a secret file too; one
// without them may be readable by all.
func TestConfigFileWithSecretAndLooseModeWarns(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		mode    os.FileMode
		warn    bool
	}{
		{"secret", `{"secret": "` + p2p.GenerateSecret() + `"}`, 0o644, true},
		{"token", `{"api-token": "tok3n"}`, 0o640, true},
		{"private", `{"secret": "` + p2p.GenerateSecret() + `", "api-token": "tok3n"}`, 0o600, false},
		{"no secret", `{"name": "a"}`, 0o644, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "p2p.json")
			if err := os.WriteFile(path, []byte(tc.content), tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil { // whatever the umask
				t.Fatal(err)
			}
			cfg, err := LoadConfig(Sources{File: path})
			if err != nil {
				t.Fatal(err)
			}
			base := testConfig(t, "a")
			cfg.DataDir, cfg.Listen, cfg.API, cfg.Name = base.DataDir, base.Listen, base.API, base.Name
			var logs syncBuffer
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			startAgent(t, cfg)
			if got := strings.Contains(logs.String(), "configuration file holds a secret and is readable by other users"); got != tc.warn {
				t.Errorf("mode %#o: warned %v, want %v; logs:\n%s", tc.mode, got, tc.warn, logs.String())
			}
		})
	}
}

func TestAPITokenFileErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{empty, filepath.Join(dir, "missing")} {
		cfg := testConfig(t, "a")
		cfg.APITokenFile = path
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "APITokenFile") {
			t.Errorf("New with APITokenFile %s = %v, want an error naming APITokenFile", path, err)
		}
	}
	// A token file is enough to listen off loopback.
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("t"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, "a")
	cfg.API, cfg.APITokenFile = "0.0.0.0:0", token
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("New on a wildcard API with a token file: %v", err)
	}
	if err := a.Close(); err != nil && !errors.Is(err, p2p.ErrClosed) {
		t.Fatal(err)
	}
}
