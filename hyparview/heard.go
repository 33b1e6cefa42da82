package hyparview

import (
	"time"

	"github.com/p2p-go/p2p/peer"
)

// heardTimes holds, for every active peer, when it last showed signs of life.
// The active view has a handful of peers and Heard runs for every message a
// node receives, so a short slice scanned in order beats a map: no hashing,
// and one small block of memory per node (a simulation of 10,000 nodes
// touches 10,000 of them).
type heardTimes struct {
	entries []heardEntry
}

type heardEntry struct {
	id peer.ID
	at time.Time
}

func (h *heardTimes) find(id peer.ID) int {
	for i := range h.entries {
		if h.entries[i].id == id {
			return i
		}
	}
	return -1
}

// set records that id was heard from at now, adding it if absent.
func (h *heardTimes) set(id peer.ID, now time.Time) {
	if i := h.find(id); i >= 0 {
		h.entries[i].at = now
		return
	}
	h.entries = append(h.entries, heardEntry{id: id, at: now})
}

// touch moves id's time forward to now; it ignores an absent id.
func (h *heardTimes) touch(id peer.ID, now time.Time) {
	if i := h.find(id); i >= 0 && now.After(h.entries[i].at) {
		h.entries[i].at = now
	}
}

// get returns when id was last heard from (the zero time if absent).
func (h *heardTimes) get(id peer.ID) time.Time {
	if i := h.find(id); i >= 0 {
		return h.entries[i].at
	}
	return time.Time{}
}

// remove forgets id.
func (h *heardTimes) remove(id peer.ID) {
	if i := h.find(id); i >= 0 {
		last := len(h.entries) - 1
		h.entries[i] = h.entries[last]
		h.entries = h.entries[:last]
	}
}
