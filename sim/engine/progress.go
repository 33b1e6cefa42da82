package engine

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progressDelay is how long a run must take in real time before the
// progress line appears; progressEvery is how often it is rewritten.
const (
	progressDelay = 2 * time.Second
	progressEvery = time.Second
)

// progress writes the \r-updated status line of long runs.
type progress struct {
	sim        *Sim
	out        io.Writer
	start      time.Time
	last       time.Time
	lastEvents uint64
	width      int
	shown      bool
}

// init starts the progress clock.
func (p *progress) init(s *Sim) {
	p.sim = s
	p.out = s.cfg.Progress
	if p.out != nil {
		p.start = s.cfg.WallClock()
		p.last = p.start
	}
}

// maybeUpdate rewrites the line if the run is long enough and a second has
// passed since the last update.
func (p *progress) maybeUpdate() {
	if p.out == nil {
		return
	}
	now := p.sim.cfg.WallClock()
	if now.Sub(p.start) < progressDelay || now.Sub(p.last) < progressEvery {
		return
	}
	rate := float64(p.sim.events-p.lastEvents) / now.Sub(p.last).Seconds()
	p.last, p.lastEvents = now, p.sim.events
	line := fmt.Sprintf("virtual %-12s %8.0f events/s  %d live nodes",
		p.sim.Elapsed().Round(time.Millisecond), rate, p.sim.LiveCount())
	if p.sim.cfg.Status != nil {
		if status := p.sim.cfg.Status(); status != "" {
			line += "  " + status
		}
	}
	pad := max(p.width-len(line), 0)
	p.width = len(line)
	fmt.Fprintf(p.out, "\r%s%s", line, strings.Repeat(" ", pad))
	p.shown = true
}

// FinishProgress ends the progress line with a newline if one was written,
// so that what follows starts on a fresh line.
func (s *Sim) FinishProgress() {
	if s.prog.shown {
		fmt.Fprintln(s.prog.out)
		s.prog.shown = false
	}
}
