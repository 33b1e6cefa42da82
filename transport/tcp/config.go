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
	// DefaultMaxPendingHandshakes bounds the inbound handshakes in progress at
	// once, so a flood of silent connections cannot exhaust memory.
	DefaultMaxPendingHandshakes = 256
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
	// Keyring, instead of Secret, holds several cluster secrets: its primary
	// key for outgoing handshakes, any of its keys accepted from peers (see
	// [Keyring]). Default: a keyring holding Secret alone (empty when Secret
	// is nil). Set Secret or Keyring, not both.
	Keyring *Keyring
	// MaxFrameSize is the largest application message, in bytes, that Send
	// accepts and Recv reads. Default wire.DefaultMaxFrameSize (1 MiB).
	MaxFrameSize int
	// HandshakeTimeout bounds each handshake. Default DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// MaxPendingHandshakes bounds the inbound handshakes in progress at once;
	// connections beyond it are closed at once and counted as refused.
	// Default DefaultMaxPendingHandshakes.
	MaxPendingHandshakes int
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
	if cfg.Keyring != nil && cfg.Secret != nil {
		return cfg, errors.New("tcp: set Config.Secret or Config.Keyring, not both")
	}
	if cfg.Keyring == nil {
		keyring, err := NewKeyring(cfg.Secret)
		if err != nil {
			return cfg, fmt.Errorf("tcp: Config.Secret: %w", err)
		}
		cfg.Keyring = keyring
	}
	if cfg.MaxFrameSize < 0 || cfg.MaxFrameSize > maxFrameSizeLimit {
		return cfg, fmt.Errorf("tcp: Config.MaxFrameSize %d out of range [0, %d]", cfg.MaxFrameSize, maxFrameSizeLimit)
	}
	if cfg.HandshakeTimeout < 0 {
		return cfg, fmt.Errorf("tcp: Config.HandshakeTimeout %v is negative", cfg.HandshakeTimeout)
	}
	if cfg.MaxPendingHandshakes < 0 {
		return cfg, fmt.Errorf("tcp: Config.MaxPendingHandshakes %d is negative", cfg.MaxPendingHandshakes)
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
	if cfg.MaxPendingHandshakes == 0 {
		cfg.MaxPendingHandshakes = DefaultMaxPendingHandshakes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}
