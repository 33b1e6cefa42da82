package gossip

import (
	"fmt"
	"testing"
	"time"
)

// TestSilentHostsDropOutWithinTheDocumentedBound loses hosts without a TCP
// reset (what is sent to them vanishes; dials hang): their neighbours notice
// only by keepalives, and every other member only by the claims that follow.
// Every member list must drop them within the bound doc.go documents:
// FailureTimeout + KeepaliveInterval + 2 ProbeTimeouts + 1 s for the
// broadcasts.
func TestSilentHostsDropOutWithinTheDocumentedBound(t *testing.T) {
	bound := 4*time.Second + time.Second + 2*DefaultProbeTimeout + time.Second
	var worst time.Duration
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed", 41+seed), func(t *testing.T) {
			net, _ := settledNet(t, 16, 41+seed)
			victims := []*testNode{net.nodes[3], net.nodes[8], net.nodes[13]}
			if seed%2 == 1 {
				victims = victims[:1]
			}
			for _, v := range victims {
				net.vanish(v)
			}
			took, ok := net.runUntil(time.Minute, func() bool {
				for _, n := range net.alive() {
					for _, v := range victims {
						if knows(n, v.info.ID) {
							return false
						}
					}
				}
				return true
			})
			if !ok || took > bound {
				t.Fatalf("%d silent hosts still listed after %v (bound %v)", len(victims), took, bound)
			}
			worst = max(worst, took)
			t.Logf("%d silent hosts dropped from every member list after %v (bound %v)", len(victims), took, bound)
		})
	}
	t.Logf("worst %v", worst)
}
