package engine

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2p-go/p2p/overlay"
)

// The windowed parallel engine (Config.Workers ≥ 2).
//
// Every event one node's step causes at another node is at least the
// lookahead L later: a message takes at least the latency model's shortest
// latency, a failed send or dial and a broken link are reported after the
// dial timeout or the detection delay. So the events of different nodes due
// in [t, t+L), t being the time of the earliest pending event, cannot
// influence one another: each node's events of that window are stepped in
// their usual order, nodes on several goroutines at once, and only the
// node's own state is touched while doing so (its core, its counters, its
// tick). Everything else a step causes — the handling of its outputs (sends
// with their latency and loss draws, links, the Observer), the type counters
// and Config.OnMessage — is kept and carried out at the end of the window by
// one goroutine, the steps taken by (virtual time, sequence number of the
// event stepped), the order the sequential engine would take them in, the
// clock set to each step's time. A node's tick due within the window is
// stepped within it, and merged after the other steps of its instant, by
// node index. Callbacks (At, After, churn) are not in
// windows: a window ends before the next one, which runs alone.
//
// The order of that merge, and hence every sequence number, every random
// draw and every event, depends on the seed only, not on how the nodes were
// shared among the goroutines: any Workers of 2 or more gives the same run.

// minParallelNodes is the fewest nodes a window must step for it to be
// shared among goroutines; a smaller one is stepped by the run's goroutine.
const minParallelNodes = 16

// parallelChunk is how many nodes a goroutine takes at a time.
const parallelChunk = 4

// parallel is the windowed engine's state.
type parallel struct {
	win    []nodeWindow // per node
	active []int32      // nodes with events in the current window, by first event
	refs   []stepRef    // the window's steps, sorted for the merge
	end    int64        // new ticks due before end are stepped within the window
	next   atomic.Int64 // the next index of active to step
	jobs   chan struct{}
	wg     sync.WaitGroup // the window's helpers at work
	exit   sync.WaitGroup // the helper goroutines
	mu     sync.Mutex
	panics []any // what helpers' steps panicked with
	// shared counts the windows stepped on several goroutines.
	shared uint64
}

// nodeWindow is one node's share of a window.
type nodeWindow struct {
	events  []event // due within the window, in (at, seq) order
	steps   []winStep
	outs    []any // outputs of every step, steps[k].lo to steps[k].hi
	ran     uint64
	dropped int64
	last    int64 // time of the last event stepped
	// tickStep is the step after which the merge queues the node's tick,
	// set beyond the window by that step (-1: none).
	tickStep int32
}

// winStep is one step taken within a window: its time, its outputs, and for
// a delivery, the message and its sender.
type winStep struct {
	at     int64
	seq    uint64 // the sequence number of the event stepped; 0 for a tick set within the window
	lo, hi int32
	from   int32
	msg    any
}

// stepRef names a step for the merge, which takes the steps by (at, seq):
// in the order the sequential engine would, the steps of ticks set within
// the window (seq 0) after the others due at the same time, by node.
type stepRef struct {
	at   int64
	seq  uint64
	node int32
	k    int32
}

// runWindows is run for the windowed engine.
func (s *Sim) runWindows(limit int64, cond func() bool) bool {
	defer s.stopHelpers()
	for s.queue.Len() > 0 && s.queue.peek().at <= limit {
		if cond != nil && cond() {
			return true
		}
		head := s.queue.peek()
		if head.kind == eventFunc || s.lookahead <= 0 {
			ev := s.queue.pop()
			s.now = max(s.now, ev.at)
			s.dispatch(&ev)
			s.events++
			if s.events&1023 == 0 {
				s.prog.maybeUpdate()
			}
			continue
		}
		s.window(limit)
		s.prog.maybeUpdate()
	}
	if cond != nil && cond() {
		return true
	}
	if limit > s.now {
		s.now = limit
	}
	return false
}

// window steps the events due in [t, t+lookahead) — before the next
// callback and no later than limit — node by node on the helpers, then
// merges what the steps caused.
func (s *Sim) window(limit int64) {
	p := &s.par
	for len(p.win) < len(s.nodes) {
		p.win = append(p.win, nodeWindow{})
	}
	start := s.queue.peekNode().at // (a copy: popping moves what peek points to)
	end := start + s.lookahead
	if limit < end {
		end = limit + 1 // limit < end: no overflow
	}
	fn := s.queue.peekFunc()
	var fnAt int64
	var fnSeq uint64
	if fn != nil {
		fnAt, fnSeq = fn.at, fn.seq
		end = min(end, fnAt)
	}
	for {
		ev := s.queue.peekNode()
		if ev == nil || ev.at >= start+s.lookahead || ev.at > limit {
			break
		}
		if fn != nil && (ev.at > fnAt || (ev.at == fnAt && ev.seq > fnSeq)) {
			break
		}
		e := s.queue.popNode()
		w := &p.win[e.to]
		if len(w.events) == 0 {
			p.active = append(p.active, e.to)
			w.tickStep = -1
		}
		w.events = append(w.events, e)
	}
	p.end = end
	s.stepActive()
	s.merge()
}

// stepActive steps every active node's window, on the helpers when there
// are enough of them.
func (s *Sim) stepActive() {
	p := &s.par
	if len(p.active) < minParallelNodes {
		for _, i := range p.active {
			s.stepWindow(i)
		}
		return
	}
	helpers := s.cfg.Workers - 1
	if p.jobs == nil {
		p.jobs = make(chan struct{})
		p.exit.Add(helpers)
		for range helpers {
			go s.helper()
		}
	}
	p.shared++
	p.next.Store(0)
	p.wg.Add(helpers)
	for range helpers {
		p.jobs <- struct{}{}
	}
	s.stepShare()
	p.wg.Wait()
	if len(p.panics) > 0 {
		panic(p.panics[0])
	}
}

// helper is a helper goroutine: it steps nodes of each window it is given
// until the run ends.
func (s *Sim) helper() {
	defer s.par.exit.Done()
	for range s.par.jobs {
		func() {
			defer s.par.wg.Done()
			defer func() {
				if r := recover(); r != nil {
					s.par.mu.Lock()
					s.par.panics = append(s.par.panics, r)
					s.par.mu.Unlock()
				}
			}()
			s.stepShare()
		}()
	}
}

// stepShare steps active nodes, a few at a time, until none is left.
func (s *Sim) stepShare() {
	p := &s.par
	for {
		k := int(p.next.Add(parallelChunk)) - parallelChunk
		if k >= len(p.active) {
			return
		}
		for _, i := range p.active[k:min(k+parallelChunk, len(p.active))] {
			s.stepWindow(i)
		}
	}
}

// stopHelpers ends the helper goroutines, if any were started.
func (s *Sim) stopHelpers() {
	p := &s.par
	if p.jobs == nil {
		return
	}
	close(p.jobs)
	p.exit.Wait()
	p.jobs = nil
}

// stepWindow steps node i with its events of the window, in order, and
// with the ticks it sets within the window. It touches node i's state only.
func (s *Sim) stepWindow(i int32) {
	w := &s.par.win[i]
	for k := 0; k < len(w.events); k++ {
		ev := &w.events[k]
		w.ran++
		w.last = ev.at
		n := &s.nodes[i]
		switch ev.kind {
		case eventDeliver:
			if ev.gen != n.incarn || !n.alive || n.group != s.nodes[ev.from].group {
				w.dropped++
				continue
			}
			n.stats.MessagesReceived++
			n.stats.BytesReceived += int64(ev.size)
			from, msg, at, seq := ev.from, ev.msg, ev.at, ev.seq
			s.stepLocal(i, w, at, seq, overlay.Received{From: s.nodes[from].info, Msg: msg}, false, from, msg)
		case eventLinkDown:
			if n.alive && ev.gen == n.incarn {
				s.stepLocal(i, w, ev.at, ev.seq, ev.msg, false, -1, nil)
			}
		case eventTick:
			if !n.alive || !n.hasTick || ev.gen != n.tickGen {
				continue
			}
			n.hasTick = false
			s.stepLocal(i, w, ev.at, ev.seq, overlay.Tick{}, true, -1, nil)
		}
	}
}

// stepLocal steps node i's core at virtual time at within a window, keeps
// its outputs for the merge and sets its next tick.
func (s *Sim) stepLocal(i int32, w *nodeWindow, at int64, seq uint64, input any, isTick bool, from int32, msg any) {
	n := &s.nodes[i]
	n.core.Step(s.epoch.Add(time.Duration(at+n.skew)), input)
	lo := len(w.outs)
	w.outs = n.core.Drain(w.outs)
	beyond := s.tickLocal(i, w, at, isTick)
	if msg != nil || len(w.outs) > lo || beyond {
		if beyond {
			w.tickStep = int32(len(w.steps))
		}
		w.steps = append(w.steps, winStep{at: at, seq: seq, lo: int32(lo), hi: int32(len(w.outs)), from: from, msg: msg})
	}
}

// tickLocal is scheduleTick within a window: a tick due before the
// window's end joins the node's events of the window, in time order; a
// later one is left for the merge to queue, and tickLocal reports it.
func (s *Sim) tickLocal(i int32, w *nodeWindow, now int64, afterTick bool) (beyond bool) {
	n := &s.nodes[i]
	deadline, ok := n.core.NextDeadline()
	if !ok {
		if n.hasTick {
			n.hasTick = false
			n.tickGen++
		}
		return false
	}
	at := max(int64(deadline.Sub(s.epoch))-n.skew, now)
	if afterTick && at <= now {
		at = now + 1
	}
	if n.hasTick && n.tickAt == at {
		return false
	}
	n.tickGen++
	n.hasTick = true
	n.tickAt = at
	if at >= s.par.end {
		n.tickUnqueued = true
		return true
	}
	n.tickUnqueued = false
	ev := event{at: at, kind: eventTick, to: i, gen: n.tickGen}
	// After every event due at or before at: those were queued first.
	k := len(w.events)
	for k > 0 && w.events[k-1].at > at {
		k--
	}
	w.events = slices.Insert(w.events, k, ev)
	return false
}

// merge carries out, on the run's goroutine, what the window's steps
// caused, by (time, node, the node's order), then queues the ticks set
// beyond the window and clears the window.
func (s *Sim) merge() {
	p := &s.par
	refs := p.refs[:0]
	last := s.now
	for _, i := range p.active {
		w := &p.win[i]
		for k := range w.steps {
			refs = append(refs, stepRef{at: w.steps[k].at, seq: w.steps[k].seq, node: i, k: int32(k)})
		}
		s.events += w.ran
		s.dropped += w.dropped
		last = max(last, w.last)
	}
	slices.SortFunc(refs, func(a, b stepRef) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		if a.seq != b.seq {
			if a.seq == 0 || b.seq == 0 {
				return cmp.Compare(b.seq, a.seq) // the seq 0 one after
			}
			return cmp.Compare(a.seq, b.seq)
		}
		if c := cmp.Compare(a.node, b.node); c != 0 {
			return c
		}
		return cmp.Compare(a.k, b.k)
	})
	for _, r := range refs {
		w := &p.win[r.node]
		st := &w.steps[r.k]
		s.now = st.at
		if st.msg != nil {
			s.typeStats(st.msg).Received++
			if s.cfg.OnMessage != nil {
				s.cfg.OnMessage(s.Now(), int(st.from), int(r.node), st.msg)
			}
		}
		for _, out := range w.outs[st.lo:st.hi] {
			if !s.nodes[r.node].alive {
				break // a callback killed the node
			}
			s.handleOutput(r.node, out)
		}
		if n := &s.nodes[r.node]; r.k == w.tickStep && n.tickUnqueued {
			n.tickUnqueued = false
			if n.alive && n.hasTick {
				s.push(event{at: n.tickAt, kind: eventTick, to: r.node, gen: n.tickGen})
			}
		}
	}
	s.now = max(s.now, last)
	for _, i := range p.active {
		n := &s.nodes[i]
		if n.tickUnqueued {
			n.tickUnqueued = false
			if n.alive && n.hasTick {
				s.push(event{at: n.tickAt, kind: eventTick, to: i, gen: n.tickGen})
			}
		}
		w := &p.win[i]
		clear(w.events)
		clear(w.steps)
		clear(w.outs)
		*w = nodeWindow{events: keep(w.events), steps: keep(w.steps), outs: keep(w.outs)}
	}
	clear(refs)
	p.refs = refs[:0]
	p.active = p.active[:0]
}

// maxKeptWindow is the largest capacity of a node's window buffers kept for
// the next window: a node that once had thousands of events in a window (a
// join's contact) does not keep that much (10,000 nodes would keep
// hundreds of MiB).
const maxKeptWindow = 256

// keep returns list emptied, or nil if its capacity exceeds maxKeptWindow.
func keep[T any](list []T) []T {
	if cap(list) > maxKeptWindow {
		return nil
	}
	return list[:0]
}
