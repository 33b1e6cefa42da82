package kv_test

import (
	"testing"

	"github.com/p2p-go/p2p/kv"
	"github.com/p2p-go/p2p/kv/kvtest"
)

// TestBackendContract runs the backend contract against the in-memory
// backend (package boltstore runs it against bbolt).
func TestBackendContract(t *testing.T) {
	kvtest.BackendContract(t, kv.NewMemory())
}
