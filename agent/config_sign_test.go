package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sign-broadcasts is an on/off setting: true or false in the file (as a JSON
// boolean or a string), in P2P_SIGN_BROADCASTS, or as a flag.
func TestSignBroadcastsFromEachSource(t *testing.T) {
	file := filepath.Join(t.TempDir(), "agent.json")
	if err := os.WriteFile(file, []byte(`{"sign-broadcasts": true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		src  Sources
		want bool
	}{
		{"default", Sources{}, false},
		{"file", Sources{File: file}, true},
		{"environment", Sources{Env: envMap(map[string]string{"P2P_SIGN_BROADCASTS": "1"})}, true},
		{"flag over file", Sources{File: file, Flags: map[string][]string{"sign-broadcasts": {"false"}}}, false},
	} {
		cfg, err := LoadConfig(tc.src)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if cfg.SignBroadcasts != tc.want {
			t.Errorf("%s: SignBroadcasts = %v, want %v", tc.name, cfg.SignBroadcasts, tc.want)
		}
	}
	_, err := LoadConfig(Sources{Env: envMap(map[string]string{"P2P_SIGN_BROADCASTS": "maybe"})})
	if err == nil || !strings.Contains(err.Error(), "P2P_SIGN_BROADCASTS") {
		t.Fatalf("bad value: error %v, want one naming P2P_SIGN_BROADCASTS", err)
	}
}
