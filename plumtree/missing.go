package plumtree

import (
	"container/heap"
	"time"

	"github.com/p2p-go/p2p/peer"
)

// announcer is a neighbour that announced a missing message.
type announcer struct {
	peer  peer.ID
	round uint16
}

// missingMessage is a message announced by IHAVE but not yet received: the
// paper's missing set entry with its timer.
type missingMessage struct {
	id MessageID
	// announcers in the order their announcements arrived, at most
	// MaxAnnouncers, each peer once.
	announcers []announcer
	// next is the index in announcers of the next one to graft.
	next int
	// grafts counts the GRAFTs sent for this message.
	grafts int
	// summarized is set when a new neighbour's SUMMARY named the message:
	// its arrival is then a recovery of a message missed while cut off.
	summarized bool
	// deadline is when the running timer (1 or 2) expires.
	deadline time.Time
	// heapIndex is the position in missingSet.timers.
	heapIndex int
}

// missingSet holds the missing messages and a min-heap of their timers.
type missingSet struct {
	byID   map[MessageID]*missingMessage
	timers timerHeap
}

func newMissingSet() *missingSet {
	return &missingSet{byID: make(map[MessageID]*missingMessage)}
}

func (s *missingSet) len() int { return len(s.byID) }

func (s *missingSet) get(id MessageID) *missingMessage { return s.byID[id] }

// add starts tracking id with its timer expiring at deadline.
func (s *missingSet) add(id MessageID, deadline time.Time) *missingMessage {
	m := &missingMessage{id: id, deadline: deadline}
	s.byID[id] = m
	heap.Push(&s.timers, m)
	return m
}

// remove stops tracking id; it reports whether id was tracked.
func (s *missingSet) remove(id MessageID) (*missingMessage, bool) {
	m, ok := s.byID[id]
	if !ok {
		return nil, false
	}
	delete(s.byID, id)
	heap.Remove(&s.timers, m.heapIndex)
	return m, true
}

// reschedule moves the timer of m to deadline.
func (s *missingSet) reschedule(m *missingMessage, deadline time.Time) {
	m.deadline = deadline
	heap.Fix(&s.timers, m.heapIndex)
}

// nextDeadline returns the earliest timer.
func (s *missingSet) nextDeadline() (time.Time, bool) {
	if len(s.timers) == 0 {
		return time.Time{}, false
	}
	return s.timers[0].deadline, true
}

// due returns the missing message with the earliest timer if it has expired
// at now.
func (s *missingSet) due(now time.Time) *missingMessage {
	if len(s.timers) == 0 || now.Before(s.timers[0].deadline) {
		return nil
	}
	return s.timers[0]
}

// addAnnouncer records that p announced m with round; it ignores a peer
// already recorded and announcers beyond MaxAnnouncers.
func (m *missingMessage) addAnnouncer(p peer.ID, round uint16) {
	if len(m.announcers) >= MaxAnnouncers {
		return
	}
	for _, a := range m.announcers {
		if a.peer == p {
			return
		}
	}
	m.announcers = append(m.announcers, announcer{peer: p, round: round})
}

// removeAnnouncer forgets p (a neighbour that went down).
func (m *missingMessage) removeAnnouncer(p peer.ID) {
	for i, a := range m.announcers {
		if a.peer == p {
			m.announcers = append(m.announcers[:i], m.announcers[i+1:]...)
			if i < m.next {
				m.next--
			}
			if m.next >= len(m.announcers) {
				m.next = 0
			}
			return
		}
	}
}

// nextAnnouncer returns the next announcer to graft, going round the list
// so that a GRAFT whose answer was lost is retried with the next one.
func (m *missingMessage) nextAnnouncer() (announcer, bool) {
	if len(m.announcers) == 0 {
		return announcer{}, false
	}
	if m.next >= len(m.announcers) {
		m.next = 0
	}
	a := m.announcers[m.next]
	m.next++
	return a, true
}

// timerHeap orders missing messages by deadline, then by ID so that equal
// deadlines pop in a repeatable order.
type timerHeap []*missingMessage

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if !h[i].deadline.Equal(h[j].deadline) {
		return h[i].deadline.Before(h[j].deadline)
	}
	return string(h[i].id[:]) < string(h[j].id[:])
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIndex = i
	h[j].heapIndex = j
}
func (h *timerHeap) Push(x any) {
	m := x.(*missingMessage)
	m.heapIndex = len(*h)
	*h = append(*h, m)
}
func (h *timerHeap) Pop() any {
	old := *h
	m := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	m.heapIndex = -1
	return m
}
