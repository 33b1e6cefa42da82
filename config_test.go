package p2p_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/p2p-go/p2p"
)

// TestConfigErrorsWrapErrConfigAndNameTheField checks that NewBroadcaster
// and NewDHT refuse an invalid configuration, before they touch the disk or
// the network, with an error wrapping ErrConfig that names the field.
func TestConfigErrorsWrapErrConfigAndNameTheField(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		cfg   p2p.Config
		field string
	}{
		{p2p.Config{DataDir: dir, Secret: []byte{1}}, "Config.Secret"},
		{p2p.Config{DataDir: dir, ReactorQueueLen: -1}, "Config.ReactorQueueLen"},
		{p2p.Config{DataDir: dir, LeaveTimeout: -time.Second}, "Config.LeaveTimeout"},
		{p2p.Config{DataDir: dir, MaxMessageSize: -1}, "Config.MaxMessageSize"},
	} {
		if _, err := p2p.NewBroadcaster(tc.cfg); !errors.Is(err, p2p.ErrConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("NewBroadcaster: error %v, want ErrConfig naming %s", err, tc.field)
		}
	}
	for _, tc := range []struct {
		cfg   p2p.DHTConfig
		field string
	}{
		{p2p.DHTConfig{DataDir: dir, Secret: []byte{1}}, "DHTConfig.Secret"},
		{p2p.DHTConfig{DataDir: dir, ReactorQueueLen: -1}, "DHTConfig.ReactorQueueLen"},
		{p2p.DHTConfig{DataDir: dir, MaxMessageSize: -1}, "DHTConfig.MaxMessageSize"},
	} {
		if _, err := p2p.NewDHT(tc.cfg); !errors.Is(err, p2p.ErrConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("NewDHT: error %v, want ErrConfig naming %s", err, tc.field)
		}
	}
}
