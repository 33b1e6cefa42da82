package kv

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/p2p-go/p2p/peer"
)

// Defaults of the Config fields left zero.
const (
	// DefaultAntiEntropyInterval is how often a replica reconciles with a
	// random neighbour. Broadcast delivers almost every write within a
	// second; anti-entropy only repairs what it lost, so five seconds keeps
	// the repair latency short while an in-sync round costs two small
	// messages per node every five seconds.
	DefaultAntiEntropyInterval = 5 * time.Second
	// DefaultTombstoneRetention is how long a delete is remembered. It must
	// exceed the longest partition or downtime after which a node should
	// still learn of deletes made meanwhile: a day covers a night-long
	// outage and a weekend-long one is handled by wiping the node.
	DefaultTombstoneRetention = 24 * time.Hour
	// DefaultMaxClockOffset is how far ahead of local physical time a
	// remote write's timestamp may be before the write is deferred. NTP
	// keeps clocks within milliseconds; a minute tolerates a badly set one.
	DefaultMaxClockOffset = time.Minute
)

// Config configures a Store. Zero fields take the documented defaults.
type Config struct {
	// Key is this node's key: its ID is recorded as the writer of its
	// writes, which it signs. Required. The core only signs and verifies
	// with it (pure computation).
	Key *peer.Key
	// Self is this node's ID; zero means Key.ID(), the only value allowed.
	Self peer.ID
	// Admins, when not empty, are the only nodes whose revocations
	// (records under RevokedPrefix) are applied; empty lets any member
	// revoke any other. Every node of a cluster must use the same set.
	Admins []peer.ID
	// Backend holds the records. Required. The store reads it, loading
	// it in New; the runtime writes it, carrying out the store's Persist
	// outputs. The store does not close it.
	Backend Backend
	// Seed seeds the choice of anti-entropy partners; zero derives a seed
	// from Self, so runs are repeatable and nodes choose differently.
	Seed uint64
	// AntiEntropyInterval is the period of anti-entropy rounds with a
	// random neighbour; it also paces tombstone purging. Default
	// DefaultAntiEntropyInterval.
	AntiEntropyInterval time.Duration
	// TombstoneRetention is how long tombstones are kept, measured from
	// the delete's timestamp. Default DefaultTombstoneRetention.
	TombstoneRetention time.Duration
	// MaxKeys bounds the number of live keys; writes creating more fail
	// with ErrTooManyKeys and such records from peers are refused. Up to
	// as many tombstones again are kept. Every node of a cluster must use
	// the same value. Default DefaultMaxKeys.
	MaxKeys int
	// MaxClockOffset is how far ahead of local physical time a remote
	// timestamp may be. A record further ahead is deferred, not applied:
	// anti-entropy offers it again and it is applied once local time has
	// caught up, so one node with a clock set in the future cannot drag
	// every clock forward. Default DefaultMaxClockOffset.
	MaxClockOffset time.Duration
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
}

// ErrConfig is wrapped by the errors of New for an invalid Config; the
// message names the field.
var ErrConfig = errors.New("kv: invalid config")

// withDefaults returns a copy of c with its zero fields filled, or an error
// wrapping ErrConfig that names the invalid field.
func (c Config) withDefaults() (Config, error) {
	if c.Key == nil {
		return c, fmt.Errorf("%w: Config.Key is required", ErrConfig)
	}
	switch {
	case c.Self.IsZero():
		c.Self = c.Key.ID()
	case c.Self != c.Key.ID():
		return c, fmt.Errorf("%w: Config.Self %s is not Config.Key's ID %s", ErrConfig, c.Self.Short(), c.Key.ID().Short())
	}
	if c.Backend == nil {
		return c, fmt.Errorf("%w: Config.Backend is required", ErrConfig)
	}
	for _, field := range []struct {
		name  string
		value *time.Duration
		def   time.Duration
	}{
		{"AntiEntropyInterval", &c.AntiEntropyInterval, DefaultAntiEntropyInterval},
		{"TombstoneRetention", &c.TombstoneRetention, DefaultTombstoneRetention},
		{"MaxClockOffset", &c.MaxClockOffset, DefaultMaxClockOffset},
	} {
		switch {
		case *field.value < 0:
			return c, fmt.Errorf("%w: Config.%s is negative (%v)", ErrConfig, field.name, *field.value)
		case *field.value == 0:
			*field.value = field.def
		}
	}
	switch {
	case c.MaxKeys < 0:
		return c, fmt.Errorf("%w: Config.MaxKeys is negative (%d)", ErrConfig, c.MaxKeys)
	case c.MaxKeys == 0:
		c.MaxKeys = DefaultMaxKeys
	}
	if c.Seed == 0 {
		for i := range 8 {
			c.Seed = c.Seed<<8 | uint64(c.Self[i])
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}
