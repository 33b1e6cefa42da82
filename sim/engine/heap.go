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

// eventQueue holds the pending events in three lanes: a binary min-heap of
// events held by value (so that scheduling one allocates nothing beyond the
// slice's growth), a FIFO lane for message deliveries scheduled in order,
// and a heap of its own for eventFunc events (the scenario's callbacks). With
// a fixed latency every delivery is due no sooner than the one scheduled
// before it, so it joins the FIFO lane at O(1) rather than sifting through a
// heap of millions of events (most of a large run's events); a delivery due
// sooner (random latencies) goes to the heap. The callbacks' lane tells the
// parallel engine where the next one is without searching. Each lane is
// ordered by (at, seq) and pop takes the earliest of their heads, so the
// events come out in exactly the order one heap would give.
type eventQueue struct {
	items eventHeap
	funcs eventHeap
	// fifo[head:] are deliveries in (at, seq) order.
	fifo []event
	head int
}

// Len returns the number of pending events.
func (q *eventQueue) Len() int { return len(q.items) + len(q.funcs) + len(q.fifo) - q.head }

// push adds ev to the queue.
func (q *eventQueue) push(ev event) {
	if ev.kind == eventFunc {
		q.funcs.push(ev)
		return
	}
	if ev.kind == eventDeliver && (q.head == len(q.fifo) || q.fifo[len(q.fifo)-1].at <= ev.at) {
		if q.head == len(q.fifo) {
			q.fifo, q.head = q.fifo[:0], 0
		} else if q.head >= 1024 && q.head*2 >= len(q.fifo) {
			// Reuse the consumed half rather than growing forever.
			n := copy(q.fifo, q.fifo[q.head:])
			clear(q.fifo[n:])
			q.fifo, q.head = q.fifo[:n], 0
		}
		q.fifo = append(q.fifo, ev)
		return
	}
	q.items.push(ev)
}

// lane names where the earliest event of a set of lanes is.
type lane uint8

const (
	laneNone lane = iota
	laneFIFO
	laneItems
	laneFuncs
)

// nodeLane returns the lane holding the earliest event that is not a
// callback (laneNone when there is none).
func (q *eventQueue) nodeLane() lane {
	if q.head == len(q.fifo) {
		if len(q.items) == 0 {
			return laneNone
		}
		return laneItems
	}
	if len(q.items) == 0 || q.fifo[q.head].before(&q.items[0]) {
		return laneFIFO
	}
	return laneItems
}

// firstLane returns the lane holding the earliest event.
func (q *eventQueue) firstLane() lane {
	l := q.nodeLane()
	if len(q.funcs) > 0 && (l == laneNone || q.funcs[0].before(q.head0(l))) {
		return laneFuncs
	}
	return l
}

// head0 returns the head of lane l, which must not be empty.
func (q *eventQueue) head0(l lane) *event {
	switch l {
	case laneFIFO:
		return &q.fifo[q.head]
	case laneFuncs:
		return &q.funcs[0]
	default:
		return &q.items[0]
	}
}

// peek returns the earliest event; the queue must not be empty.
func (q *eventQueue) peek() *event { return q.head0(q.firstLane()) }

// peekFunc returns the earliest callback, or nil.
func (q *eventQueue) peekFunc() *event {
	if len(q.funcs) == 0 {
		return nil
	}
	return &q.funcs[0]
}

// peekNode returns the earliest event that is not a callback, or nil.
func (q *eventQueue) peekNode() *event {
	l := q.nodeLane()
	if l == laneNone {
		return nil
	}
	return q.head0(l)
}

// pop removes and returns the earliest event; the queue must not be empty.
func (q *eventQueue) pop() event { return q.popLane(q.firstLane()) }

// popNode removes and returns the earliest event that is not a callback;
// there must be one.
func (q *eventQueue) popNode() event { return q.popLane(q.nodeLane()) }

// popLane removes and returns the head of lane l, which must not be empty.
func (q *eventQueue) popLane(l lane) event {
	switch l {
	case laneFIFO:
		ev := q.fifo[q.head]
		q.fifo[q.head] = event{} // release references for the garbage collector
		q.head++
		return ev
	case laneFuncs:
		return q.funcs.pop()
	default:
		return q.items.pop()
	}
}

// eventHeap is a binary min-heap of events by (at, seq).
type eventHeap []event

// push adds ev to the heap.
func (h *eventHeap) push(ev event) {
	*h = append(*h, ev)
	items := *h
	i := len(items) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !items[i].before(&items[parent]) {
			break
		}
		items[i], items[parent] = items[parent], items[i]
		i = parent
	}
}

// pop removes and returns the earliest event; the heap must not be empty.
func (h *eventHeap) pop() event {
	items := *h
	top := items[0]
	last := len(items) - 1
	items[0] = items[last]
	items[last] = event{} // release references for the garbage collector
	items = items[:last]
	*h = items
	i, n := 0, last
	for {
		left := 2*i + 1
		if left >= n {
			break
		}
		smallest := left
		if right := left + 1; right < n && items[right].before(&items[left]) {
			smallest = right
		}
		if !items[smallest].before(&items[i]) {
			break
		}
		items[i], items[smallest] = items[smallest], items[i]
		i = smallest
	}
	return top
}
