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

// random returns a uniformly chosen peer for which skip is false (skip may
// be nil).
func (v *view) random(rng *rand.Rand, skip func(peer.ID) bool) (peer.Info, bool) {
	eligible := len(v.peers)
	if skip != nil {
		eligible = 0
		for _, info := range v.peers {
			if !skip(info.ID) {
				eligible++
			}
		}
	}
	if eligible == 0 {
		return peer.Info{}, false
	}
	pick := rng.IntN(eligible)
	for _, info := range v.peers {
		if skip != nil && skip(info.ID) {
			continue
		}
		if pick == 0 {
			return info, true
		}
		pick--
	}
	return peer.Info{}, false
}

// sample returns up to n distinct peers chosen uniformly among those for
// which skip is false (skip may be nil), by reservoir sampling.
func (v *view) sample(rng *rand.Rand, n int, skip func(peer.ID) bool) []peer.Info {
	if n <= 0 || len(v.peers) == 0 {
		return nil
	}
	reservoir := make([]peer.Info, 0, min(n, len(v.peers)))
	seen := 0
	for _, info := range v.peers {
		if skip != nil && skip(info.ID) {
			continue
		}
		seen++
		if len(reservoir) < n {
			reservoir = append(reservoir, info)
			continue
		}
		if j := rng.IntN(seen); j < n {
			reservoir[j] = info
		}
	}
	if len(reservoir) == 0 {
		return nil
	}
	// The reservoir keeps the view's order for its first entries; shuffle
	// so that a prefix of the sample is a uniform sample too.
	rng.Shuffle(len(reservoir), func(i, j int) { reservoir[i], reservoir[j] = reservoir[j], reservoir[i] })
	return reservoir
}

// list returns a copy of the view.
func (v *view) list() []peer.Info {
	return append([]peer.Info(nil), v.peers...)
}
