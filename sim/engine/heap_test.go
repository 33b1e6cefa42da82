package engine

import (
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// TestEventQueuePopsInTimeThenSequenceOrder checks the two-lane queue against
// its definition: whatever mix of in-order deliveries, out-of-order
// deliveries and other events is pushed between pops, events come out by
// (at, seq), as from a single heap.
func TestEventQueuePopsInTimeThenSequenceOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var q eventQueue
		var pending []event
		var seq uint64
		now := int64(0)
		steps := rapid.IntRange(1, 400).Draw(t, "steps")
		for range steps {
			if len(pending) > 0 && rapid.IntRange(0, 2).Draw(t, "pop") == 0 {
				slices.SortFunc(pending, func(a, b event) int {
					if a.before(&b) {
						return -1
					}
					return 1
				})
				if got := q.peek(); got.seq != pending[0].seq {
					t.Fatalf("peek: seq %d, want %d", got.seq, pending[0].seq)
				}
				got := q.pop()
				if got.seq != pending[0].seq || got.at != pending[0].at {
					t.Fatalf("pop: (%d, %d), want (%d, %d)", got.at, got.seq, pending[0].at, pending[0].seq)
				}
				now = got.at
				pending = pending[1:]
				continue
			}
			seq++
			ev := event{seq: seq, kind: eventKind(rapid.IntRange(int(eventDeliver), int(eventFunc)).Draw(t, "kind"))}
			// Mostly a fixed latency (in order), sometimes any delay.
			if rapid.Bool().Draw(t, "fixed") {
				ev.at = now + 20
			} else {
				ev.at = now + rapid.Int64Range(0, 50).Draw(t, "delay")
			}
			q.push(ev)
			pending = append(pending, ev)
			if q.Len() != len(pending) {
				t.Fatalf("Len %d, want %d", q.Len(), len(pending))
			}
		}
	})
}

// TestEventQueueReusesItsFIFOLane checks the FIFO lane across its
// compaction: a long run of in-order deliveries, popped while more arrive,
// comes out in order and the lane does not grow with the run.
func TestEventQueueReusesItsFIFOLane(t *testing.T) {
	var q eventQueue
	var seq, next uint64
	for round := range 100 {
		for range 100 {
			seq++
			q.push(event{seq: seq, at: int64(seq), kind: eventDeliver})
		}
		for range 100 - round%2 {
			next++
			if ev := q.pop(); ev.seq != next {
				t.Fatalf("popped seq %d, want %d", ev.seq, next)
			}
		}
	}
	if q.Len() != 50 || cap(q.fifo) > 4096 {
		t.Fatalf("%d pending (want 50), FIFO capacity %d", q.Len(), cap(q.fifo))
	}
}
