package plumtree

import (
	"math/rand/v2"
	"testing"
	"time"
)

// The seen set answers as a map of expiry times with FIFO eviction would,
// under random inserts, lookups and time steps, and its ring never holds
// more than the limit.
func TestSeenSetMatchesAModel(t *testing.T) {
	for _, limit := range []int{1, 5, 64, 1000} {
		rng := rand.New(rand.NewPCG(uint64(limit), 9))
		set := newSeenSet(limit, time.Second)
		model := newBoundedCache[struct{}](limit, time.Second)
		now := time.Unix(100, 0)
		ids := make([]MessageID, 3*limit+10)
		for i := range ids {
			ids[i][0], ids[i][1], ids[i][15] = byte(i), byte(i>>8), 7
		}
		for step := range 20000 {
			id := ids[rng.IntN(len(ids))]
			switch rng.IntN(4) {
			case 0:
				now = now.Add(time.Duration(rng.IntN(100)) * time.Millisecond)
				set.expire(now)
				model.expire(now)
			case 1:
				set.put(now, id, struct{}{})
				model.put(now, id, struct{}{})
			default:
				if got, want := set.contains(now, id), model.contains(now, id); got != want {
					t.Fatalf("limit %d, step %d: contains = %v, want %v", limit, step, got, want)
				}
			}
			if set.len() != model.len() {
				t.Fatalf("limit %d, step %d: %d IDs, want %d", limit, step, set.len(), model.len())
			}
			if len(set.queue) > limit {
				t.Fatalf("limit %d: the ring grew to %d", limit, len(set.queue))
			}
		}
	}
}
