package p2p

import (
	"context"
	mathrand "math/rand/v2"
	"sync"

	"github.com/p2p-go/p2p/node"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport/tcp"
)

// Overlay is what the Broadcaster and the DHT have in common: the door a
// program that only sends and receives JSON messages can use with either
// overlay. Both implement it with the same meaning:
//
//   - NewBroadcaster and NewDHT listen and answer other nodes at once; Start
//     joins the network through the configured bootstrap addresses (or
//     starts a new network) and returns once the join is under way, never
//     waiting for the network to answer. Joined is closed once the node is
//     linked to the network; a node whose bootstrap nodes do not answer
//     keeps trying until Close.
//   - React registers a reactor with a bounded queue: messages that find it
//     full are dropped and counted (NodeStats.ReactorDrops); messages whose
//     data is not JSON are dropped and counted (NodeStats.InvalidJSON).
//   - Send reaches every member; SendOne one neighbour chosen at random,
//     from a source seeded by the configuration's Seed (ErrNoNeighbors when
//     there is none); SendTo any member. Messages over the size limit fail
//     with ErrTooLarge.
//   - Every method of a closed node returns an error matching ErrClosed;
//     Close may be called more than once and returns once every goroutine
//     has ended.
//   - NodeStats returns the counters every overlay has, without waiting for
//     the node's loop; Stats (Broadcaster.Stats, DHT.Stats) adds the
//     protocol's own.
type Overlay interface {
	// ID returns this node's ID.
	ID() peer.ID
	// Addr returns the address other nodes use to reach this one.
	Addr() string
	// Start joins the network and returns once the join is under way.
	Start(ctx context.Context) error
	// Joined returns a channel closed once the node is linked to the
	// network.
	Joined() <-chan struct{}
	// React registers a reactor and returns the function that removes it.
	React(r Reactor) (remove func())
	// Send sends v, encoded as JSON, to every member of the network.
	Send(ctx context.Context, v any) error
	// SendOne sends v, encoded as JSON, to one neighbour chosen at random.
	SendOne(ctx context.Context, v any) error
	// SendTo sends v, encoded as JSON, to one member.
	SendTo(ctx context.Context, to Member, v any) error
	// Members returns the members this node knows, itself included.
	Members(ctx context.Context) ([]Member, error)
	// Neighbors returns the members this node sends to first.
	Neighbors(ctx context.Context) ([]Member, error)
	// NodeStats returns the counters every overlay has.
	NodeStats() NodeStats
	// Close leaves the network and stops the node.
	Close() error
}

// The two overlays of the root package.
var (
	_ Overlay = (*Broadcaster)(nil)
	_ Overlay = (*DHT)(nil)
)

// NodeStats holds the counters every overlay has; Stats and DHTStats hold
// the same fields beside their protocol's counters.
type NodeStats struct {
	// Runtime holds the message, byte and connection counters.
	Runtime node.Stats
	// ReactorDrops counts messages dropped on full reactor queues.
	ReactorDrops uint64
	// InvalidJSON counts received messages dropped because their data was
	// not JSON.
	InvalidJSON uint64
	// KeyringRefused counts keyring messages refused: malformed, or
	// requests dropped on a full queue.
	KeyringRefused uint64
	// Transport holds the TCP transport's counters. Zero when the
	// configuration's Transport is set.
	Transport tcp.Stats
}

// NodeStats returns the counters every overlay has.
func (b *Broadcaster) NodeStats() NodeStats {
	s := NodeStats{
		Runtime:        b.rt.Stats(),
		ReactorDrops:   b.reactors.dropped.Load(),
		InvalidJSON:    b.invalidJSON.Load(),
		KeyringRefused: b.keys.refused.Load(),
	}
	if tr, ok := b.tr.(*tcp.Transport); ok {
		s.Transport = tr.Stats()
	}
	return s
}

// lockedRand is a seeded random source safe for concurrent use: SendOne's
// choice of a neighbour, repeatable for a given Seed.
type lockedRand struct {
	mu  sync.Mutex // guards rng
	rng *mathrand.Rand
}

func newLockedRand(seed uint64) *lockedRand {
	return &lockedRand{rng: mathrand.New(mathrand.NewPCG(seed, seed^0x736f))}
}

// IntN returns a number in [0, n).
func (r *lockedRand) IntN(n int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rng.IntN(n)
}
