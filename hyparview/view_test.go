package hyparview

import (
	"math/rand/v2"
	"testing"

	"github.com/p2p-go/p2p/peer"
	"pgregory.net/rapid"
)

// TestViewOperationsKeepItConsistent checks, over random operation
// sequences, that a view stays bounded and indexed and that its random
// choices are distinct members that pass the filter.
func TestViewOperationsKeepItConsistent(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		capacity := rapid.IntRange(1, 12).Draw(t, "capacity")
		v := newView(capacity)
		rng := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 1))
		model := map[peer.ID]bool{}
		for step := rapid.IntRange(0, 60).Draw(t, "steps"); step > 0; step-- {
			info := testInfo(rapid.IntRange(1, 20).Draw(t, "peer"))
			switch rapid.IntRange(0, 2).Draw(t, "op") {
			case 0:
				if !v.has(info.ID) && !v.full() {
					v.add(info)
					model[info.ID] = true
				}
			case 1:
				_, removed := v.remove(info.ID)
				if removed != model[info.ID] {
					t.Fatalf("remove(%s) = %v, model says %v", info, removed, model[info.ID])
				}
				delete(model, info.ID)
			case 2:
				n := rapid.IntRange(0, 15).Draw(t, "n")
				odd := func(id peer.ID) bool { return id[1]%2 == 1 }
				picked := v.sample(rng, n, odd)
				eligible := 0
				for id := range model {
					if !odd(id) {
						eligible++
					}
				}
				if want := min(n, eligible); len(picked) != want {
					t.Fatalf("sample(%d) returned %d peers, want %d", n, len(picked), want)
				}
				seen := map[peer.ID]bool{}
				for _, p := range picked {
					if seen[p.ID] || !model[p.ID] || odd(p.ID) {
						t.Fatalf("sample returned %s: duplicate, absent or filtered", p)
					}
					seen[p.ID] = true
				}
				if one, ok := v.random(rng, odd); ok != (eligible > 0) || (ok && (!model[one.ID] || odd(one.ID))) {
					t.Fatalf("random returned %s, %v with %d eligible", one, ok, eligible)
				}
			}
			if v.len() != len(model) || v.len() > capacity || len(v.index) != len(v.peers) {
				t.Fatalf("view has %d peers (index %d), model %d, capacity %d", v.len(), len(v.index), len(model), capacity)
			}
			for i, p := range v.peers {
				if v.index[p.ID] != i {
					t.Fatalf("index of %s is %d, want %d", p, v.index[p.ID], i)
				}
			}
		}
	})
}

// TestViewRandomChoiceIsUniform checks that every eligible peer is chosen
// about equally often.
func TestViewRandomChoiceIsUniform(t *testing.T) {
	v := newView(10)
	for i := 1; i <= 10; i++ {
		v.add(testInfo(i))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	counts := map[peer.ID]int{}
	const draws = 20000
	for i := 0; i < draws; i++ {
		for _, p := range v.sample(rng, 3, nil)[:1] {
			counts[p.ID]++
		}
	}
	for id, count := range counts {
		if count < draws/10*8/10 || count > draws/10*12/10 {
			t.Errorf("peer %s drawn first %d times of %d, want about %d", id.Short(), count, draws, draws/10)
		}
	}
	if len(counts) != 10 {
		t.Errorf("only %d of 10 peers ever drawn first", len(counts))
	}
}
