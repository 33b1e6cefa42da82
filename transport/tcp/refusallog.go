package tcp

import (
	"log/slog"
	"sync"
	"time"
)

// refusalLog writes the transport's refusal logs at a bounded rate, so that
// a flood of refused connections cannot fill the disk: the first refusal
// after a quiet interval is logged on its own line with its details; the
// ones that follow within the interval are counted and reported as one
// summary line per interval, with the count of each reason and the details
// of the last one.
type refusalLog struct {
	log      *slog.Logger
	interval time.Duration
	msg      string // the line's message, e.g. "handshake refused"

	mu sync.Mutex // guards the fields below
	// counts are the refusals not yet logged, by reason.
	counts [numReasons]uint64
	// unlogged is the sum of counts.
	unlogged uint64
	// lastRemote and lastErr describe the last refusal not yet logged.
	lastRemote string
	lastErr    error
	// nextLine is when the next line may be written.
	nextLine time.Time
	// timer flushes the summary at nextLine when refusals are waiting.
	timer  *time.Timer
	closed bool
	wg     sync.WaitGroup // a running flush of timer
}

func newRefusalLog(log *slog.Logger, interval time.Duration, msg string) *refusalLog {
	return &refusalLog{log: log, interval: interval, msg: msg}
}

// add records one refusal.
func (l *refusalLog) add(reason refuseReason, remote string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	now := time.Now()
	if l.unlogged == 0 && !now.Before(l.nextLine) {
		l.log.Warn(l.msg, "remote_addr", remote, "reason", reason.label(), "err", err)
		l.nextLine = now.Add(l.interval)
		return
	}
	l.counts[reason]++
	l.unlogged++
	l.lastRemote, l.lastErr = remote, err
	if !now.Before(l.nextLine) {
		l.flushLocked(now)
		return
	}
	if l.timer == nil {
		l.wg.Add(1)
		l.timer = time.AfterFunc(l.nextLine.Sub(now), func() {
			defer l.wg.Done()
			l.mu.Lock()
			defer l.mu.Unlock()
			l.timer = nil
			if !l.closed {
				l.flushLocked(time.Now())
			}
		})
	}
}

// flushLocked writes the summary line of the refusals not yet logged. The
// caller holds mu.
func (l *refusalLog) flushLocked(now time.Time) {
	if l.unlogged == 0 {
		return
	}
	attrs := make([]any, 0, 2*numReasons+8)
	attrs = append(attrs, "count", l.unlogged)
	for reason, n := range l.counts {
		if n > 0 {
			attrs = append(attrs, refuseReason(reason).label(), n)
		}
	}
	attrs = append(attrs, "last_remote_addr", l.lastRemote, "last_err", l.lastErr)
	l.log.Warn(l.msg+" (summary)", attrs...)
	l.counts = [numReasons]uint64{}
	l.unlogged = 0
	l.lastRemote, l.lastErr = "", nil
	l.nextLine = now.Add(l.interval)
}

// close writes the summary of what is not yet logged and stops the timer.
func (l *refusalLog) close() {
	l.mu.Lock()
	l.closed = true
	if l.timer != nil && l.timer.Stop() {
		l.timer = nil
		l.wg.Done()
	}
	l.flushLocked(time.Now())
	l.mu.Unlock()
	l.wg.Wait()
}
