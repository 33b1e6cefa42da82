package engine

// eventKind tells the engine what an event does when its time comes.
type eventKind uint8

const (
	// eventDeliver hands msg, sent by node from, to node to.
	eventDeliver eventKind = iota + 1
	// eventLinkDown steps node to with the overlay.LinkDown held in msg.
	eventLinkDown
	// eventTick steps node to with overlay.Tick if gen is still its current
	// tick generation.
	eventTick
	// eventFunc runs fn.
	eventFunc
)

// event is one entry of the schedule. Events are ordered by (at, seq): seq
// grows with every scheduled event, so simultaneous events run in the order
// they were scheduled and a run never depends on heap internals.
type event struct {
	at   int64 // virtual nanoseconds since the epoch
	seq  uint64
	kind eventKind
	from int32
	to   int32
	gen  uint32 // tick generation (eventTick); the receiver's incarnation (eventDeliver, eventLinkDown)
	size uint32 // bytes on the wire, when counted (eventDeliver)
	msg  any
	fn   func()
}

// before reports whether a runs before b.
func (a *event) before(b *event) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

// eventQueue is a binary min-heap of events held by value, so that
// scheduling a message allocates nothing beyond the slice's growth.
type eventQueue struct {
	items []event
}

// Len returns the number of pending events.
func (q *eventQueue) Len() int { return len(q.items) }

// push adds ev to the queue.
func (q *eventQueue) push(ev event) {
	q.items = append(q.items, ev)
	i := len(q.items) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !q.items[i].before(&q.items[parent]) {
			break
		}
		q.items[i], q.items[parent] = q.items[parent], q.items[i]
		i = parent
	}
}

// peek returns the earliest event; the queue must not be empty.
func (q *eventQueue) peek() *event { return &q.items[0] }

// pop removes and returns the earliest event; the queue must not be empty.
func (q *eventQueue) pop() event {
	top := q.items[0]
	last := len(q.items) - 1
	q.items[0] = q.items[last]
	q.items[last] = event{} // release references for the garbage collector
	q.items = q.items[:last]
	i, n := 0, last
	for {
		left := 2*i + 1
		if left >= n {
			break
		}
		smallest := left
		if right := left + 1; right < n && q.items[right].before(&q.items[left]) {
			smallest = right
		}
		if !q.items[smallest].before(&q.items[i]) {
			break
		}
		q.items[i], q.items[smallest] = q.items[smallest], q.items[i]
		i = smallest
	}
	return top
}
