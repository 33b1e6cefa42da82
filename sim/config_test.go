package sim

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestConfigErrorsWrapErrConfigAndNameTheField checks that every
// configuration of the simulator is refused, before anything runs, with an
// error wrapping ErrConfig that names the field.
func TestConfigErrorsWrapErrConfigAndNameTheField(t *testing.T) {
	check := func(err error, field string) {
		t.Helper()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), field) {
			t.Errorf("error %v, want ErrConfig naming %s", err, field)
		}
	}
	_, err := New(Config{Loss: 2})
	check(err, "Config.Loss")
	_, err = New(Config{Latency: Latency{Kind: LatencyFixed, Mean: -time.Second}})
	check(err, "Latency.Mean")
	_, err = RunBroadcast(BroadcastConfig{})
	check(err, "BroadcastConfig.Protocol")
	_, err = RunKademlia(KademliaConfig{Lookups: -1})
	check(err, "KademliaConfig.Lookups")
	_, err = RunKademlia(KademliaConfig{Nodes: 1})
	check(err, "KademliaConfig.Nodes")
	_, err = RunKV(KVConfig{AgreeTimeout: -time.Second})
	check(err, "KVConfig.AgreeTimeout")
}
