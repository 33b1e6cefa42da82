package kv

import (
	"math"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// Kulkarni et al. 2014, section 3: HLC satisfies e hb f ⇒ hlc(e) < hlc(f)
// (the clock of an event is greater than that of every event it causally
// follows), l − pt stays within the clock offset ε, and l is monotonic. The
// test runs nodes whose physical clocks are offset by up to ε and drift
// backwards at times, exchanging messages at random.
func TestHLCPaperProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		const epsilon = int64(50 * time.Millisecond)
		nodes := rapid.IntRange(2, 5).Draw(t, "nodes")
		clocks := make([]Clock, nodes)
		offsets := make([]int64, nodes)
		for i := range offsets {
			offsets[i] = rapid.Int64Range(0, epsilon).Draw(t, "offset")
		}
		// lastEvent[i] is the HLC of node i's latest event: every later event
		// of node i, and every receive of a message it sent, follows it.
		lastEvent := make([]HLC, nodes)
		trueTime := epoch.UnixNano()
		for range rapid.IntRange(1, 200).Draw(t, "events") {
			trueTime += rapid.Int64Range(0, int64(time.Millisecond)).Draw(t, "advance")
			i := rapid.IntRange(0, nodes-1).Draw(t, "node")
			// A physical clock that sometimes reads up to 1 ms in the past.
			jitter := rapid.Int64Range(-int64(time.Millisecond), 0).Draw(t, "jitter")
			physical := time.Unix(0, trueTime+offsets[i]+jitter)
			var now HLC
			if rapid.Bool().Draw(t, "receive") {
				from := rapid.IntRange(0, nodes-1).Draw(t, "from")
				now = clocks[i].Update(physical, lastEvent[from])
				if now.Compare(lastEvent[from]) <= 0 {
					t.Fatalf("receive %v not after send %v", now, lastEvent[from])
				}
			} else {
				now = clocks[i].Now(physical)
			}
			if now.Compare(lastEvent[i]) <= 0 {
				t.Fatalf("node %d: %v not after its previous event %v", i, now, lastEvent[i])
			}
			lastEvent[i] = now
			// l − pt ≤ ε (plus the 1 ms backwards jitter of the reading).
			if drift := now.Wall - physical.UnixNano(); drift > epsilon+int64(time.Millisecond) {
				t.Fatalf("l − pt = %v exceeds ε", time.Duration(drift))
			}
		}
	})
}

func TestHLCLogicalOverflowMovesWallForward(t *testing.T) {
	c := Clock{}
	c.Observe(HLC{Wall: 100, Logical: math.MaxUint32})
	next := c.Now(time.Unix(0, 50))
	if next.Compare(HLC{Wall: 100, Logical: math.MaxUint32}) <= 0 || next.Wall != 101 || next.Logical != 0 {
		t.Fatalf("next = %+v", next)
	}
	got := c.Update(time.Unix(0, 50), HLC{Wall: 101, Logical: math.MaxUint32})
	if got.Wall != 102 || got.Logical != 0 {
		t.Fatalf("update = %+v", got)
	}
}

func TestHLCUpdateRules(t *testing.T) {
	for _, tc := range []struct {
		name     string
		last     HLC
		physical int64
		remote   HLC
		want     HLC
	}{
		{"physical ahead", HLC{Wall: 10, Logical: 3}, 20, HLC{Wall: 15, Logical: 9}, HLC{Wall: 20}},
		{"remote ahead", HLC{Wall: 10, Logical: 3}, 12, HLC{Wall: 15, Logical: 9}, HLC{Wall: 15, Logical: 10}},
		{"local ahead", HLC{Wall: 30, Logical: 3}, 12, HLC{Wall: 15, Logical: 9}, HLC{Wall: 30, Logical: 4}},
		{"equal walls", HLC{Wall: 30, Logical: 3}, 12, HLC{Wall: 30, Logical: 9}, HLC{Wall: 30, Logical: 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Clock{last: tc.last}
			if got := c.Update(time.Unix(0, tc.physical), tc.remote); got.Compare(tc.want) != 0 {
				t.Fatalf("Update = %+v, want %+v", got, tc.want)
			}
		})
	}
}
