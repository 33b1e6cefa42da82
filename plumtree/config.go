package plumtree

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/p2p-go/p2p/peer"
)

// Default values used for the zero fields of [Config].
const (
	// DefaultIHaveTimeout is timer 1. The paper sets no value: it should
	// exceed the time the eager tree normally needs to bring a payload once
	// its announcement has arrived, or every announcement triggers a useless
	// GRAFT. A lazy announcement travels one hop after the payload reached
	// the announcer (plus the batching delay), while the tree may take a few
	// more hops than the shortest path; at ~10–20 ms per hop inside a data
	// centre, 100 ms allows the tree five or more extra hops before the lazy
	// path is used, and bounds the recovery latency of a lost payload to
	// about that plus one round trip.
	DefaultIHaveTimeout = 100 * time.Millisecond
	// DefaultGraftTimeout is timer 2, the wait for the payload after a
	// GRAFT before the next announcer is grafted: about one round trip.
	DefaultGraftTimeout = 50 * time.Millisecond
	// DefaultSeenCacheSize bounds the IDs remembered to detect duplicates.
	DefaultSeenCacheSize = 65536
	// DefaultSeenTTL is how long a seen ID is remembered: far longer than a
	// broadcast takes to cross the overlay, so duplicates are still caught.
	DefaultSeenTTL = 5 * time.Minute
	// DefaultPayloadCacheSize bounds the payloads kept to answer GRAFTs
	// and to hand to a new neighbour that missed them (the recovery
	// window, see the package doc): 1,024 messages cover a minute at 17
	// messages per second, more than three times the rate at which the
	// loopback figures of BENCHMARKS.md are taken.
	DefaultPayloadCacheSize = 1024
	// DefaultPayloadCacheBytes bounds the bytes of those payloads: 16 MiB
	// hold a minute of 256-byte messages at the rate above many times over,
	// or 16 payloads of the largest size the Broadcaster accepts.
	DefaultPayloadCacheBytes = 16 << 20
	// DefaultPayloadTTL is how long a payload is kept, and so the longest
	// a node can be cut off and still recover every message sent
	// meanwhile. After a mass failure HyParView and the member list repair
	// the overlay within seconds (BENCHMARKS.md: 0.1 to 9.4 s, islands
	// included); a minute covers a repair of tens of seconds.
	DefaultPayloadTTL = time.Minute
	// DefaultLazyBatchInterval is how long announcements to one peer are
	// gathered before they leave in one IHAVE message.
	DefaultLazyBatchInterval = 10 * time.Millisecond
	// DefaultMaxLazyBatchInterval is how long the gathering may grow to
	// while the tree carries a steady flow without trouble (see
	// [Config.MaxLazyBatchInterval]).
	DefaultMaxLazyBatchInterval = 80 * time.Millisecond
	// DefaultMaxPayload is the largest payload accepted: 64 KiB.
	DefaultMaxPayload = 64 << 10
	// DefaultMaxClockSkew is how far apart the clocks of two nodes may be
	// (NTP keeps them within milliseconds; 30 s tolerates a badly kept
	// one). A GOSSIP sent more than this in the receiver's future is
	// refused, and one older than SeenTTL minus this is refused as a
	// possible replay (see [Config.MaxClockSkew]).
	DefaultMaxClockSkew = 30 * time.Second
	// DefaultMaxMissing bounds the announced-but-missing messages tracked
	// at once (each with its timer and its announcers).
	DefaultMaxMissing = 4096
)

// Protocol limits that are not configurable.
const (
	// MaxIDsPerMessage is the largest number of IDs one IHAVE or GRAFT may
	// carry; larger ones are refused, and batches are split to fit.
	MaxIDsPerMessage = 1024
	// MaxAnnouncers is the largest number of announcers remembered for one
	// missing message.
	MaxAnnouncers = 16
	// MaxGraftAttempts is the largest number of GRAFTs sent for one missing
	// message before the core gives up on it.
	MaxGraftAttempts = 8
	// MaxAddrLen is the longest origin address accepted in a GOSSIP.
	MaxAddrLen = 256
	// MaxHops is the largest hop count (round) a node accepts as is: a
	// larger one, in a GOSSIP or an IHAVE, is clamped to it and counted in
	// [Stats].HopsClamped. Trees over HyParView are about 30 hops deep at
	// 10,000 nodes (BENCHMARKS.md); 255 is far beyond any honest path, and
	// keeps a peer's claim from inflating hop statistics.
	MaxHops = 255
	// PayloadOverhead is what one cached payload is counted for in
	// [Config.PayloadCacheBytes] beyond its length: its ID, origin and
	// bookkeeping.
	PayloadOverhead = 128
)

// Config configures a [Core]. Zero fields take the documented defaults.
type Config struct {
	// Self is this node's identity; Self.ID is required. Self is the
	// origin written in the GOSSIP messages of this node's broadcasts, so
	// that receivers can reply to the original sender directly.
	Self peer.Info
	// IHaveTimeout is timer 1: how long to wait for a payload after its
	// first announcement before grafting an announcer. Default
	// [DefaultIHaveTimeout].
	IHaveTimeout time.Duration
	// GraftTimeout is timer 2: how long to wait after a GRAFT before
	// grafting the next announcer. Default [DefaultGraftTimeout], or
	// IHaveTimeout when that is shorter; it must not exceed IHaveTimeout.
	GraftTimeout time.Duration
	// SeenCacheSize bounds the message IDs remembered to drop duplicates.
	// Default [DefaultSeenCacheSize].
	SeenCacheSize int
	// SeenTTL is how long a message ID is remembered. Default
	// [DefaultSeenTTL].
	SeenTTL time.Duration
	// MaxClockSkew bounds the difference between the origin's clock and
	// this node's. A GOSSIP whose send time is more than MaxClockSkew
	// ahead of this node's clock, or more than SeenTTL − MaxClockSkew
	// behind it, is refused and counted (Stats.RefusedFuture,
	// Stats.RefusedStale): the seen cache remembers an ID for SeenTTL
	// after it arrived, so a message accepted within these bounds is always
	// recognised when replayed, and one replayed later is refused by its
	// age. Default [DefaultMaxClockSkew], or a quarter of SeenTTL when that
	// is shorter; it must be shorter than SeenTTL.
	MaxClockSkew time.Duration
	// PayloadCacheSize bounds the payloads kept to answer GRAFTs and to
	// recover the messages a new neighbour missed. Default
	// [DefaultPayloadCacheSize]; at most SeenCacheSize.
	PayloadCacheSize int
	// PayloadCacheBytes bounds the bytes of the payloads kept (payload
	// length plus [PayloadOverhead] each). Default
	// [DefaultPayloadCacheBytes].
	PayloadCacheBytes int
	// Expendable, when set, names the payloads that give up their place
	// first: when the payload cache is full (PayloadCacheSize or
	// PayloadCacheBytes), the oldest expendable payload is dropped before
	// any other, so that a burst of them costs the others one place at most
	// in the recovery window (package doc, Recovery). The Broadcaster names its
	// membership events so, since a mass failure makes the survivors
	// announce hundreds of deaths within seconds, and its member-list
	// exchanges repair what a node missed of them. Expendable payloads still
	// answer GRAFTs and are listed in summaries while kept. Nil: every
	// payload is dropped in arrival order. It must not keep or modify
	// payload.
	Expendable func(payload []byte) bool
	// PayloadTTL is how long a payload is kept: the recovery window.
	// Default [DefaultPayloadTTL], or half of SeenTTL when that is
	// shorter; it must not exceed SeenTTL − MaxClockSkew, so that a
	// recovered message is always one the seen cache would still recognise.
	PayloadTTL time.Duration
	// LazyBatchInterval is how long IHAVE announcements are gathered per
	// peer before being flushed in one message. Default
	// [DefaultLazyBatchInterval].
	LazyBatchInterval time.Duration
	// MaxLazyBatchInterval is how far the batching interval may grow. While
	// announcements of more than one message are gathered per interval (a
	// steady flow) and nothing suggests a payload went missing, each flush
	// doubles the interval, up to this: in a stable tree the announcements
	// recover nothing, and every IHAVE is a message to send, receive and
	// step. A GRAFT sent or received, an announcement of a message not yet
	// received, or a neighbour coming or going brings it back to
	// LazyBatchInterval at once (and the announcements already gathered
	// leave by then). Default [DefaultMaxLazyBatchInterval], or
	// LazyBatchInterval when that is longer; equal to LazyBatchInterval, the
	// interval never grows. It must not be shorter than LazyBatchInterval.
	MaxLazyBatchInterval time.Duration
	// OptimizationThreshold enables the paper's optimisation when positive:
	// a lazy link whose announcement arrives with a hop count at least this
	// many hops smaller than that of the payload received is swapped for
	// the eager link the payload came through. Zero (the default) disables
	// it; negative values are refused.
	OptimizationThreshold int
	// RootedTree, when true, makes the eager links one spanning tree rooted
	// at the neighbour graph's smallest ID and built by hop distance to it
	// (see [Tree]) instead of the paper's prune-on-duplicate: the tree stays
	// whole and shallow when broadcasts from different origins overlap.
	// Every neighbour must run with the same setting.
	RootedTree bool
	// RelayToRoot, with RootedTree, makes a node that broadcasts also send
	// the payload straight to the tree's root (a [RelayToRoot] output, which
	// the host carries over a direct connection), which pushes it down the
	// tree: the last node is then at most one hop more than the root's
	// eccentricity away, instead of up to the tree's diameter, for about one
	// extra payload per broadcast (package doc, The rooted tree).
	RelayToRoot bool
	// AnnounceToEager, when true, sends announcements to eager neighbours
	// too (other than the one the payload came from), so that a payload
	// lost on a link that stays up is recovered even by a node whose
	// neighbours all push to it eagerly. The paper assumes reliable links
	// (TCP), where a payload is only lost with its link, which the
	// membership overlay reports; enable this over lossy transports. It
	// costs about one announcement (~20 bytes) per node per message.
	AnnounceToEager bool
	// MaxPayload is the largest payload, in bytes, that is broadcast or
	// accepted. Default [DefaultMaxPayload].
	MaxPayload int
	// MaxMissing bounds the missing messages tracked at once. Default
	// [DefaultMaxMissing].
	MaxMissing int
	// SigningKey, when set, makes this node sign its broadcasts: each
	// GOSSIP it originates carries its public key and its signature of the
	// origin (ID and address), message ID, send time and payload (96 bytes
	// more per message). Its ID must be Self.ID.
	SigningKey *peer.Key
	// RequireSignatures, when true, makes this node refuse every GOSSIP
	// that does not carry a valid signature of its origin, before
	// delivering or relaying it (counted in Stats.RefusedSignature): no
	// relay can then forge a message's origin, payload or send time. Every
	// node of a network must agree: a node that requires signatures refuses
	// the broadcasts of nodes that do not sign. Off by default: verifying
	// costs an ed25519 verification per message received (see
	// BENCHMARKS.md).
	RequireSignatures bool
	// Seed seeds the generator of random message IDs; the IDs also mix in
	// Self.ID and the time of the broadcast, so a restarted node does not
	// repeat its old IDs. Zero is a valid seed.
	Seed uint64
	// Logger receives debug logs about refused messages; nil discards.
	Logger *slog.Logger
}

// ErrConfig is wrapped by the errors of [New] for a bad [Config]; the
// message names the field.
var ErrConfig = errors.New("plumtree: invalid config")

// withDefaults returns a copy of cfg with zero fields replaced by defaults,
// or an error wrapping ErrConfig that names the first invalid field.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Self.ID.IsZero() {
		return cfg, fmt.Errorf("%w: Self.ID is required", ErrConfig)
	}
	if len(cfg.Self.Addr) > MaxAddrLen {
		return cfg, fmt.Errorf("%w: Self.Addr is %d bytes, limit %d", ErrConfig, len(cfg.Self.Addr), MaxAddrLen)
	}
	if cfg.SigningKey != nil && cfg.SigningKey.ID() != cfg.Self.ID {
		return cfg, fmt.Errorf("%w: SigningKey is not the key of Self.ID", ErrConfig)
	}
	if cfg.GraftTimeout == 0 && cfg.IHaveTimeout > 0 {
		cfg.GraftTimeout = min(DefaultGraftTimeout, cfg.IHaveTimeout)
	}
	if cfg.PayloadTTL == 0 && cfg.SeenTTL > 0 {
		cfg.PayloadTTL = min(DefaultPayloadTTL, cfg.SeenTTL/2)
	}
	if cfg.MaxClockSkew == 0 && cfg.SeenTTL > 0 {
		cfg.MaxClockSkew = min(DefaultMaxClockSkew, cfg.SeenTTL/4)
	}
	durations := []struct {
		name  string
		value *time.Duration
		def   time.Duration
	}{
		{"IHaveTimeout", &cfg.IHaveTimeout, DefaultIHaveTimeout},
		{"GraftTimeout", &cfg.GraftTimeout, DefaultGraftTimeout},
		{"SeenTTL", &cfg.SeenTTL, DefaultSeenTTL},
		{"PayloadTTL", &cfg.PayloadTTL, DefaultPayloadTTL},
		{"MaxClockSkew", &cfg.MaxClockSkew, DefaultMaxClockSkew},
		{"LazyBatchInterval", &cfg.LazyBatchInterval, DefaultLazyBatchInterval},
		{"MaxLazyBatchInterval", &cfg.MaxLazyBatchInterval, max(DefaultMaxLazyBatchInterval, cfg.LazyBatchInterval)},
	}
	for _, d := range durations {
		if *d.value < 0 {
			return cfg, fmt.Errorf("%w: %s is negative (%v)", ErrConfig, d.name, *d.value)
		}
		if *d.value == 0 {
			*d.value = d.def
		}
	}
	sizes := []struct {
		name  string
		value *int
		def   int
	}{
		{"SeenCacheSize", &cfg.SeenCacheSize, DefaultSeenCacheSize},
		{"PayloadCacheSize", &cfg.PayloadCacheSize, DefaultPayloadCacheSize},
		{"PayloadCacheBytes", &cfg.PayloadCacheBytes, DefaultPayloadCacheBytes},
		{"MaxPayload", &cfg.MaxPayload, DefaultMaxPayload},
		{"MaxMissing", &cfg.MaxMissing, DefaultMaxMissing},
	}
	for _, s := range sizes {
		if *s.value < 0 {
			return cfg, fmt.Errorf("%w: %s is negative (%d)", ErrConfig, s.name, *s.value)
		}
		if *s.value == 0 {
			*s.value = s.def
		}
	}
	if cfg.OptimizationThreshold < 0 {
		return cfg, fmt.Errorf("%w: OptimizationThreshold is negative (%d)", ErrConfig, cfg.OptimizationThreshold)
	}
	if cfg.MaxClockSkew >= cfg.SeenTTL {
		return cfg, fmt.Errorf("%w: MaxClockSkew (%v) is not shorter than SeenTTL (%v)", ErrConfig, cfg.MaxClockSkew, cfg.SeenTTL)
	}
	if cfg.PayloadTTL > cfg.SeenTTL-cfg.MaxClockSkew {
		return cfg, fmt.Errorf("%w: PayloadTTL (%v) exceeds SeenTTL (%v) minus MaxClockSkew (%v)", ErrConfig, cfg.PayloadTTL, cfg.SeenTTL, cfg.MaxClockSkew)
	}
	if cfg.PayloadCacheSize > cfg.SeenCacheSize {
		return cfg, fmt.Errorf("%w: PayloadCacheSize (%d) exceeds SeenCacheSize (%d)", ErrConfig, cfg.PayloadCacheSize, cfg.SeenCacheSize)
	}
	if cfg.MaxLazyBatchInterval < cfg.LazyBatchInterval {
		return cfg, fmt.Errorf("%w: MaxLazyBatchInterval (%v) is shorter than LazyBatchInterval (%v)", ErrConfig, cfg.MaxLazyBatchInterval, cfg.LazyBatchInterval)
	}
	if cfg.GraftTimeout > cfg.IHaveTimeout {
		return cfg, fmt.Errorf("%w: GraftTimeout (%v) exceeds IHaveTimeout (%v)", ErrConfig, cfg.GraftTimeout, cfg.IHaveTimeout)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}
