package gossip

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/p2p-go/p2p/peer"
)

// TestConfigErrorsWrapErrConfigAndNameTheField checks every validation
// error of New: it wraps ErrConfig and names the field, and the defaults of
// a valid Config are filled in on a copy.
func TestConfigErrorsWrapErrConfigAndNameTheField(t *testing.T) {
	self := peer.Info{ID: peer.ID{1}, Addr: "node-1"}
	key, err := peer.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{}, "Config.Self.ID"},
		{Config{Self: self, Key: key}, "Config.Key"},
		{Config{Self: self, Name: strings.Repeat("n", MaxNameLen+1)}, "Config.Name"},
		{Config{Self: self, ProbeTimeout: -time.Second}, "Config.ProbeTimeout"},
		{Config{Self: self, SyncInterval: -time.Second}, "Config.SyncInterval"},
		{Config{Self: self, DeadRetention: -time.Second}, "Config.DeadRetention"},
		{Config{Self: self, MaxMembers: -1}, "Config.MaxMembers"},
		{Config{Self: self, MaxPayload: -1}, "Config.MaxPayload"},
		{Config{Self: self, Tree: TreePaper + 1}, "Config.Tree"},
		{Config{Self: self, SignatureFailures: -1}, "Config.SignatureFailures"},
	} {
		_, err := New(tc.cfg)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("New(%+v): error %v, want ErrConfig naming %s", tc.cfg, err, tc.field)
		}
	}
	cfg := Config{Self: self}
	got, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if got.ProbeTimeout != DefaultProbeTimeout || got.ProbeInterval != DefaultProbeInterval || got.MaxMembers != DefaultMaxMembers || got.MaxPayload != DefaultMaxPayload ||
		got.SignatureFailures != DefaultSignatureFailures {
		t.Fatalf("defaults not applied: %+v", got)
	}
	if cfg.ProbeTimeout != 0 {
		t.Fatal("withDefaults changed its receiver")
	}
}
