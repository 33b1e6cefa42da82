package kv

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestConfigErrorsWrapErrConfigAndNameTheField checks every validation
// error of New: it wraps ErrConfig and names the field.
func TestConfigErrorsWrapErrConfigAndNameTheField(t *testing.T) {
	key := testKey(1)
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{Backend: NewMemory()}, "Config.Key"},
		{Config{Key: key, Self: testKey(2).ID(), Backend: NewMemory()}, "Config.Self"},
		{Config{Key: key}, "Config.Backend"},
		{Config{Key: key, Backend: NewMemory(), AntiEntropyInterval: -time.Second}, "Config.AntiEntropyInterval"},
		{Config{Key: key, Backend: NewMemory(), TombstoneRetention: -time.Second}, "Config.TombstoneRetention"},
		{Config{Key: key, Backend: NewMemory(), MaxKeys: -1}, "Config.MaxKeys"},
	} {
		if _, err := New(tc.cfg); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("New: error %v, want ErrConfig naming %s", err, tc.field)
		}
	}
}
