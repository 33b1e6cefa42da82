//go:build !race

package kv

import (
	"fmt"
	"testing"
	"time"
)

// The 50-node scenario of TestClusterConvergesAfterPartitionsAndRestarts:
// two minutes of random writes from random nodes while partitions into up
// to three groups come and go every 15 s, a node crashes every 4 s on
// average (restarting over its backend 3 to 15 s later) and 10% of
// broadcast copies are lost. After the heal every node must hold an
// identical store within 3 anti-entropy intervals, with no acknowledged
// write lost unless superseded. Several seeds.
func TestCluster50NodesConvergeAfterPartitionsAndRestarts(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			runClusterScenario(t, simParams{
				nodes:          50,
				extraLinks:     2,
				seed:           seed,
				writePhase:     2 * time.Minute,
				writeInterval:  250 * time.Millisecond,
				keys:           60,
				loss:           0.1,
				partitionEvery: 15 * time.Second,
				crashEvery:     4 * time.Second,
				interval:       5 * time.Second,
				maxSkew:        200 * time.Millisecond,
			}, 3)
		})
	}
}
