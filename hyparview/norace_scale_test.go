//go:build !race

package hyparview

import "testing"

// The paper-scale versions of the overlay tests: 1,000 nodes take a few
// seconds without the race detector and far longer with it.

func TestJoinThroughAnyContactConnectsTheOverlay1000(t *testing.T) {
	checkJoinConnectsTheOverlay(t, 1000, 21)
}

func TestOverlayHealsAfterMassFailure1000(t *testing.T) {
	for _, fraction := range []float64{0.5, 0.8} {
		t.Run(percent(fraction), func(t *testing.T) {
			checkOverlayHeals(t, 1000, fraction, 22)
		})
	}
}
