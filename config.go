package p2p

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/p2p-go/p2p/gossip"
	"github.com/p2p-go/p2p/kv"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport"
)

// DefaultPort is the port the original framework used, kept as ours.
const DefaultPort = 6966

// Defaults for Config fields left zero.
const (
	// DefaultListenAddr listens on loopback only: a node reachable from other
	// machines must say so (ListenAddr "0.0.0.0:6966" and an AdvertiseAddr).
	DefaultListenAddr = "127.0.0.1:6966"
	// DefaultDataDir holds the node's key and store, under the working
	// directory.
	DefaultDataDir = "p2p-data"
	// DefaultReactorQueueLen is the number of messages waiting for one
	// reactor before further messages are dropped for it.
	DefaultReactorQueueLen = 1024
	// DefaultIHaveTimeout is Plumtree's timer 1 for a Broadcaster: how long
	// a node waits for a payload announced by a lazy neighbour before it
	// asks for it (GRAFT). The framework's target is machines of one site,
	// with sub-millisecond to few-millisecond links, where a tree hop costs
	// well under 5 ms: 30 ms bounds the delay of a message that missed the
	// eager tree (plumtree's own default, 100 ms, suits 10-20 ms links). Raise
	// it (Config.Gossip.Plumtree.IHaveTimeout) across a WAN, or nodes will
	// GRAFT payloads that are only late, which costs duplicates, never loss.
	DefaultIHaveTimeout = 30 * time.Millisecond
	// DefaultGraftTimeout is Plumtree's timer 2 for a Broadcaster: the wait
	// after a GRAFT before asking the next announcer.
	DefaultGraftTimeout = 15 * time.Millisecond
	// DefaultLeaveTimeout bounds how long Close waits for the goodbye
	// messages to go out.
	DefaultLeaveTimeout = 2 * time.Second
)

// SecretLen is the length of a cluster secret in bytes.
const SecretLen = 32

var (
	// ErrClosed is returned by methods of a closed node.
	ErrClosed = errors.New("p2p: closed")
	// ErrNoNeighbors is returned by SendOne when the node has no neighbour.
	ErrNoNeighbors = errors.New("p2p: no neighbour to send to")
	// ErrNoReply is returned by Message.Reply for a message that cannot be
	// answered.
	ErrNoReply = errors.New("p2p: message cannot be replied to")
	// ErrTooLarge is returned for a message over the size limit.
	ErrTooLarge = errors.New("p2p: message too large")
	// ErrNotStarted is returned by methods that need Start first.
	ErrNotStarted = errors.New("p2p: not started")
	// ErrConfig is wrapped by the errors of NewBroadcaster and NewDHT for
	// an invalid Config or DHTConfig; the message names the field.
	ErrConfig = errors.New("p2p: invalid config")
)

// Config configures a node. Zero fields take the documented defaults.
type Config struct {
	// Bootstrap lists addresses ("host:port") of nodes already in the
	// network; the node joins through whichever answers. Empty starts a new
	// network.
	Bootstrap []string
	// ListenAddr is the TCP address to listen on (default
	// DefaultListenAddr; port 0 picks a free port).
	ListenAddr string
	// AdvertiseAddr is the address other nodes dial to reach this one
	// (default: the address actually listened on).
	AdvertiseAddr string
	// DataDir holds the node key (node.key, mode 0600), the store and the
	// last known members (members.json, mode 0600; see MembersFile), through
	// which a restarted node rejoins after its Bootstrap addresses (default
	// DefaultDataDir).
	DataDir string
	// Secret is the cluster secret (SecretLen bytes; see GenerateSecret and
	// ParseSecret). Nodes with a different secret are refused during the
	// handshake. Empty: the network is encrypted but admits anyone, which
	// the node logs at start-up.
	Secret []byte
	// Logger receives the node's logs (nil discards them).
	Logger *slog.Logger
	// ReactorQueueLen: see DefaultReactorQueueLen.
	ReactorQueueLen int
	// LeaveTimeout: see DefaultLeaveTimeout.
	LeaveTimeout time.Duration
	// MaxMessageSize is the largest frame accepted on the wire (default 1
	// MiB); the largest message is slightly smaller.
	MaxMessageSize int
	// Gossip tunes the overlay (HyParView and Plumtree parameters); its Self
	// is set by the node.
	Gossip gossip.Config
	// Key overrides the key kept in DataDir (for tests and embedding).
	Key *peer.Key
	// Transport overrides the TCP transport (for tests over package
	// transport/memnet). The node closes it on Close.
	Transport transport.Transport
	// StoreBackend overrides the bbolt file DataDir/kv.db that holds the
	// replicated store (for tests: kv.NewMemory()). The node closes it.
	StoreBackend kv.Backend
	// StoreMaxKeys bounds the number of keys of the store (default
	// kv.DefaultMaxKeys). Every node of a cluster must use the same value.
	StoreMaxKeys int
	// SignBroadcasts makes the node sign every broadcast it sends with its
	// ed25519 identity key, and refuse every broadcast that does not carry
	// a valid signature of its origin (counted in
	// Stats().Plumtree.RefusedSignature). A broadcast's Message.From is then
	// proven; without it, From is what the relaying neighbours say. Every
	// node of a network must use the same setting: a node that signs
	// refuses the broadcasts of nodes that do not. Off by default: checking
	// a signature costs more CPU than the rest of a delivery (BENCHMARKS.md).
	SignBroadcasts bool
	// Seed seeds the overlay's random choices (default: random).
	Seed uint64
	// Admins lists the nodes allowed to revoke members (Broadcaster.Revoke).
	// Empty: any member may revoke any other. Every node of a cluster must
	// use the same list.
	Admins []peer.ID
	// Name and Tags describe this node to the other members (Member.Name,
	// Member.Tags). They travel in the node's member record, which it signs
	// with its key: no other node can change them. At most
	// gossip.MaxNameLen bytes and gossip.MaxTags tags.
	Name string
	Tags map[string]string
}

// withDefaults returns a copy of c with zero fields replaced by their
// defaults, or an error wrapping ErrConfig that names the invalid field.
func (c Config) withDefaults() (Config, error) {
	if c.ListenAddr == "" {
		c.ListenAddr = DefaultListenAddr
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.ReactorQueueLen == 0 {
		c.ReactorQueueLen = DefaultReactorQueueLen
	}
	if c.LeaveTimeout == 0 {
		c.LeaveTimeout = DefaultLeaveTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if err := checkSecret("Config", c.Secret); err != nil {
		return c, err
	}
	for _, field := range []struct {
		name     string
		negative bool
	}{
		{"ReactorQueueLen", c.ReactorQueueLen < 0},
		{"LeaveTimeout", c.LeaveTimeout < 0},
		{"MaxMessageSize", c.MaxMessageSize < 0},
	} {
		if field.negative {
			return c, fmt.Errorf("%w: Config.%s must not be negative", ErrConfig, field.name)
		}
	}
	if c.Seed == 0 {
		c.Seed = randomSeed()
	}
	return c, nil
}

// checkSecret validates the cluster secret of the named configuration.
func checkSecret(config string, secret []byte) error {
	if len(secret) != 0 && len(secret) != SecretLen {
		return fmt.Errorf("%w: %s.Secret is %d bytes, want %d", ErrConfig, config, len(secret), SecretLen)
	}
	return nil
}

// randomSeed returns a seed from the system's random source, for a node
// configured without one.
func randomSeed() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])
}

// GenerateSecret returns a new random cluster secret in its printable form.
func GenerateSecret() string {
	var b [SecretLen]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// ParseSecret parses a cluster secret printed by GenerateSecret (standard or
// URL-safe base64). An empty string yields no secret.
func ParseSecret(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != SecretLen {
				return nil, fmt.Errorf("p2p: secret is %d bytes, want %d", len(b), SecretLen)
			}
			return b, nil
		}
	}
	return nil, errors.New("p2p: secret is not base64 (use `p2p keygen` to make one)")
}
