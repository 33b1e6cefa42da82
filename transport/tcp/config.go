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
	// DefaultMaxConns bounds the open connections, inbound and outbound. A
	// node of the Broadcaster keeps 5 links and probes a few members; a
	// Kademlia node about one connection per recent request. 256, plus 256
	// handshakes in progress, keeps a node under the common default limit of
	// 1,024 open files with room for its store and API.
	DefaultMaxConns = 256
	// DefaultMaxConnsPerPeer bounds the open connections to one peer ID:
	// two when both sides dial at once, a few more while old ones close.
	DefaultMaxConnsPerPeer = 4
	// DefaultMaxBufferedBytes bounds, over all connections, the bytes held
	// for messages still arriving beyond their first 64 KiB chunk: 16
	// messages of 1 MiB at once. Each connection may always hold the first
	// chunk of a message, so small messages never wait for big ones.
	DefaultMaxBufferedBytes = 16 << 20
	// DefaultFrameTimeout bounds the arrival of a message whose length has
	// arrived: a megabyte in 20 s is 50 KB/s, slower than any link a node
	// should use, and a peer that dribbles a frame cannot hold its buffer
	// for longer.
	DefaultFrameTimeout = 20 * time.Second
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
	// FirstMessageTimeout bounds the wait for the first message of an
	// inbound handshake; the whole handshake stays bounded by
	// HandshakeTimeout. Default DefaultFirstMessageTimeout.
	FirstMessageTimeout time.Duration
	// MaxPendingHandshakes bounds the inbound handshakes in progress at once
	// (past message 1); connections beyond it are closed after their
	// message 1 and counted as refused (reason "overload"). Four times as
	// many connections may wait for their message 1; beyond that, each new
	// one closes the oldest waiting (also "overload"). Default
	// DefaultMaxPendingHandshakes.
	MaxPendingHandshakes int
	// MaxHandshakesPerAddr bounds the inbound handshakes in progress (past
	// message 1) from one source IP address; connections beyond it are
	// closed after their message 1 and counted as refused (reason
	// "per_address"). Default
	// DefaultMaxHandshakesPerAddr.
	MaxHandshakesPerAddr int
	// MemberHandshakeReserve is how many of the MaxPendingHandshakes slots
	// only addresses that completed a handshake within the last hour may
	// take. Default DefaultMemberHandshakeReserve, at most
	// MaxPendingHandshakes - 1.
	MemberHandshakeReserve int
	// MaxConns bounds the open connections, inbound and outbound; beyond it
	// inbound connections are closed before their handshake and Dial fails
	// with ErrConnLimit, counted in Stats.ConnsOverLimit. Default
	// DefaultMaxConns.
	MaxConns int
	// MaxConnsPerPeer bounds the open connections to one peer ID; a
	// connection beyond it is closed once the handshake has identified the
	// peer (Dial fails with ErrConnLimit), counted in
	// Stats.ConnsOverPeerLimit. Default DefaultMaxConnsPerPeer.
	MaxConnsPerPeer int
	// MaxBufferedBytes bounds the bytes buffered, over all connections, for
	// messages still arriving beyond their first chunk (64 KiB); a message
	// that would exceed it waits, unread (TCP pushes back on its sender),
	// until others release enough, and its connection is closed when its
	// FrameTimeout passes first, counted in Stats.ConnsOverBufferLimit. Per
	// connection, at most one message of MaxFrameSize is buffered. Default
	// DefaultMaxBufferedBytes.
	MaxBufferedBytes int
	// FrameTimeout bounds the arrival of a message once its length has
	// arrived; a connection over it is closed, counted in
	// Stats.FrameTimeouts. Default DefaultFrameTimeout.
	FrameTimeout time.Duration
	// RefusalLogInterval is the interval of the rate-limited refusal logs.
	// Default DefaultRefusalLogInterval.
	RefusalLogInterval time.Duration
	// Logger receives the transport's logs; nil discards them.
	Logger *slog.Logger
}

// ErrConfig is wrapped by the errors of Listen for an invalid Config; the
// message names the field.
var ErrConfig = errors.New("tcp: invalid config")

// withDefaults validates cfg and returns a copy with the defaults filled in,
// or an error wrapping ErrConfig that names the invalid field.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Key == nil {
		return cfg, fmt.Errorf("%w: Config.Key is required", ErrConfig)
	}
	if cfg.Secret != nil && len(cfg.Secret) != SecretLen {
		return cfg, fmt.Errorf("%w: Config.Secret is %d bytes, want %d (or nil for an open network)", ErrConfig, len(cfg.Secret), SecretLen)
	}
	if cfg.Keyring != nil && cfg.Secret != nil {
		return cfg, fmt.Errorf("%w: set Config.Secret or Config.Keyring, not both", ErrConfig)
	}
	if cfg.Keyring == nil {
		keyring, err := NewKeyring(cfg.Secret)
		if err != nil {
			return cfg, fmt.Errorf("%w: Config.Secret: %w", ErrConfig, err)
		}
		cfg.Keyring = keyring
	}
	if cfg.MaxFrameSize < 0 || cfg.MaxFrameSize > maxFrameSizeLimit {
		return cfg, fmt.Errorf("%w: Config.MaxFrameSize %d out of range [0, %d]", ErrConfig, cfg.MaxFrameSize, maxFrameSizeLimit)
	}
	if cfg.HandshakeTimeout < 0 {
		return cfg, fmt.Errorf("%w: Config.HandshakeTimeout %v is negative", ErrConfig, cfg.HandshakeTimeout)
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
		{"MaxConns", int64(cfg.MaxConns)},
		{"MaxConnsPerPeer", int64(cfg.MaxConnsPerPeer)},
		{"MaxBufferedBytes", int64(cfg.MaxBufferedBytes)},
		{"FrameTimeout", int64(cfg.FrameTimeout)},
	} {
		if field.value < 0 {
			return cfg, fmt.Errorf("%w: Config.%s is negative", ErrConfig, field.name)
		}
	}
	if len(cfg.AdvertiseAddr) > maxAddrLen {
		return cfg, fmt.Errorf("%w: Config.AdvertiseAddr is %d bytes, limit %d", ErrConfig, len(cfg.AdvertiseAddr), maxAddrLen)
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
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxConnsPerPeer == 0 {
		cfg.MaxConnsPerPeer = DefaultMaxConnsPerPeer
	}
	if cfg.MaxBufferedBytes == 0 {
		cfg.MaxBufferedBytes = DefaultMaxBufferedBytes
	}
	if cfg.FrameTimeout == 0 {
		cfg.FrameTimeout = DefaultFrameTimeout
	}
	if cfg.RefusalLogInterval == 0 {
		cfg.RefusalLogInterval = DefaultRefusalLogInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}
