package engine

import (
	"fmt"
	"math"
	"time"
)

// Churn describes nodes crashing and joining at random: each is a Poisson
// process, so the times between events are exponentially distributed with the
// given mean rates.
type Churn struct {
	// KillRate is the mean number of nodes killed per second of virtual
	// time (0 = none). Victims are chosen uniformly among live nodes.
	KillRate float64
	// JoinRate is the mean number of nodes joined per second (0 = none).
	JoinRate float64
	// Join adds and starts one new node; required when JoinRate > 0.
	Join func() error
	// Protected reports nodes that churn never kills (optional).
	Protected func(node int) bool
	// MinLive stops kills while this many nodes or fewer are alive
	// (default 1).
	MinLive int
}

// ChurnHandle controls running churn.
type ChurnHandle struct {
	stopped bool
	err     error
	// Kills and Joins count the churn events so far.
	Kills, Joins int
}

// Stop ends the churn and returns the first error a Join returned.
func (h *ChurnHandle) Stop() error {
	h.stopped = true
	return h.err
}

// StartChurn starts churn now; it runs until the handle's Stop.
func (s *Sim) StartChurn(c Churn) (*ChurnHandle, error) {
	if c.KillRate < 0 || math.IsNaN(c.KillRate) {
		return nil, fmt.Errorf("sim: Churn.KillRate %v is negative", c.KillRate)
	}
	if c.JoinRate < 0 || math.IsNaN(c.JoinRate) {
		return nil, fmt.Errorf("sim: Churn.JoinRate %v is negative", c.JoinRate)
	}
	if c.JoinRate > 0 && c.Join == nil {
		return nil, fmt.Errorf("sim: Churn.Join is nil with JoinRate %v", c.JoinRate)
	}
	if c.MinLive <= 0 {
		c.MinLive = 1
	}
	h := &ChurnHandle{}
	if c.KillRate > 0 {
		var kill func()
		kill = func() {
			if h.stopped {
				return
			}
			if victim := s.churnVictim(c); victim >= 0 {
				s.Kill(victim)
				h.Kills++
			}
			s.After(s.exponential(c.KillRate), kill)
		}
		s.After(s.exponential(c.KillRate), kill)
	}
	if c.JoinRate > 0 {
		var join func()
		join = func() {
			if h.stopped {
				return
			}
			if err := c.Join(); err != nil {
				if h.err == nil {
					h.err = err
				}
			} else {
				h.Joins++
			}
			s.After(s.exponential(c.JoinRate), join)
		}
		s.After(s.exponential(c.JoinRate), join)
	}
	return h, nil
}

// churnVictim picks a live, unprotected node, or -1.
func (s *Sim) churnVictim(c Churn) int {
	if s.LiveCount() <= c.MinLive {
		return -1
	}
	for range 16 {
		victim := s.RandomLive()
		if c.Protected == nil || !c.Protected(victim) {
			return victim
		}
	}
	return -1
}

// exponential draws the time to the next event of a Poisson process with the
// given rate per second.
func (s *Sim) exponential(ratePerSecond float64) time.Duration {
	return time.Duration(s.random.ExpFloat64() / ratePerSecond * float64(time.Second))
}
