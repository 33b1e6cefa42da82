package tcp

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/wire"
)

// Defaults applied to the zero fields of [Config].
const (
	// DefaultListenAddr is the address listened on when Config.ListenAddr is
	// empty: loopback only, so that a default node never reaches outside the
	// machine on its own.
	DefaultListenAddr = "127.0.0.1:6966"
	// DefaultHandshakeTimeout bounds a whole Noise handshake (three messages).
	// Five seconds is generous for a round trip across the internet and still
	// frees the resources of a silent or slow peer quickly.
	DefaultHandshakeTimeout = 5 * time.Second
	// DefaultFirstMessageTimeout bounds the wait for an inbound handshake's
	// first message (32 bytes, sent by the dialer right after connecting):
	// one round trip suffices, so a socket that stays silent for two seconds
	// is an idle socket holding a slot, and is closed.
	DefaultFirstMessageTimeout = 2 * time.Second
	// DefaultMaxPendingHandshakes bounds the inbound handshakes in progress at
	// once, so a flood of silent connections cannot exhaust memory.
	DefaultMaxPendingHandshakes = 256
	// DefaultMaxHandshakesPerAddr bounds the inbound handshakes in progress
	// from one source IP address: a flood from a few addresses takes a few
	// times 32 of the 256 slots. A handshake takes about a millisecond on a
	// LAN, so a legitimate address (even many nodes behind one NAT, or a
	// hundred nodes on one machine's loopback) rarely has more than a few at
	// once.
	DefaultMaxHandshakesPerAddr = 32
	// DefaultMemberHandshakeReserve is the number of the pending-handshake
	// slots kept for addresses that completed a handshake within the last
	// hour (members): a flood from many addresses fills the others but
	// cannot lock members out.
	DefaultMemberHandshakeReserve = 64
	// DefaultRefusalLogInterval is the interval of the refusal logs: the
	// first refusal after a quiet interval is logged on its own line, the
	// others as one summary line per interval with their counts by reason.
	DefaultRefusalLogInterval = 10 * time.Second
	// SecretLen is the length of the cluster pre-shared key.
	SecretLen = 32
	// maxFrameSizeLimit is the largest MaxFrameSize accepted: 1 GiB keeps the
	// 4-byte length prefix far from overflow.
	maxFrameSizeLimit = 1 << 30
)

// Config configures a [Transport]. Zero fields take the documented defaults.
type Config struct {
	// ListenAddr is the TCP address to listen on, host:port. A port of 0 lets
	// the kernel choose. Default DefaultListenAddr ("127.0.0.1:6966").
	ListenAddr string
	// AdvertiseAddr is the address peers should dial to reach this node; it is
	// sent, authenticated, in the handshake. Default: the actual listen
	// address (set it when listening on a wildcard address such as ":6966").
	AdvertiseAddr string
	// Key is the node's identity key; required. Peers learn the node's ID
	// from it during the handshake.
	Key *peer.Key
	// Secret is the cluster pre-shared key, exactly SecretLen (32) bytes, or
	// nil for an open network that admits anyone holding any key. A peer
	// without the same secret is refused during the handshake, before any
	// application data is read.
	Secret []byte
	// MaxFrameSize is the largest application message, in bytes, that Send
	// accepts and Recv reads. Default wire.DefaultMaxFrameSize (1 MiB).
	MaxFrameSize int
	// HandshakeTimeout bounds each handshake. Default DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// FirstMessageTimeout bounds the wait for the first message of an
	// inbound handshake; the whole handshake stays bounded by
	// HandshakeTimeout. Default DefaultFirstMessageTimeout.
	FirstMessageTimeout time.Duration
	// MaxPendingHandshakes bounds the inbound handshakes in progress at once;
	// connections beyond it are closed at once and counted as refused
	// (reason "overload"). Default DefaultMaxPendingHandshakes.
	MaxPendingHandshakes int
	// MaxHandshakesPerAddr bounds the inbound handshakes in progress from
	// one source IP address; connections beyond it are closed at once and
	// counted as refused (reason "per_address"). Default
	// DefaultMaxHandshakesPerAddr.
	MaxHandshakesPerAddr int
	// MemberHandshakeReserve is how many of the MaxPendingHandshakes slots
	// only addresses that completed a handshake within the last hour may
	// take. Default DefaultMemberHandshakeReserve, at most
	// MaxPendingHandshakes - 1.
	MemberHandshakeReserve int
	// RefusalLogInterval is the interval of the rate-limited refusal logs.
	// Default DefaultRefusalLogInterval.
	RefusalLogInterval time.Duration
	// Logger receives the transport's logs; nil discards them.
	Logger *slog.Logger
}

// withDefaults validates cfg and returns a copy with the defaults filled in.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Key == nil {
		return cfg, errors.New("tcp: Config.Key is required")
	}
	if cfg.Secret != nil && len(cfg.Secret) != SecretLen {
		return cfg, fmt.Errorf("tcp: Config.Secret is %d bytes, want %d (or nil for an open network)", len(cfg.Secret), SecretLen)
	}
	if cfg.MaxFrameSize < 0 || cfg.MaxFrameSize > maxFrameSizeLimit {
		return cfg, fmt.Errorf("tcp: Config.MaxFrameSize %d out of range [0, %d]", cfg.MaxFrameSize, maxFrameSizeLimit)
	}
	if cfg.HandshakeTimeout < 0 {
		return cfg, fmt.Errorf("tcp: Config.HandshakeTimeout %v is negative", cfg.HandshakeTimeout)
	}
	for _, field := range []struct {
		name  string
		value int64
	}{
		{"FirstMessageTimeout", int64(cfg.FirstMessageTimeout)},
		{"MaxPendingHandshakes", int64(cfg.MaxPendingHandshakes)},
		{"MaxHandshakesPerAddr", int64(cfg.MaxHandshakesPerAddr)},
		{"MemberHandshakeReserve", int64(cfg.MemberHandshakeReserve)},
		{"RefusalLogInterval", int64(cfg.RefusalLogInterval)},
	} {
		if field.value < 0 {
			return cfg, fmt.Errorf("tcp: Config.%s is negative", field.name)
		}
	}
	if len(cfg.AdvertiseAddr) > maxAddrLen {
		return cfg, fmt.Errorf("tcp: Config.AdvertiseAddr is %d bytes, limit %d", len(cfg.AdvertiseAddr), maxAddrLen)
	}
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = DefaultListenAddr
	}
	if cfg.MaxFrameSize == 0 {
		cfg.MaxFrameSize = wire.DefaultMaxFrameSize
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.FirstMessageTimeout == 0 {
		cfg.FirstMessageTimeout = DefaultFirstMessageTimeout
	}
	cfg.FirstMessageTimeout = min(cfg.FirstMessageTimeout, cfg.HandshakeTimeout)
	if cfg.MaxPendingHandshakes == 0 {
		cfg.MaxPendingHandshakes = DefaultMaxPendingHandshakes
	}
	if cfg.MaxHandshakesPerAddr == 0 {
		cfg.MaxHandshakesPerAddr = DefaultMaxHandshakesPerAddr
	}
	if cfg.MemberHandshakeReserve == 0 {
		cfg.MemberHandshakeReserve = DefaultMemberHandshakeReserve
	}
	cfg.MemberHandshakeReserve = min(cfg.MemberHandshakeReserve, cfg.MaxPendingHandshakes-1)
	if cfg.RefusalLogInterval == 0 {
		cfg.RefusalLogInterval = DefaultRefusalLogInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}
