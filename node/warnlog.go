package node

import (
	"log/slog"
	"sync"
	"time"
)

// warnInterval is the interval of the runtime's rate-limited warnings.
const warnInterval = 10 * time.Second

// rateLimitedWarn writes one kind of warning at most once per warnInterval,
// with the number of occurrences it left out since the last line: a peer
// that makes this node drop or refuse messages by the thousand must not
// fill the disk through its logs.
type rateLimitedWarn struct {
	logger *slog.Logger
	clock  Clock
	msg    string

	mu         sync.Mutex // guards the fields below
	nextLine   time.Time
	suppressed uint64
}

func newRateLimitedWarn(logger *slog.Logger, clock Clock, msg string) *rateLimitedWarn {
	return &rateLimitedWarn{logger: logger, clock: clock, msg: msg}
}

// warn logs the occurrence with attrs, or counts it when a line was written
// less than warnInterval ago.
func (w *rateLimitedWarn) warn(attrs ...any) {
	w.mu.Lock()
	now := w.clock.Now()
	if now.Before(w.nextLine) {
		w.suppressed++
		w.mu.Unlock()
		return
	}
	suppressed := w.suppressed
	w.suppressed = 0
	w.nextLine = now.Add(warnInterval)
	w.mu.Unlock()
	if suppressed > 0 {
		attrs = append(attrs, "left_out_since_last_line", suppressed)
	}
	w.logger.Warn(w.msg, attrs...)
}
