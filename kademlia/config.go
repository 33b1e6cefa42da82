package kademlia

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/p2p-go/p2p/peer"
)

// Defaults for the Config fields left zero. The protocol constants follow the
// Kademlia paper (Maymounkov and Mazières, IPTPS 2002, sections 2.3, 2.5 and
// 4.1); the limits are this package's choices, sized for records that carry
// configuration, not bulk data.
const (
	// DefaultK is the bucket size and replication factor (paper: k = 20).
	DefaultK = 20
	// DefaultAlpha is the number of requests a lookup keeps in flight
	// (paper: α = 3).
	DefaultAlpha = 3
	// DefaultRPCTimeout is how long a request waits for its reply before the
	// peer counts as unresponsive. One second is several round trips on the
	// internet (Jimenez et al. found shorter timeouts the main lever on
	// Mainline DHT lookup times) and ends a lookup's wait on a dead node.
	DefaultRPCTimeout = time.Second
	// DefaultLateReplyTimeout is how long after a request was sent its
	// reply is still taken. After RPCTimeout a lookup stops waiting for the
	// request and asks another node, but a reply that comes later, from a
	// node slowed by load, still counts (paper section 2.3: unresponsive
	// nodes are "removed from consideration until and unless they do
	// respond"); only after LateReplyTimeout does the request fail, and
	// count against its contact. Five seconds is also the runtime's dial
	// timeout (node.DefaultDialTimeout), after which a request to a node
	// that cannot be reached has failed anyway.
	DefaultLateReplyTimeout = 5 * time.Second
	// DefaultStaleAfter is the number of consecutive failed requests after
	// which a contact is stale: evicted as soon as a replacement is known,
	// never handed to other peers. The paper uses 5; lookups skip dead nodes
	// anyway, so a smaller number only clears tables sooner.
	DefaultStaleAfter = 3
	// DefaultProbeAfter is how long a contact must have been silent before
	// a newcomer to its full bucket triggers a PING of it. The paper PINGs
	// the least recently seen contact on every newcomer; one heard from
	// within the last minutes is known to be alive, so that PING would only
	// confirm it (section 4.1 likewise avoids needless probes).
	DefaultProbeAfter = 5 * time.Minute
	// DefaultReplacementCacheSize is the number of candidates a full bucket
	// remembers to replace contacts that fail.
	DefaultReplacementCacheSize = 8
	// DefaultRefreshInterval is how long a bucket may go without a lookup
	// into its range before it is refreshed (paper: 1 h).
	DefaultRefreshInterval = time.Hour
	// DefaultReplicateInterval is how often a holder pushes each record to
	// the k closest nodes it finds for the key (paper: 1 h), unless it
	// received a STORE of that record within the interval.
	DefaultReplicateInterval = time.Hour
	// DefaultRepublishInterval is how often the original writer stores its
	// records afresh. The paper republishes every 24 h with a 24 h expiry;
	// republishing at half the TTL lets one missed republish go unnoticed.
	DefaultRepublishInterval = 12 * time.Hour
	// DefaultRecordTTL is how long a record lives after it was published
	// (paper: 24 h).
	DefaultRecordTTL = 24 * time.Hour
	// DefaultCacheTTL bounds the lifetime of a copy cached along a lookup's
	// path (paper section 2.5). It is further halved for every node the
	// lookup saw between the cache and the key.
	DefaultCacheTTL = time.Hour
	// DefaultMaintenanceInterval is how often the core checks refresh,
	// replication, republication and expiry.
	DefaultMaintenanceInterval = time.Minute
	// DefaultMaxValueSize is the largest record value accepted: 64 KiB.
	DefaultMaxValueSize = 64 << 10
	// DefaultMaxNameSize is the largest mutable-record name accepted.
	DefaultMaxNameSize = 256
	// DefaultMaxPayloadSize is the largest broadcast or direct payload.
	DefaultMaxPayloadSize = 64 << 10
	// DefaultMaxRecords is the most records one node stores for others.
	DefaultMaxRecords = 10000
	// DefaultMaxRecordsPerWriter is the most mutable records of one writer
	// key a node stores.
	DefaultMaxRecordsPerWriter = 256
	// DefaultMaxRecordsPerPeer is the most records a node stores whose first
	// STORE came from one peer (immutable records have no writer to count).
	DefaultMaxRecordsPerPeer = 2000
	// DefaultStoreRate is the sustained number of STOREs per second accepted
	// from one peer.
	DefaultStoreRate = 20.0
	// DefaultStoreBurst is the number of STOREs one peer may send at once.
	DefaultStoreBurst = 200
	// DefaultMaxTrackedPeers bounds the per-peer STORE rate limiters kept.
	DefaultMaxTrackedPeers = 4096
	// DefaultMaxAddrLen is the longest contact address accepted.
	DefaultMaxAddrLen = 256
	// DefaultSeenTTL is how long a broadcast's ID is remembered to drop
	// duplicates.
	DefaultSeenTTL = 10 * time.Minute
	// DefaultMaxSeen bounds the remembered broadcast IDs.
	DefaultMaxSeen = 1 << 16
)

// Signer signs records on behalf of the node. *peer.Key implements it.
type Signer interface {
	// Public returns the ed25519 public key that verifies the signatures.
	Public() ed25519.PublicKey
	// Sign returns the ed25519 signature of msg.
	Sign(msg []byte) []byte
}

// Config configures a Core. Zero fields take the defaults documented on the
// Default constants.
type Config struct {
	// Self is this node's ID and the address peers dial to reach it.
	// Self.ID is required.
	Self peer.Info
	// Signer signs the mutable records this node writes; its public key
	// must match Self.ID. Nil means the node can only store immutable
	// records and others' signed records.
	Signer Signer
	// K is the bucket size and number of replicas (DefaultK).
	K int
	// Alpha is the number of requests in flight per lookup (DefaultAlpha).
	Alpha int
	// RPCTimeout is how long a lookup waits for a reply before it asks
	// another node in its place (DefaultRPCTimeout).
	RPCTimeout time.Duration
	// LateReplyTimeout is how long a reply is taken after its request was
	// sent, at least RPCTimeout (DefaultLateReplyTimeout; when only
	// RPCTimeout is set, five times RPCTimeout).
	LateReplyTimeout time.Duration
	// StaleAfter is the number of consecutive failures that make a contact
	// stale (DefaultStaleAfter).
	StaleAfter int
	// ProbeAfter is the silence after which a full bucket's least recently
	// seen contact is PINGed when a newcomer arrives (DefaultProbeAfter).
	ProbeAfter time.Duration
	// ReplacementCacheSize is the per-bucket replacement cache
	// (DefaultReplacementCacheSize).
	ReplacementCacheSize int
	// RefreshInterval is the bucket refresh interval
	// (DefaultRefreshInterval).
	RefreshInterval time.Duration
	// ReplicateInterval is the holders' replication interval
	// (DefaultReplicateInterval).
	ReplicateInterval time.Duration
	// RepublishInterval is the writer's republication interval
	// (DefaultRepublishInterval).
	RepublishInterval time.Duration
	// RecordTTL is a record's lifetime from publication (DefaultRecordTTL).
	RecordTTL time.Duration
	// CacheTTL bounds copies cached along lookup paths (DefaultCacheTTL);
	// negative disables caching.
	CacheTTL time.Duration
	// MaintenanceInterval is the period of the maintenance timer
	// (DefaultMaintenanceInterval).
	MaintenanceInterval time.Duration
	// MaxValueSize bounds record values (DefaultMaxValueSize).
	MaxValueSize int
	// MaxNameSize bounds mutable record names (DefaultMaxNameSize).
	MaxNameSize int
	// MaxPayloadSize bounds broadcast and direct payloads
	// (DefaultMaxPayloadSize).
	MaxPayloadSize int
	// MaxRecords bounds the records stored for others (DefaultMaxRecords).
	MaxRecords int
	// MaxRecordsPerWriter bounds the stored records of one writer
	// (DefaultMaxRecordsPerWriter).
	MaxRecordsPerWriter int
	// MaxRecordsPerPeer bounds the stored records first sent by one peer
	// (DefaultMaxRecordsPerPeer).
	MaxRecordsPerPeer int
	// StoreRate is the STOREs per second accepted from one peer
	// (DefaultStoreRate).
	StoreRate float64
	// StoreBurst is the STORE burst accepted from one peer
	// (DefaultStoreBurst).
	StoreBurst int
	// MaxTrackedPeers bounds the STORE rate limiters kept; STOREs from
	// further peers are refused until some limiter is idle again
	// (DefaultMaxTrackedPeers).
	MaxTrackedPeers int
	// MaxContactsPerReply bounds the contacts in one reply, both sent and
	// accepted (default K).
	MaxContactsPerReply int
	// MaxAddrLen bounds a contact's address (DefaultMaxAddrLen).
	MaxAddrLen int
	// SeenTTL is how long broadcast IDs are remembered (DefaultSeenTTL).
	SeenTTL time.Duration
	// MaxSeen bounds the remembered broadcast IDs (DefaultMaxSeen).
	MaxSeen int
	// Seed seeds the core's random choices (request IDs, refresh targets,
	// broadcast IDs). Zero derives the seed from Self.ID, so a run is
	// repeatable either way.
	Seed uint64
	// Logger receives the core's logs; nil discards them.
	Logger *slog.Logger
}

// ErrConfig is wrapped by every error New returns for an invalid Config;
// the message names the field.
var ErrConfig = errors.New("kademlia: invalid config")

// errConfig builds the error for an invalid Config field.
func errConfig(field string, format string, args ...any) error {
	return fmt.Errorf("%w: Config.%s: %s", ErrConfig, field, fmt.Sprintf(format, args...))
}

// withDefaults validates c and returns a copy with every zero field replaced
// by its default, or an error wrapping ErrConfig that names the field.
func (c Config) withDefaults() (Config, error) {
	if c.Self.ID.IsZero() {
		return c, fmt.Errorf("%w: Config.Self.ID is required", ErrConfig)
	}
	if c.Signer != nil {
		pub := c.Signer.Public()
		if len(pub) != ed25519.PublicKeySize {
			return c, errConfig("Signer", "public key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)
		}
		if peer.IDFromPublicKey(pub) != c.Self.ID {
			return c, errConfig("Signer", "key of %s does not match Self.ID %s", peer.IDFromPublicKey(pub).Short(), c.Self.ID.Short())
		}
	}
	type intField struct {
		name string
		ptr  *int
		def  int
	}
	for _, f := range []intField{
		{"K", &c.K, DefaultK},
		{"Alpha", &c.Alpha, DefaultAlpha},
		{"StaleAfter", &c.StaleAfter, DefaultStaleAfter},
		{"ReplacementCacheSize", &c.ReplacementCacheSize, DefaultReplacementCacheSize},
		{"MaxValueSize", &c.MaxValueSize, DefaultMaxValueSize},
		{"MaxNameSize", &c.MaxNameSize, DefaultMaxNameSize},
		{"MaxPayloadSize", &c.MaxPayloadSize, DefaultMaxPayloadSize},
		{"MaxRecords", &c.MaxRecords, DefaultMaxRecords},
		{"MaxRecordsPerWriter", &c.MaxRecordsPerWriter, DefaultMaxRecordsPerWriter},
		{"MaxRecordsPerPeer", &c.MaxRecordsPerPeer, DefaultMaxRecordsPerPeer},
		{"StoreBurst", &c.StoreBurst, DefaultStoreBurst},
		{"MaxTrackedPeers", &c.MaxTrackedPeers, DefaultMaxTrackedPeers},
		{"MaxAddrLen", &c.MaxAddrLen, DefaultMaxAddrLen},
		{"MaxSeen", &c.MaxSeen, DefaultMaxSeen},
		{"MaxContactsPerReply", &c.MaxContactsPerReply, 0},
	} {
		if *f.ptr < 0 {
			return c, errConfig(f.name, "must not be negative, got %d", *f.ptr)
		}
		if *f.ptr == 0 {
			*f.ptr = f.def
		}
	}
	if c.MaxContactsPerReply == 0 {
		c.MaxContactsPerReply = c.K
	}
	if len(c.Self.Addr) > c.MaxAddrLen {
		return c, errConfig("Self.Addr", "%d bytes exceeds MaxAddrLen %d", len(c.Self.Addr), c.MaxAddrLen)
	}
	if c.K > 256 {
		return c, errConfig("K", "%d is too large (at most 256)", c.K)
	}
	if c.Alpha > c.K {
		return c, errConfig("Alpha", "%d exceeds K = %d", c.Alpha, c.K)
	}
	if c.MaxContactsPerReply > 4096 {
		return c, errConfig("MaxContactsPerReply", "%d is too large (at most 4096)", c.MaxContactsPerReply)
	}
	if c.MaxValueSize > 512<<10 {
		return c, errConfig("MaxValueSize", "%d does not fit in a 1 MiB frame with its envelope (at most 512 KiB)", c.MaxValueSize)
	}
	if c.MaxPayloadSize > 512<<10 {
		return c, errConfig("MaxPayloadSize", "%d does not fit in a 1 MiB frame (at most 512 KiB)", c.MaxPayloadSize)
	}
	type durField struct {
		name string
		ptr  *time.Duration
		def  time.Duration
	}
	for _, f := range []durField{
		{"RPCTimeout", &c.RPCTimeout, DefaultRPCTimeout},
		{"LateReplyTimeout", &c.LateReplyTimeout, 0},
		{"ProbeAfter", &c.ProbeAfter, DefaultProbeAfter},
		{"RefreshInterval", &c.RefreshInterval, DefaultRefreshInterval},
		{"ReplicateInterval", &c.ReplicateInterval, DefaultReplicateInterval},
		{"RepublishInterval", &c.RepublishInterval, DefaultRepublishInterval},
		{"RecordTTL", &c.RecordTTL, DefaultRecordTTL},
		{"MaintenanceInterval", &c.MaintenanceInterval, DefaultMaintenanceInterval},
		{"SeenTTL", &c.SeenTTL, DefaultSeenTTL},
	} {
		if *f.ptr < 0 {
			return c, errConfig(f.name, "must not be negative, got %v", *f.ptr)
		}
		if *f.ptr == 0 {
			*f.ptr = f.def
		}
	}
	if c.LateReplyTimeout == 0 {
		c.LateReplyTimeout = DefaultLateReplyTimeout
		if c.RPCTimeout != DefaultRPCTimeout {
			c.LateReplyTimeout = 5 * c.RPCTimeout
		}
	}
	if c.LateReplyTimeout < c.RPCTimeout {
		return c, errConfig("LateReplyTimeout", "%v is shorter than RPCTimeout %v", c.LateReplyTimeout, c.RPCTimeout)
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = DefaultCacheTTL
	}
	if c.RecordTTL < time.Second || c.RecordTTL > 365*24*time.Hour {
		return c, errConfig("RecordTTL", "%v is outside [1s, 365 days]", c.RecordTTL)
	}
	if c.RepublishInterval >= c.RecordTTL {
		return c, errConfig("RepublishInterval", "%v must be shorter than RecordTTL %v, or records expire between republications", c.RepublishInterval, c.RecordTTL)
	}
	if c.StoreRate < 0 {
		return c, errConfig("StoreRate", "must not be negative, got %v", c.StoreRate)
	}
	if c.StoreRate == 0 {
		c.StoreRate = DefaultStoreRate
	}
	if c.Seed == 0 {
		for _, b := range c.Self.ID[:8] {
			c.Seed = c.Seed<<8 | uint64(b)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}
