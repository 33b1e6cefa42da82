package ratelog

import (
	"log/slog"
	"sync"
	"time"
)

// Warner writes one kind of warning at most once per interval. It is safe
// for concurrent use.
type Warner struct {
	logger   *slog.Logger
	now      func() time.Time
	interval time.Duration
	msg      string

	mu         sync.Mutex // guards the fields below
	nextLine   time.Time
	suppressed uint64
}

// New returns a Warner writing msg to logger at most once per interval, as
// told by now (time.Now, or a test's clock).
func New(logger *slog.Logger, now func() time.Time, interval time.Duration, msg string) *Warner {
	return &Warner{logger: logger, now: now, interval: interval, msg: msg}
}

// Warn logs the occurrence with attrs, or counts it when a line was written
// less than the interval ago; the next line carries that count as
// left_out_since_last_line.
func (w *Warner) Warn(attrs ...any) {
	w.mu.Lock()
	now := w.now()
	if now.Before(w.nextLine) {
		w.suppressed++
		w.mu.Unlock()
		return
	}
	suppressed := w.suppressed
	w.suppressed = 0
	w.nextLine = now.Add(w.interval)
	w.mu.Unlock()
	if suppressed > 0 {
		attrs = append(attrs, "left_out_since_last_line", suppressed)
	}
	w.logger.Warn(w.msg, attrs...)
}
