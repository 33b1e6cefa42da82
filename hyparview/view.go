package hyparview

import (
	"math/rand/v2"

	"github.com/p2p-go/p2p/peer"
)

// view is a bounded set of peers with O(1) lookup and uniform random choice.
// Its order is the insertion order disturbed by removals (the last entry
// takes the removed one's place), so it is deterministic for a given history.
type view struct {
	peers    []peer.Info
	index    map[peer.ID]int
	capacity int
}

func newView(capacity int) view {
	return view{
		peers:    make([]peer.Info, 0, capacity),
		index:    make(map[peer.ID]int, capacity),
		capacity: capacity,
	}
}

func (v *view) len() int   { return len(v.peers) }
func (v *view) full() bool { return len(v.peers) >= v.capacity }

func (v *view) has(id peer.ID) bool {
	_, ok := v.index[id]
	return ok
}

func (v *view) get(id peer.ID) (peer.Info, bool) {
	i, ok := v.index[id]
	if !ok {
		return peer.Info{}, false
	}
	return v.peers[i], true
}

// add inserts info; the caller has checked that it is absent and that the
// view has room.
func (v *view) add(info peer.Info) {
	v.index[info.ID] = len(v.peers)
	v.peers = append(v.peers, info)
}

// update replaces the stored address of a present peer.
func (v *view) update(info peer.Info) {
	if i, ok := v.index[info.ID]; ok {
		v.peers[i].Addr = info.Addr
	}
}

func (v *view) remove(id peer.ID) (peer.Info, bool) {
	i, ok := v.index[id]
	if !ok {
		return peer.Info{}, false
	}
	removed := v.peers[i]
	last := len(v.peers) - 1
	if i != last {
		v.peers[i] = v.peers[last]
		v.index[v.peers[i].ID] = i
	}
	v.peers[last] = peer.Info{}
	v.peers = v.peers[:last]
	delete(v.index, id)
	return removed, true
}

// random returns a uniformly chosen peer for which skip is false.
func (v *view) random(rng *rand.Rand, skip func(peer.ID) bool) (peer.Info, bool) {
	picked := v.sample(rng, 1, skip)
	if len(picked) == 0 {
		return peer.Info{}, false
	}
	return picked[0], true
}

// sample returns up to n distinct peers chosen uniformly among those for
// which skip is false (skip may be nil).
func (v *view) sample(rng *rand.Rand, n int, skip func(peer.ID) bool) []peer.Info {
	if n <= 0 {
		return nil
	}
	eligible := make([]peer.Info, 0, len(v.peers))
	for _, info := range v.peers {
		if skip == nil || !skip(info.ID) {
			eligible = append(eligible, info)
		}
	}
	if n > len(eligible) {
		n = len(eligible)
	}
	for i := 0; i < n; i++ {
		j := i + rng.IntN(len(eligible)-i)
		eligible[i], eligible[j] = eligible[j], eligible[i]
	}
	return eligible[:n:n]
}

// list returns a copy of the view.
func (v *view) list() []peer.Info {
	return append([]peer.Info(nil), v.peers...)
}
