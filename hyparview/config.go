package hyparview

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/p2p-go/p2p/peer"
)

// Defaults from the paper (for N = 10,000: log10(N)+c active peers with c = 1,
// k = 6 times as many passive peers) and for the timers the paper leaves open.
const (
	// DefaultActiveViewSize is the paper's active view size (log10 N + 1 for N = 10,000).
	DefaultActiveViewSize = 5
	// DefaultPassiveViewSize is the paper's passive view size (6 × the active view).
	DefaultPassiveViewSize = 30
	// DefaultActiveRandomWalkLength is the paper's ARWL: the hops a FORWARDJOIN travels.
	DefaultActiveRandomWalkLength = 6
	// DefaultPassiveRandomWalkLength is the paper's PRWL: the TTL at which a
	// FORWARDJOIN also adds the joiner to the passive view.
	DefaultPassiveRandomWalkLength = 3
	// DefaultShuffleInterval is the period of the shuffle (the paper's
	// "cycle"); 10 s keeps the background traffic to about one small
	// message per node per 10 s while refreshing passive views within a
	// minute.
	DefaultShuffleInterval = 10 * time.Second
	// DefaultShuffleActive is the paper's ka: active peers carried by a SHUFFLE.
	DefaultShuffleActive = 3
	// DefaultShufflePassive is the paper's kp: passive peers carried by a SHUFFLE.
	DefaultShufflePassive = 4
	// DefaultNeighborRetry is how often a node whose active view is short
	// tries passive peers again, and how often a node with both views empty
	// sends JOIN to its contacts again.
	DefaultNeighborRetry = time.Second
	// DefaultKeepaliveInterval is the period of the keepalive round: an
	// active peer heard from less than this long ago is not pinged.
	DefaultKeepaliveInterval = time.Second
	// DefaultFailureTimeout is how long an active peer may stay silent
	// before it is declared failed; pings go out every one to two keepalive
	// intervals on idle links, so 4 s leaves room for a lost ping.
	DefaultFailureTimeout = 4 * time.Second
)

// MaxAddrLen is the longest peer address accepted from the network, in bytes.
const MaxAddrLen = 256

// maxWalkLength bounds the random-walk lengths a Config may ask for, and so
// the TTLs accepted from peers.
const maxWalkLength = 64

// ErrConfig is wrapped by every error New returns for an invalid Config.
var ErrConfig = errors.New("hyparview: invalid config")

// Config configures a HyParView core. Zero fields take the documented
// defaults; every node of an overlay should use the same sizes and walk
// lengths, because a node refuses messages longer than its own configuration
// allows.
type Config struct {
	// Self is this node's ID and the address its peers dial. Required.
	Self peer.Info
	// ActiveViewSize is the number of symmetric neighbours kept (default 5).
	ActiveViewSize int
	// PassiveViewSize is the number of backup peers kept (default 30).
	PassiveViewSize int
	// ActiveRandomWalkLength (ARWL) is the TTL a contact gives a
	// FORWARDJOIN (default 6).
	ActiveRandomWalkLength int
	// PassiveRandomWalkLength (PRWL) is the TTL at which a FORWARDJOIN
	// adds the joiner to the passive view (default 3); at most ARWL.
	PassiveRandomWalkLength int
	// ShuffleInterval is the period of the passive view shuffle (default 10 s).
	ShuffleInterval time.Duration
	// ShuffleActive (ka) is how many active peers a SHUFFLE carries (default 3).
	ShuffleActive int
	// ShufflePassive (kp) is how many passive peers a SHUFFLE carries (default 4).
	ShufflePassive int
	// ShuffleTTL is the length of the shuffle's random walk (default ARWL).
	ShuffleTTL int
	// NeighborRetry is how often a short active view is refilled from the
	// passive view, and how often an isolated node (both views empty)
	// sends JOIN to its contacts again (default 1 s).
	NeighborRetry time.Duration
	// KeepaliveInterval is the period of the keepalive round (default 1 s).
	KeepaliveInterval time.Duration
	// FailureTimeout is how long an active peer may stay silent before it
	// is dropped (default 4 s); it must exceed two keepalive intervals. It
	// is also how long a NEIGHBOR request waits for its reply.
	FailureTimeout time.Duration
	// Seed seeds the core's random choices, mixed with Self.ID so that
	// nodes sharing a seed still choose differently. Equal seeds and equal
	// inputs give identical runs.
	Seed uint64
	// Logger receives debug logs of refused messages and view changes; nil
	// discards them.
	Logger *slog.Logger
}

// withDefaults returns cfg with zero fields replaced by the defaults, or an
// error naming the first invalid field.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Self.ID.IsZero() {
		return cfg, fmt.Errorf("%w: Config.Self.ID is the zero ID", ErrConfig)
	}
	if cfg.Self.Addr == "" || len(cfg.Self.Addr) > MaxAddrLen {
		return cfg, fmt.Errorf("%w: Config.Self.Addr %q must be 1 to %d bytes", ErrConfig, cfg.Self.Addr, MaxAddrLen)
	}
	ints := []struct {
		name  string
		value *int
		def   int
		max   int
	}{
		{"ActiveViewSize", &cfg.ActiveViewSize, DefaultActiveViewSize, 1024},
		{"PassiveViewSize", &cfg.PassiveViewSize, DefaultPassiveViewSize, 4096},
		{"ActiveRandomWalkLength", &cfg.ActiveRandomWalkLength, DefaultActiveRandomWalkLength, maxWalkLength},
		{"PassiveRandomWalkLength", &cfg.PassiveRandomWalkLength, DefaultPassiveRandomWalkLength, maxWalkLength},
		{"ShuffleActive", &cfg.ShuffleActive, DefaultShuffleActive, 1024},
		{"ShufflePassive", &cfg.ShufflePassive, DefaultShufflePassive, 4096},
		{"ShuffleTTL", &cfg.ShuffleTTL, 0, maxWalkLength},
	}
	for _, field := range ints {
		if *field.value < 0 || *field.value > field.max {
			return cfg, fmt.Errorf("%w: Config.%s is %d, must be 0 (default) to %d", ErrConfig, field.name, *field.value, field.max)
		}
		if *field.value == 0 {
			*field.value = field.def
		}
	}
	if cfg.ShuffleTTL == 0 {
		cfg.ShuffleTTL = cfg.ActiveRandomWalkLength
	}
	if cfg.PassiveRandomWalkLength > cfg.ActiveRandomWalkLength {
		return cfg, fmt.Errorf("%w: Config.PassiveRandomWalkLength %d exceeds ActiveRandomWalkLength %d",
			ErrConfig, cfg.PassiveRandomWalkLength, cfg.ActiveRandomWalkLength)
	}
	durations := []struct {
		name  string
		value *time.Duration
		def   time.Duration
	}{
		{"ShuffleInterval", &cfg.ShuffleInterval, DefaultShuffleInterval},
		{"NeighborRetry", &cfg.NeighborRetry, DefaultNeighborRetry},
		{"KeepaliveInterval", &cfg.KeepaliveInterval, DefaultKeepaliveInterval},
		{"FailureTimeout", &cfg.FailureTimeout, DefaultFailureTimeout},
	}
	for _, field := range durations {
		if *field.value < 0 {
			return cfg, fmt.Errorf("%w: Config.%s is %v, must not be negative", ErrConfig, field.name, *field.value)
		}
		if *field.value == 0 {
			*field.value = field.def
		}
	}
	if cfg.FailureTimeout <= 2*cfg.KeepaliveInterval {
		return cfg, fmt.Errorf("%w: Config.FailureTimeout %v must exceed two KeepaliveIntervals (%v)",
			ErrConfig, cfg.FailureTimeout, 2*cfg.KeepaliveInterval)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}
