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

// eventQueue holds the pending events in two lanes: a binary min-heap of
// events held by value (so that scheduling one allocates nothing beyond the
// slice's growth), and a FIFO lane for message deliveries scheduled in
// order. With a fixed latency every delivery is due no sooner than the one
// scheduled before it, so it joins the FIFO lane at O(1) rather than sifting
// through a heap of millions of events (most of a large run's events); a
// delivery due sooner (random latencies) goes to the heap. Each lane is
// ordered by (at, seq) and pop takes the earlier of their heads, so the
// events come out in exactly the order one heap would give.
type eventQueue struct {
	items []event
	// fifo[head:] are deliveries in (at, seq) order.
	fifo []event
	head int
}

// Len returns the number of pending events.
func (q *eventQueue) Len() int { return len(q.items) + len(q.fifo) - q.head }

// push adds ev to the queue.
func (q *eventQueue) push(ev event) {
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

// fromFIFO reports whether the earliest event is the FIFO lane's head.
func (q *eventQueue) fromFIFO() bool {
	if q.head == len(q.fifo) {
		return false
	}
	return len(q.items) == 0 || q.fifo[q.head].before(&q.items[0])
}

// peek returns the earliest event; the queue must not be empty.
func (q *eventQueue) peek() *event {
	if q.fromFIFO() {
		return &q.fifo[q.head]
	}
	return &q.items[0]
}

// pop removes and returns the earliest event; the queue must not be empty.
func (q *eventQueue) pop() event {
	if q.fromFIFO() {
		ev := q.fifo[q.head]
		q.fifo[q.head] = event{} // release references for the garbage collector
		q.head++
		return ev
	}
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
