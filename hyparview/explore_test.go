package hyparview

import (
	"testing"
	"time"
)

func TestExplore(t *testing.T) {
	start := time.Now()
	n := newTestNet(t, 1)
	n.grow(1000, 10*time.Millisecond)
	t.Logf("grown at %v: comps %d hist %v asym %d", n.now.Sub(epoch), n.components(), n.degreeHistogram(), len(n.asymmetries()))
	n.run(30 * time.Second)
	t.Logf("after 30s: comps %d hist %v asym %d steps %d msgs %v", n.components(), n.degreeHistogram(), len(n.asymmetries()), n.steps, n.messages)
	n.checkInvariants()
	pas := 0
	for _, node := range n.live() {
		pas += node.core.passiveView.len()
	}
	t.Logf("mean passive %.1f", float64(pas)/1000)
	for _, frac := range []float64{0.5, 0.8} {
		m := newTestNet(t, 2)
		m.grow(1000, 10*time.Millisecond)
		m.run(30 * time.Second)
		for i, node := range m.order {
			if float64(i) < frac*1000 {
				_ = node
			}
		}
		perm := m.rng.Perm(1000)
		for _, i := range perm[:int(frac*1000)] {
			m.crash(m.order[i])
		}
		took, ok := m.runUntil(120*time.Second, 100*time.Millisecond, func() bool {
			return m.deadNeighbours() == 0 && m.components() == 1
		})
		t.Logf("frac %.1f healed=%v in %v: comps %d dead %d hist %v asym %d", frac, ok, took, m.components(), m.deadNeighbours(), m.degreeHistogram(), len(m.asymmetries()))
		m.run(20 * time.Second)
		t.Logf("  later: comps %d dead %d hist %v asym %d", m.components(), m.deadNeighbours(), m.degreeHistogram(), len(m.asymmetries()))
		m.checkInvariants()
	}
	t.Logf("wall %v", time.Since(start))
}
