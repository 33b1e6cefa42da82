package hyparview

import (
	"testing"
	"time"

	"github.com/p2p-go/p2p/peer"
)

// Tests named after the claims of the HyParView paper (DSN 2007). The
// 1,000-node versions are in norace_scale_test.go; under the race detector
// the same checks run on smaller overlays.

// checkJoinConnectsTheOverlay grows an overlay of size nodes, each joining
// through a random earlier node, and checks the paper's claims: the active
// views form one connected, symmetric graph whose degrees are almost all
// ActiveViewSize.
func checkJoinConnectsTheOverlay(t *testing.T, size int, seed uint64) {
	n := newTestNet(t, seed)
	n.grow(size, 10*time.Millisecond)
	n.run(20 * time.Second)
	messages, bytes := sumMessages(n), n.bytes()
	n.run(10 * time.Second)
	t.Logf("steady state: %.1f messages and %.0f bytes (CBOR, frame header and AEAD tag) per node per second",
		float64(sumMessages(n)-messages)/10/float64(size), float64(n.bytes()-bytes)/10/float64(size))
	n.checkInvariants()
	if components := n.components(); components != 1 {
		t.Fatalf("active-view graph has %d components, want 1", components)
	}
	if problems := n.persistentAsymmetries(); len(problems) != 0 {
		t.Fatalf("%d asymmetric active-view entries, e.g. %s", len(problems), problems[0])
	}
	histogram := n.degreeHistogram()
	total := 0
	for degree, count := range histogram {
		total += degree * count
	}
	mean := float64(total) / float64(size)
	full := float64(histogram[DefaultActiveViewSize]) / float64(size)
	t.Logf("%d nodes: degree histogram %v, mean %.3f, %.1f%% at %d; %d messages, %d bytes",
		size, histogram, mean, 100*full, DefaultActiveViewSize, sumMessages(n), n.bytes())
	if mean < 4.85 || full < 0.9 {
		t.Fatalf("degrees not close to ActiveViewSize: mean %.3f, %.1f%% full", mean, 100*full)
	}
	if histogram[0] != 0 {
		t.Fatalf("%d nodes have no neighbour", histogram[0])
	}
}

func sumMessages(n *testNet) int {
	total := 0
	for _, count := range n.messages {
		total += count
	}
	return total
}

// checkOverlayHeals kills a fraction of a settled overlay at once (crashed
// nodes are silent) and measures how long until every survivor's active
// view holds only live nodes and the survivors' graph is connected again.
func checkOverlayHeals(t *testing.T, size int, fraction float64, seed uint64) time.Duration {
	n := newTestNet(t, seed)
	n.grow(size, 10*time.Millisecond)
	n.run(30 * time.Second)
	for _, i := range n.rng.Perm(size)[:int(fraction*float64(size))] {
		n.crash(n.order[i])
	}
	limit := 3 * (DefaultFailureTimeout + DefaultKeepaliveInterval)
	took, healed := n.runUntil(limit, 100*time.Millisecond, func() bool {
		return n.deadNeighbours() == 0 && n.components() == 1
	})
	t.Logf("%d nodes, %.0f%% killed: healed=%v after %v (degree histogram %v)",
		size, 100*fraction, healed, took, n.degreeHistogram())
	if !healed {
		t.Fatalf("not healed within %v: %d dead neighbours, %d components", limit, n.deadNeighbours(), n.components())
	}
	refilled, full := n.runUntil(6*DefaultShuffleInterval, 100*time.Millisecond, func() bool {
		return n.degreeHistogram()[DefaultActiveViewSize] >= len(n.live())*9/10
	})
	t.Logf("90%% of survivors back to %d neighbours after %v more (%v; histogram %v)",
		DefaultActiveViewSize, refilled, full, n.degreeHistogram())
	n.checkInvariants()
	if problems := n.persistentAsymmetries(); len(problems) != 0 {
		t.Fatalf("%d asymmetric entries after healing, e.g. %s", len(problems), problems[0])
	}
	if components := n.components(); components != 1 {
		t.Fatalf("%d components a cycle after healing", components)
	}
	return took
}

func TestJoinThroughAnyContactConnectsTheOverlay(t *testing.T) {
	checkJoinConnectsTheOverlay(t, 200, 11)
}

func TestOverlayHealsAfterMassFailure(t *testing.T) {
	for _, fraction := range []float64{0.5, 0.8} {
		t.Run(percent(fraction), func(t *testing.T) {
			checkOverlayHeals(t, 200, fraction, 12)
		})
	}
}

func percent(fraction float64) string {
	return string(rune('0'+int(fraction*10))) + "0%"
}

func TestActiveViewsAreSymmetric(t *testing.T) {
	n := newTestNet(t, 13)
	n.grow(100, 20*time.Millisecond)
	n.run(10 * time.Second)
	// Churn: crashes, polite leaves and new joiners, interleaved.
	for round := 0; round < 10; round++ {
		live := n.live()
		n.crash(live[n.rng.IntN(len(live))])
		leaver := live[n.rng.IntN(len(live))]
		if leaver.alive {
			n.step(leaver, Leave{})
			n.run(time.Second)
			n.crash(leaver)
		}
		live = n.live()
		n.join(n.add(), live[n.rng.IntN(len(live))])
		n.run(2 * time.Second)
		n.checkInvariants()
	}
	n.run(2 * (DefaultFailureTimeout + DefaultKeepaliveInterval))
	if problems := n.persistentAsymmetries(); len(problems) != 0 {
		t.Fatalf("%d asymmetric entries after churn, e.g. %s", len(problems), problems[0])
	}
	if n.deadNeighbours() != 0 || n.components() != 1 {
		t.Fatalf("after churn: %d dead neighbours, %d components", n.deadNeighbours(), n.components())
	}
}

func TestShuffleRefreshesPassiveView(t *testing.T) {
	// changed returns the mean fraction of passive entries replaced over
	// six cycles, and the mean passive view size.
	changed := func(shuffleInterval time.Duration) (float64, float64) {
		n := newTestNet(t, 14)
		n.configure = func(cfg *Config) { cfg.ShuffleInterval = shuffleInterval }
		n.grow(100, 20*time.Millisecond)
		n.run(10 * time.Second)
		before := make(map[*testNode][]peerKey)
		for _, node := range n.order {
			before[node] = keys(node.core.PassiveView())
		}
		n.run(6 * DefaultShuffleInterval)
		n.checkInvariants()
		replaced, size := 0.0, 0.0
		for _, node := range n.order {
			now := keys(node.core.PassiveView())
			size += float64(len(now))
			gone := 0
			for _, key := range before[node] {
				if !containsKey(now, key) {
					gone++
				}
			}
			if len(before[node]) > 0 {
				replaced += float64(gone) / float64(len(before[node]))
			}
		}
		return replaced / float64(len(n.order)), size / float64(len(n.order))
	}
	withShuffle, size := changed(DefaultShuffleInterval)
	withoutShuffle, _ := changed(time.Hour)
	t.Logf("passive entries replaced in 6 cycles: %.0f%% with shuffles, %.0f%% without; mean passive size %.1f",
		100*withShuffle, 100*withoutShuffle, size)
	if withShuffle < 0.3 || withShuffle < withoutShuffle+0.2 {
		t.Fatalf("shuffles did not refresh passive views: %.0f%% replaced (%.0f%% without shuffles)", 100*withShuffle, 100*withoutShuffle)
	}
	if size < 0.9*DefaultPassiveViewSize {
		t.Fatalf("mean passive view size %.1f, want close to %d", size, DefaultPassiveViewSize)
	}
}

type peerKey = peer.ID

func keys(infos []peer.Info) []peerKey {
	var result []peerKey
	for _, info := range infos {
		result = append(result, info.ID)
	}
	return result
}

func containsKey(list []peerKey, key peerKey) bool {
	for _, k := range list {
		if k == key {
			return true
		}
	}
	return false
}

func TestCrashedNeighbourDroppedWithinFailureTimeout(t *testing.T) {
	tests := []struct {
		name      string
		keepalive time.Duration
		failure   time.Duration
	}{
		{"defaults", 0, 0},
		{"fast", 200 * time.Millisecond, 1 * time.Second},
		{"slow", 2 * time.Second, 10 * time.Second},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			n := newTestNet(t, 15)
			n.configure = func(cfg *Config) {
				cfg.KeepaliveInterval, cfg.FailureTimeout = test.keepalive, test.failure
			}
			n.grow(30, 20*time.Millisecond)
			n.run(10 * time.Second)
			victim := n.order[5]
			cfg := victim.core.cfg
			neighbours := victim.core.ActiveView()
			degreeBefore := make(map[peer.ID]int)
			for _, info := range neighbours {
				degreeBefore[info.ID] = n.nodes[info.ID].core.activeView.len()
			}
			crashedAt := n.now
			n.crash(victim)
			bound := cfg.FailureTimeout + cfg.KeepaliveInterval
			var worst time.Duration
			took, dropped := n.runUntil(2*bound, 10*time.Millisecond, func() bool {
				for _, info := range neighbours {
					if n.nodes[info.ID].core.activeView.has(victim.info.ID) {
						return false
					}
				}
				return true
			})
			worst = took
			t.Logf("%d neighbours dropped the crashed node within %v (bound %v)", len(neighbours), worst, bound)
			if !dropped || worst > bound {
				t.Fatalf("crashed node still active %v after the crash at %v, bound %v", took, crashedAt, bound)
			}
			n.run(bound)
			if n.deadNeighbours() != 0 || n.components() != 1 {
				t.Fatalf("overlay not repaired: %d dead neighbours, %d components", n.deadNeighbours(), n.components())
			}
			for _, info := range neighbours {
				if got := n.nodes[info.ID].core.activeView.len(); got < degreeBefore[info.ID]-1 {
					t.Errorf("neighbour %s has %d active peers after repair, had %d with the crashed node", info, got, degreeBefore[info.ID])
				}
			}
		})
	}
}

func TestIsolatedNodeRejoinsThroughItsContacts(t *testing.T) {
	n := newTestNet(t, 16)
	n.grow(30, 20*time.Millisecond)
	n.run(5 * time.Second)
	isolated := n.order[len(n.order)-1]
	n.isolate(isolated)
	_, alone := n.runUntil(time.Minute, 100*time.Millisecond, func() bool {
		return isolated.core.activeView.len() == 0 && isolated.core.passiveView.len() == 0
	})
	if !alone {
		t.Fatalf("isolated node kept views: %d active, %d passive", isolated.core.activeView.len(), isolated.core.passiveView.len())
	}
	joinsBefore := n.messages[TypeJoin]
	n.run(5 * DefaultNeighborRetry)
	if n.messages[TypeJoin] != joinsBefore {
		t.Fatalf("JOIN crossed the cut")
	}
	n.heal()
	took, back := n.runUntil(30*time.Second, 100*time.Millisecond, func() bool {
		return isolated.core.activeView.len() > 0 && n.components() == 1 && n.deadNeighbours() == 0
	})
	if !back {
		t.Fatalf("isolated node did not rejoin: %d active peers, %d components", isolated.core.activeView.len(), n.components())
	}
	t.Logf("isolated node rejoined %v after the cut healed", took)
	n.run(DefaultShuffleInterval)
	if problems := n.persistentAsymmetries(); len(problems) != 0 {
		t.Fatalf("asymmetric entries: %v", problems)
	}
}

func TestRunsAreRepeatable(t *testing.T) {
	snapshot := func() [][]peer.Info {
		n := newTestNet(t, 17)
		n.grow(50, 20*time.Millisecond)
		n.run(20 * time.Second)
		var views [][]peer.Info
		for _, node := range n.order {
			views = append(views, node.core.ActiveView(), node.core.PassiveView())
		}
		return views
	}
	first, second := snapshot(), snapshot()
	for i := range first {
		if len(first[i]) != len(second[i]) {
			t.Fatalf("view %d differs between runs with the same seed", i)
		}
		for j := range first[i] {
			if first[i][j] != second[i][j] {
				t.Fatalf("view %d differs between runs with the same seed", i)
			}
		}
	}
}
