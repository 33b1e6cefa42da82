package gossip

import (
	"errors"
	"fmt"
	"time"

	"github.com/p2p-go/p2p/hyparview"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/plumtree"
)

// Defaults for Config fields left zero.
const (
	// DefaultProbeTimeout is how long a lost neighbour has to answer a direct
	// probe before it is declared dead.
	DefaultProbeTimeout = 2 * time.Second
	// DefaultProbeInterval is the period at which a node probes one member
	// directly (neighbours are watched by HyParView's keepalives instead).
	// A probe of a non-neighbour usually costs a new connection and its
	// handshake, so it is kept well above SWIM's usual 1 s: every member is
	// still probed by someone about every 5 s.
	DefaultProbeInterval = 5 * time.Second
	// DefaultSyncInterval is the period of member-list push-pull with a
	// random neighbour.
	DefaultSyncInterval = 30 * time.Second
	// DefaultDeadRetention is how long a dead or departed member is
	// remembered so that stale news cannot bring it back.
	DefaultDeadRetention = 10 * time.Minute
	// DefaultMaxMembers bounds the member list (and the entries one Sync
	// message may carry).
	DefaultMaxMembers = 50_000
	// DefaultMaxPayload is the largest payload a broadcast or direct message
	// may carry.
	DefaultMaxPayload = 1<<20 - 1024
	// DefaultJoinGrace is how long after it joined a node with a key
	// adopts members without introductions (see introductions.go): a
	// joiner knows no witness yet, and nodes that join together know too
	// few members at first to check each other's.
	DefaultJoinGrace = 10 * time.Second
	// DefaultSignatureFailures is how many signature checks (of member
	// records and their introductions) that fail one message may make this
	// node do before the rest of that message's entries that need a check
	// are refused unverified (see budget.go): one message (a member list,
	// a membership broadcast) costs at most about 0.15 ms of failed checks.
	// No honest node signs a record or an introduction that fails, so
	// honest messages never reach it; two lets a forged record, or its two
	// forged introductions, be counted for what it is.
	DefaultSignatureFailures = 2
)

// Config configures a Core. Zero fields take the defaults above; HyParView
// and Plumtree take their packages' defaults, and their Self and seed are set
// from this Config. Plumtree's Expendable is set too: membership events give
// up their place in the payload cache first, so that the deaths a mass
// failure announces never push the application's broadcasts out of the
// recovery window (plumtree package doc, Recovery).
type Config struct {
	// Self is this node's ID and advertised address. Required.
	Self peer.Info
	// Key is this node's key, whose ID must be Self.ID. With a key, the
	// node signs its own member record and refuses every record that its
	// member did not sign (see records.go); without one, records are
	// neither signed nor checked, which only a simulation may want.
	Key *peer.Key
	// Name and Tags describe this node to the others, in its signed
	// member record (at most MaxNameLen bytes, MaxTags tags).
	Name string
	Tags map[string]string
	// Seed seeds every random choice, so that runs are repeatable.
	Seed uint64
	// HyParView configures the membership core.
	HyParView hyparview.Config
	// Plumtree configures the broadcast core.
	Plumtree plumtree.Config
	// ProbeTimeout: see DefaultProbeTimeout.
	ProbeTimeout time.Duration
	// ProbeInterval: see DefaultProbeInterval. Negative disables random
	// probing (large simulations may want that).
	ProbeInterval time.Duration
	// SyncInterval: see DefaultSyncInterval.
	SyncInterval time.Duration
	// DeadRetention: see DefaultDeadRetention.
	DeadRetention time.Duration
	// MaxMembers: see DefaultMaxMembers.
	MaxMembers int
	// MaxPayload: see DefaultMaxPayload.
	MaxPayload int
	// JoinGrace: see DefaultJoinGrace.
	JoinGrace time.Duration
	// SignatureFailures: see DefaultSignatureFailures.
	SignatureFailures int
	// Tree chooses how Plumtree shapes its eager links: TreeRootedRelay (the
	// zero value, the default), TreeRooted or TreePaper. Every node of a
	// network must use the same shape.
	Tree TreeShape
}

// TreeShape chooses how Plumtree shapes its eager links (Config.Tree).
type TreeShape uint8

const (
	// TreeRootedRelay keeps the eager links as one breadth-first tree from
	// the smallest ID (plumtree.Config.RootedTree), and has the origin of a
	// broadcast also send it straight to the tree's root, whose address the
	// member list gives (plumtree.Config.RelayToRoot): broadcasts from many
	// senders overlapping in flight cannot cut the tree apart, and the last
	// node is at most one hop more than the root's eccentricity away. The
	// default: see BENCHMARKS.md, "Tree depth and redundancy".
	TreeRootedRelay TreeShape = iota
	// TreeRooted is the rooted tree without the relay: a broadcast crosses
	// the tree from its origin only, up to the tree's diameter.
	TreeRooted
	// TreePaper is Plumtree's own rule: every link starts eager and a
	// duplicate payload prunes the link it came over. With broadcasts from
	// several origins in flight at once the tree keeps reshaping (RMR about
	// 0.5 and three times the depth at 1,000 nodes in the simulator).
	TreePaper
)

// String returns the shape's name as the simulator's --tree flag spells it.
func (s TreeShape) String() string {
	switch s {
	case TreeRootedRelay:
		return "relay"
	case TreeRooted:
		return "rooted"
	case TreePaper:
		return "paper"
	}
	return fmt.Sprintf("TreeShape(%d)", uint8(s))
}

// ErrConfig is wrapped by every error New returns for an invalid Config;
// the message names the field.
var ErrConfig = errors.New("gossip: invalid config")

// withDefaults returns a copy of c with the defaults filled in, or an error
// wrapping ErrConfig that names the first invalid field.
func (c Config) withDefaults() (Config, error) {
	if c.Self.ID.IsZero() {
		return c, fmt.Errorf("%w: Config.Self.ID is required", ErrConfig)
	}
	if c.Key != nil && c.Key.ID() != c.Self.ID {
		return c, fmt.Errorf("%w: Config.Key is not the key of Config.Self.ID", ErrConfig)
	}
	if !validMeta(c.Name, c.Tags) {
		return c, fmt.Errorf("%w: Config.Name or Config.Tags over their bounds (%d bytes, %d tags of %d and %d bytes)",
			ErrConfig, MaxNameLen, MaxTags, MaxTagKeyLen, MaxTagValueLen)
	}
	if c.Tree > TreePaper {
		return c, fmt.Errorf("%w: Config.Tree %v is not a tree shape", ErrConfig, c.Tree)
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	for _, field := range []struct {
		name     string
		negative bool
	}{
		{"ProbeTimeout", c.ProbeTimeout < 0},
		{"SyncInterval", c.SyncInterval < 0},
		{"DeadRetention", c.DeadRetention < 0},
		{"MaxMembers", c.MaxMembers < 0},
		{"MaxPayload", c.MaxPayload < 0},
		{"JoinGrace", c.JoinGrace < 0},
		{"SignatureFailures", c.SignatureFailures < 0},
	} {
		if field.negative {
			return c, fmt.Errorf("%w: Config.%s must not be negative", ErrConfig, field.name)
		}
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = DefaultProbeTimeout
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = DefaultSyncInterval
	}
	if c.DeadRetention == 0 {
		c.DeadRetention = DefaultDeadRetention
	}
	if c.MaxMembers == 0 {
		c.MaxMembers = DefaultMaxMembers
	}
	if c.MaxPayload == 0 {
		c.MaxPayload = DefaultMaxPayload
	}
	if c.JoinGrace == 0 {
		c.JoinGrace = DefaultJoinGrace
	}
	if c.SignatureFailures == 0 {
		c.SignatureFailures = DefaultSignatureFailures
	}
	return c, nil
}
