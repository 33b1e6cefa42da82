package kv

import (
	"fmt"
	"math"
	"time"
)

// HLC is a hybrid logical clock timestamp (Kulkarni et al. 2014): Wall is the
// largest physical time, in Unix nanoseconds, that the issuing node had heard
// of, and Logical counts events that happened while Wall did not move. HLC
// timestamps order events consistently with causality and stay within the
// clock offset of physical time.
type HLC struct {
	_       struct{} `cbor:",toarray"`
	Wall    int64
	Logical uint32
}

// Compare orders timestamps by Wall, then Logical; it returns -1, 0 or +1.
func (h HLC) Compare(other HLC) int {
	switch {
	case h.Wall < other.Wall:
		return -1
	case h.Wall > other.Wall:
		return 1
	case h.Logical < other.Logical:
		return -1
	case h.Logical > other.Logical:
		return 1
	}
	return 0
}

// IsZero reports whether h is the zero timestamp (no event).
func (h HLC) IsZero() bool { return h.Wall == 0 && h.Logical == 0 }

// Time returns the physical part of h as a time.Time.
func (h HLC) Time() time.Time { return time.Unix(0, h.Wall).UTC() }

// String returns "wall.logical" with the wall time in RFC 3339 form.
func (h HLC) String() string {
	return fmt.Sprintf("%s.%d", h.Time().Format(time.RFC3339Nano), h.Logical)
}

// Clock issues HLC timestamps. It never reads the system clock: the caller
// passes the physical time to every call, so a core driven by virtual time
// issues repeatable timestamps. The zero Clock is ready to use. A Clock is
// not safe for concurrent use; the store's core owns one.
type Clock struct {
	last HLC
}

// Last returns the latest timestamp the clock issued or witnessed.
func (c *Clock) Last() HLC { return c.last }

// Now returns a timestamp for a local event (a write) at the given physical
// time: the paper's send/local rule. It is greater than every timestamp the
// clock issued or witnessed before.
func (c *Clock) Now(physical time.Time) HLC {
	previous := c.last
	wall := max(previous.Wall, physical.UnixNano())
	if wall == previous.Wall {
		c.last = bump(previous)
	} else {
		c.last = HLC{Wall: wall}
	}
	return c.last
}

// Update witnesses a remote timestamp at the given physical time (the
// paper's receive rule) and returns the new clock value, which is greater
// than both the clock's previous value and remote.
func (c *Clock) Update(physical time.Time, remote HLC) HLC {
	previous := c.last
	wall := max(previous.Wall, remote.Wall, physical.UnixNano())
	switch {
	case wall == previous.Wall && wall == remote.Wall:
		c.last = bump(HLC{Wall: wall, Logical: max(previous.Logical, remote.Logical)})
	case wall == previous.Wall:
		c.last = bump(previous)
	case wall == remote.Wall:
		c.last = bump(remote)
	default:
		c.last = HLC{Wall: wall}
	}
	return c.last
}

// Observe raises the clock to at least remote without issuing an event. A
// store calls it for every record it loads at start-up, so that its next
// write is ordered after everything it persisted even if the physical clock
// went backwards across the restart.
func (c *Clock) Observe(remote HLC) {
	if remote.Compare(c.last) > 0 {
		c.last = HLC{Wall: remote.Wall, Logical: remote.Logical}
	}
}

// bump returns the successor of h. When the logical counter would overflow
// (four billion events within one nanosecond of wall time, which only a
// clock far ahead of physical time can reach) the wall part moves one
// nanosecond forward instead, keeping timestamps strictly increasing.
func bump(h HLC) HLC {
	if h.Logical == math.MaxUint32 {
		return HLC{Wall: h.Wall + 1}
	}
	return HLC{Wall: h.Wall, Logical: h.Logical + 1}
}
