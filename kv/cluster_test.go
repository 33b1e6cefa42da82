package kv

import (
	"testing"
	"time"
)

// Demers et al.'s anti-entropy guarantee, with pushes lost, partitions and
// restarts: once the network heals, every replica holds the same store
// within a few anti-entropy intervals, and no acknowledged write is lost
// unless superseded. A small cluster, so it also runs under -race; the
// 50-node version is in norace_cluster_test.go.
func TestClusterConvergesAfterPartitionsAndRestarts(t *testing.T) {
	runClusterScenario(t, simParams{
		nodes:          12,
		extraLinks:     2,
		seed:           1,
		writePhase:     60 * time.Second,
		writeInterval:  300 * time.Millisecond,
		keys:           30,
		loss:           0.1,
		partitionEvery: 10 * time.Second,
		crashEvery:     5 * time.Second,
		interval:       5 * time.Second,
		maxSkew:        100 * time.Millisecond,
	}, 3)
}
