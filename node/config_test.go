package node

import (
	"errors"
	"strings"
	"testing"

	"github.com/p2p-go/p2p/transport/memnet"
)

// TestStartRefusesAnIncompleteConfig checks that Start's validation errors
// wrap ErrConfig and name the missing field.
func TestStartRefusesAnIncompleteConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{}, "Config.Core"},
		{Config{Core: &echoCore{}}, "Config.Transport"},
	} {
		if _, err := Start(tc.cfg); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("Start: error %v, want ErrConfig naming %s", err, tc.field)
		}
	}
	cfg, err := Config{Core: &echoCore{}, Transport: &memnet.Transport{}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DialTimeout != DefaultDialTimeout || cfg.SendQueueLen != DefaultSendQueueLen || cfg.Clock == nil {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
}
