package hyparview

import (
	"encoding/binary"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
)

// Join is the input that starts membership: the core sends JOIN to one of
// Contacts (addresses; the owners' IDs need not be known) and, while both of
// its views are empty, keeps trying them in turn every NeighborRetry. An
// empty Contacts starts a new overlay: the node waits for others to join it.
type Join struct {
	Contacts []string
}

// Leave is the input for a polite departure: the core sends a DISCONNECT
// (with Leave set) to every active peer, closes their links and stops; it
// ignores every later input.
type Leave struct{}

// NeighborUp is the output announcing that Peer entered the active view.
type NeighborUp struct {
	Peer peer.Info
}

// NeighborDown is the output announcing that Peer left the active view.
type NeighborDown struct {
	Peer peer.ID
}

// Joined is the output emitted once, when the node is first linked to the
// network: for a node that started one (no contacts), its first neighbour;
// for a node given contacts, its first neighbour that did not join through
// it (the contact answering its JOIN, in the usual case).
type Joined struct{}

// Core is the HyParView state machine. It is not safe for concurrent use:
// one driver goroutine calls all its methods.
type Core struct {
	cfg  Config
	self peer.Info
	rng  *rand.Rand
	log  *slog.Logger

	activeView  view
	passiveView view
	// lastHeard holds, for every active peer, when it last showed signs of
	// life (a message, or traffic reported through Heard).
	lastHeard heardTimes
	// pendingNeighbors are the NEIGHBOR requests awaiting a reply; at most
	// ActiveViewSize entries.
	pendingNeighbors map[peer.ID]pendingNeighbor
	// rejectedAt records passive peers that rejected a NEIGHBOR request, so
	// they are not asked again before a ShuffleInterval has passed; its keys
	// are always passive peers.
	rejectedAt map[peer.ID]time.Time

	contacts         []string
	nextContact      int
	lastJoinAt       time.Time
	joinAttemptsLeft int // contacts still to try at once after failed JOINs
	// joinFailed: a JOIN of the current round could not be delivered
	// (the contact is unreachable, not merely silent).
	joinFailed bool

	// shuffleSent is what our last SHUFFLE carried, preferred for eviction
	// when its reply arrives; shuffleAwaiting is true until that reply.
	shuffleSent     []peer.Info
	shuffleAwaiting bool

	started       bool
	left          bool
	joined        bool
	nextKeepalive time.Time
	nextShuffle   time.Time
	nextRetry     time.Time

	out []any
}

type pendingNeighbor struct {
	info   peer.Info
	sentAt time.Time
	high   bool
}

var _ overlay.Core = (*Core)(nil)

// New returns a core for cfg, or an error wrapping ErrConfig that names the
// invalid field.
func New(cfg Config) (*Core, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Core{
		cfg:              cfg,
		self:             cfg.Self,
		rng:              rand.New(rand.NewPCG(cfg.Seed, binary.BigEndian.Uint64(cfg.Self.ID[:8]))),
		log:              cfg.Logger.With("self", cfg.Self.ID.Short()),
		activeView:       newView(cfg.ActiveViewSize),
		passiveView:      newView(cfg.PassiveViewSize),
		pendingNeighbors: make(map[peer.ID]pendingNeighbor),
		rejectedAt:       make(map[peer.ID]time.Time),
	}, nil
}

// Self returns this node's ID and address.
func (c *Core) Self() peer.Info { return c.self }

// ActiveView returns a copy of the active view.
func (c *Core) ActiveView() []peer.Info { return c.activeView.list() }

// PassiveView returns a copy of the passive view.
func (c *Core) PassiveView() []peer.Info { return c.passiveView.list() }

// Heard records that traffic from id arrived at now (for example a Plumtree
// message), so that a busy active link is not pinged and not declared
// failed. It ignores peers outside the active view.
func (c *Core) Heard(now time.Time, id peer.ID) {
	c.lastHeard.touch(id, now)
}

// Step feeds one input to the core: Join, Leave, overlay.Received (for the
// messages of this package; others are ignored), overlay.LinkDown or
// overlay.Tick. It never panics on what a peer sent.
func (c *Core) Step(now time.Time, input any) {
	if c.left {
		return
	}
	c.start(now)
	switch in := input.(type) {
	case Join:
		c.join(now, in)
	case *Join:
		if in != nil {
			c.join(now, *in)
		}
	case Leave, *Leave:
		c.leave()
	case overlay.Received:
		c.receive(now, in)
	case *overlay.Received:
		if in != nil {
			c.receive(now, *in)
		}
	case overlay.LinkDown:
		c.linkDown(now, in)
	case *overlay.LinkDown:
		if in != nil {
			c.linkDown(now, *in)
		}
	case overlay.Tick, *overlay.Tick:
		c.tick(now)
	}
}

// Drain appends the outputs produced since the last call to dst and returns
// it: overlay.Send, overlay.Connect, overlay.Disconnect, NeighborUp,
// NeighborDown and Joined, in the order they happened.
func (c *Core) Drain(dst []any) []any {
	dst = append(dst, c.out...)
	clear(c.out)
	c.out = c.out[:0]
	return dst
}

// NextDeadline returns when the core next needs an overlay.Tick. It has no
// deadline before its first Step nor after Leave.
func (c *Core) NextDeadline() (time.Time, bool) {
	if !c.started || c.left {
		return time.Time{}, false
	}
	next := c.nextKeepalive
	if c.nextShuffle.Before(next) {
		next = c.nextShuffle
	}
	if c.nextRetry.Before(next) {
		next = c.nextRetry
	}
	if len(c.pendingNeighbors) > 0 { // ranging over an empty map still starts an iterator
		for _, pending := range c.pendingNeighbors {
			if expiry := pending.sentAt.Add(c.cfg.FailureTimeout); expiry.Before(next) {
				next = expiry
			}
		}
	}
	return next, true
}

// start arms the timers at the first Step. The first shuffle is placed at a
// random point of the first interval so that nodes started together do not
// shuffle in lockstep.
func (c *Core) start(now time.Time) {
	if c.started {
		return
	}
	c.started = true
	c.nextKeepalive = now.Add(c.cfg.KeepaliveInterval)
	c.nextRetry = now.Add(c.cfg.NeighborRetry)
	c.nextShuffle = now.Add(time.Duration(1 + c.rng.Int64N(int64(c.cfg.ShuffleInterval))))
}

func (c *Core) emit(output any) { c.out = append(c.out, output) }

func (c *Core) send(to peer.Info, msg any) { c.emit(overlay.Send{To: to, Msg: msg}) }

// releaseLink tells the driver that a link used for a one-off exchange
// (a rejected NEIGHBOR, a shuffle reply) is no longer needed.
func (c *Core) releaseLink(id peer.ID) {
	if c.activeView.has(id) {
		return
	}
	if _, pending := c.pendingNeighbors[id]; pending {
		return
	}
	c.emit(overlay.Disconnect{Peer: id})
}

// addActive puts info into the active view, evicting a random member with a
// DISCONNECT when the view is full and evict is set. It reports whether info
// is in the active view afterwards.
func (c *Core) addActive(now time.Time, info peer.Info, evict bool) bool {
	if info.ID == c.self.ID {
		return false
	}
	if c.activeView.has(info.ID) {
		return true
	}
	if c.activeView.full() {
		if !evict {
			return false
		}
		victim, _ := c.activeView.random(c.rng, nil)
		c.log.Debug("evicting active peer", "peer", victim.ID.Short(), "for", info.ID.Short())
		c.send(victim, &DisconnectMsg{})
		c.removeActive(victim.ID)
		c.addPassive(victim, nil)
	}
	c.passiveView.remove(info.ID)
	delete(c.rejectedAt, info.ID)
	c.log.Debug("neighbour up", "peer", info.ID.Short())
	c.activeView.add(info)
	c.lastHeard.set(info.ID, now)
	c.emit(overlay.Connect{Peer: info})
	c.emit(NeighborUp{Peer: info})
	if len(c.contacts) == 0 {
		// A node that started a network joins it with its first
		// neighbour.
		c.markJoined()
	}
	return true
}

// markJoined emits Joined the first time the node is linked to the network
// it was asked to join: a node with contacts is not joined by a newcomer
// that joined through it, only by a peer that asked it to be a neighbour or
// accepted its request, or by the end of another node's join walk. So a
// node whose contact is slow to answer does not report Joined while the
// only peers it has are the ones that came through it.
func (c *Core) markJoined() {
	if !c.joined {
		c.joined = true
		c.emit(Joined{})
	}
}

// removeActive drops id from the active view and closes its link; the
// caller decides whether it becomes a passive peer.
func (c *Core) removeActive(id peer.ID) (peer.Info, bool) {
	info, ok := c.activeView.remove(id)
	if !ok {
		return info, false
	}
	c.lastHeard.remove(id)
	c.emit(NeighborDown{Peer: id})
	c.emit(overlay.Disconnect{Peer: id})
	return info, true
}

// addPassive puts info into the passive view unless it is this node, active
// or already passive. When the view is full it evicts one of prefer (peers
// we just handed to someone else) if any is passive, else a random peer.
func (c *Core) addPassive(info peer.Info, prefer []peer.Info) {
	if info.ID == c.self.ID || c.activeView.has(info.ID) || c.passiveView.has(info.ID) {
		return
	}
	if c.passiveView.full() {
		evicted := false
		for _, candidate := range prefer {
			if _, pending := c.pendingNeighbors[candidate.ID]; !pending && c.passiveView.has(candidate.ID) {
				c.dropPassive(candidate.ID)
				evicted = true
				break
			}
		}
		if !evicted {
			victim, ok := c.passiveView.random(c.rng, func(id peer.ID) bool {
				_, pending := c.pendingNeighbors[id]
				return pending
			})
			if !ok {
				return
			}
			c.dropPassive(victim.ID)
		}
	}
	c.passiveView.add(info)
}

func (c *Core) dropPassive(id peer.ID) {
	c.passiveView.remove(id)
	delete(c.rejectedAt, id)
}
