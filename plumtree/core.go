package plumtree

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
)

// NeighborUp is the input telling the core that Peer became a neighbour (for
// instance joined HyParView's active view). New neighbours start eager.
type NeighborUp struct {
	Peer peer.Info
}

// NeighborDown is the input telling the core that Peer is no longer a
// neighbour. It is removed from both push sets and from every announcement.
type NeighborDown struct {
	Peer peer.ID
}

// Broadcast is the input asking the core to broadcast Payload. A zero ID
// makes the core generate a random one; a chosen ID (for instance a hash of
// the content) lets several nodes broadcasting the same event be
// deduplicated: a Broadcast whose ID was already seen is dropped. The core
// copies Payload.
type Broadcast struct {
	ID      MessageID
	Payload []byte
}

// Deliver is the output handing a broadcast message to the application. It is
// produced exactly once per message per node, never for the node's own
// broadcasts. Payload must not be modified.
type Deliver struct {
	ID MessageID
	// Origin is the node that broadcast the message.
	Origin peer.Info
	// Hops is the number of links the message travelled to get here.
	Hops    int
	Payload []byte
	// SentAt is the origin's clock when it broadcast the message, in
	// milliseconds since the Unix epoch.
	SentAt int64
}

// ErrPayloadTooLarge is returned by [Core.CheckBroadcast] for a payload over
// [Config.MaxPayload].
var ErrPayloadTooLarge = errors.New("plumtree: payload too large")

// neighbor is the state kept for one neighbour.
type neighbor struct {
	info  peer.Info
	eager bool
	// pending holds the announcements gathered for the next IHAVE; a zero
	// ID marks one withdrawn because the peer announced it to us.
	pending      []Announcement
	pendingIndex map[MessageID]int
	// treeRoot and treeDistance are the neighbour's last advertised route
	// (zero root: none yet), and child whether it chose this node as its
	// parent (Config.RootedTree).
	treeRoot     peer.ID
	treeDistance uint16
	child        bool
}

// Core is the Plumtree state machine. It implements [overlay.Core]; it is not
// safe for concurrent use.
type Core struct {
	cfg  Config
	log  *slog.Logger
	rand *rand.Rand

	neighbors map[peer.ID]*neighbor
	// order lists the neighbours in arrival order, so that iteration (and
	// with it every run) is repeatable.
	order []*neighbor

	seen *boundedCache[struct{}]
	// payloads keeps the payloads to answer GRAFTs and to recover;
	// expendable keeps those of Config.Expendable (nil without it), within
	// the same bounds in all, and gives up its oldest first.
	payloads   *boundedCache[cachedPayload]
	expendable *boundedCache[cachedPayload]
	missing    *missingSet
	tree       treeState

	// flushAt is when the gathered announcements are sent; valid when
	// flushPending.
	flushAt      time.Time
	flushPending bool
	// lazyInterval is the batching interval in force, between
	// Config.LazyBatchInterval and Config.MaxLazyBatchInterval;
	// batchMessages counts the messages announced in the batch being
	// gathered, and lazyTrouble is set when something since the last flush
	// suggested a payload went missing (see lazyReset).
	lazyInterval  time.Duration
	batchMessages int
	lazyTrouble   bool

	// startedAt is the time of the first Step, in Unix milliseconds: a
	// node recovers only messages sent since (see receiveSummary).
	startedAt int64
	started   bool

	idCounter uint64
	outputs   []any
	stats     Stats
}

var _ overlay.Core = (*Core)(nil)

// New returns a core for cfg, or an error naming the invalid field.
func New(cfg Config) (*Core, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	seed := binary.BigEndian.Uint64(cfg.Self.ID[:8])
	c := &Core{
		cfg:       cfg,
		log:       cfg.Logger.With("self", cfg.Self.ID.Short()),
		rand:      rand.New(rand.NewPCG(cfg.Seed, seed)),
		neighbors: make(map[peer.ID]*neighbor),
		seen:      newBoundedCache[struct{}](cfg.SeenCacheSize, cfg.SeenTTL),
		payloads:  newPayloadCache(cfg),
		missing:   newMissingSet(),

		lazyInterval: cfg.LazyBatchInterval,
	}
	if cfg.Expendable != nil {
		c.expendable = newPayloadCache(cfg)
	}
	return c, nil
}

// newPayloadCache returns a payload cache with cfg's bounds.
func newPayloadCache(cfg Config) *boundedCache[cachedPayload] {
	return newBoundedCache[cachedPayload](cfg.PayloadCacheSize, cfg.PayloadTTL).withByteLimit(cfg.PayloadCacheBytes,
		func(p cachedPayload) int {
			return len(p.msg.Payload) + len(p.msg.Signature) + len(p.msg.PublicKey) + PayloadOverhead
		})
}

// keep caches p under id. With Config.Expendable the two caches share the
// bounds: while they are full in all, the oldest expendable payload goes
// first, and only when none is left the oldest other one.
func (c *Core) keep(now time.Time, id MessageID, p cachedPayload) {
	cache := c.payloads
	if c.expendable == nil {
		cache.put(now, id, p)
		return
	}
	if c.cfg.Expendable(p.msg.Payload) {
		cache = c.expendable
	}
	if cache.lookup(id) == nil {
		cost := cache.costOf(p)
		for {
			count := c.payloads.len() + c.expendable.len()
			bytes := c.payloads.bytes + c.expendable.bytes
			if count == 0 || (count < c.cfg.PayloadCacheSize && bytes+cost <= c.cfg.PayloadCacheBytes) {
				break
			}
			if c.expendable.len() > 0 {
				c.expendable.popOldest()
			} else {
				c.payloads.popOldest()
			}
		}
	}
	cache.put(now, id, p)
}

// cached returns the payload kept for id, in either cache, and its cache.
func (c *Core) cached(now time.Time, id MessageID) (cachedPayload, *boundedCache[cachedPayload], bool) {
	if p, ok := c.payloads.get(now, id); ok {
		return p, c.payloads, true
	}
	if c.expendable != nil {
		if p, ok := c.expendable.get(now, id); ok {
			return p, c.expendable, true
		}
	}
	return cachedPayload{}, nil, false
}

// Step feeds one input to the core at time now: [Broadcast], [NeighborUp],
// [NeighborDown], [Leave], [overlay.Received] with a *[Gossip], *[IHave],
// *[Graft], *[Prune] or *[Summary], or [overlay.Tick]. Other inputs are ignored.
// Invalid messages are counted in [Stats].Refused and otherwise ignored.
func (c *Core) Step(now time.Time, input any) {
	if !c.started {
		c.started, c.startedAt = true, now.UnixMilli()
	}
	c.seen.expire(now)
	c.payloads.expire(now)
	if c.expendable != nil {
		c.expendable.expire(now)
	}
	switch in := input.(type) {
	case overlay.Received:
		c.receive(now, in)
	case overlay.Tick:
		c.tick(now)
	case Broadcast:
		c.broadcast(now, in)
	case NeighborUp:
		c.neighborUp(now, in.Peer)
	case NeighborDown:
		c.neighborDown(now, in.Peer)
	case Leave:
		c.leave(now)
	}
}

// Drain appends the outputs produced since the last call to dst and returns
// it: [overlay.Send] and [Deliver] values.
func (c *Core) Drain(dst []any) []any {
	dst = append(dst, c.outputs...)
	clear(c.outputs)
	c.outputs = c.outputs[:0]
	return dst
}

// NextDeadline returns when the core next needs an [overlay.Tick]: the end
// of the announcement batching interval or of the earliest missing-message
// timer.
func (c *Core) NextDeadline() (time.Time, bool) {
	deadline, ok := c.missing.nextDeadline()
	if c.flushPending && (!ok || c.flushAt.Before(deadline)) {
		return c.flushAt, true
	}
	return deadline, ok
}

// CheckBroadcast reports whether b would be accepted by Step: it returns an
// error wrapping [ErrPayloadTooLarge] for a payload over Config.MaxPayload.
func (c *Core) CheckBroadcast(b Broadcast) error {
	if len(b.Payload) > c.cfg.MaxPayload {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrPayloadTooLarge, len(b.Payload), c.cfg.MaxPayload)
	}
	return nil
}

// EagerPeers returns the neighbours that receive payloads, in arrival order.
func (c *Core) EagerPeers() []peer.Info { return c.peers(true) }

// LazyPeers returns the neighbours that receive announcements only, in
// arrival order.
func (c *Core) LazyPeers() []peer.Info { return c.peers(false) }

func (c *Core) peers(eager bool) []peer.Info {
	var out []peer.Info
	for _, n := range c.order {
		if n.eager == eager {
			out = append(out, n.info)
		}
	}
	return out
}

// Stats returns the core's counters.
func (c *Core) Stats() Stats { return c.stats }

// Seen reports whether the message id was broadcast or delivered here and is
// still remembered (for [Config.SeenTTL], within [Config.SeenCacheSize]).
// A message only announced by an IHAVE is not seen.
func (c *Core) Seen(now time.Time, id MessageID) bool { return c.seen.contains(now, id) }

// SeenTTL returns how long a seen message ID is remembered.
func (c *Core) SeenTTL() time.Duration { return c.cfg.SeenTTL }

func (c *Core) broadcast(now time.Time, b Broadcast) {
	if err := c.CheckBroadcast(b); err != nil {
		c.stats.BroadcastsDropped++
		c.log.Warn("plumtree: broadcast refused", "err", err)
		return
	}
	id := b.ID
	if id.IsZero() {
		id = c.newMessageID(now)
	}
	if c.seen.contains(now, id) {
		c.stats.BroadcastsDropped++
		c.log.Debug("plumtree: broadcast of a message already seen", "msg_id", id)
		return
	}
	c.stats.Broadcasts++
	c.seen.put(now, id, struct{}{})
	c.missing.remove(id)
	forward := &Gossip{ID: id, Round: 1, Origin: c.cfg.Self, Payload: slices.Clone(b.Payload), SentAt: now.UnixMilli()}
	c.sign(forward)
	c.keep(now, id, cachedPayload{msg: forward, round: forward.Round})
	c.eagerPush(forward, peer.ID{})
	c.relayToRoot(forward)
	c.lazyPush(now, Announcement{ID: id, Round: 1}, peer.ID{}, nil)
}

// newMessageID derives a random ID from the seeded generator, this node's ID,
// the time and a counter: repeatable in a simulation, distinct across
// restarts of a real node.
func (c *Core) newMessageID(now time.Time) MessageID {
	var buf [peer.IDLen + 24]byte
	copy(buf[:], c.cfg.Self.ID[:])
	binary.BigEndian.PutUint64(buf[peer.IDLen:], uint64(now.UnixNano()))
	binary.BigEndian.PutUint64(buf[peer.IDLen+8:], c.idCounter)
	binary.BigEndian.PutUint64(buf[peer.IDLen+16:], c.rand.Uint64())
	c.idCounter++
	sum := sha256.Sum256(buf[:])
	var id MessageID
	copy(id[:], sum[:])
	if id.IsZero() {
		id[0] = 1
	}
	return id
}

func (c *Core) neighborUp(now time.Time, p peer.Info) {
	if p.ID.IsZero() || p.ID == c.cfg.Self.ID {
		return
	}
	if n, ok := c.neighbors[p.ID]; ok {
		n.info = p
		return
	}
	c.lazyReset(now)
	n := &neighbor{info: p, eager: true}
	c.neighbors[p.ID] = n
	c.order = append(c.order, n)
	if c.cfg.RootedTree {
		c.treeNeighborUp(n)
	}
	c.sendSummary(now, n)
}

func (c *Core) neighborDown(now time.Time, id peer.ID) {
	n, ok := c.neighbors[id]
	if !ok {
		return
	}
	c.lazyReset(now)
	delete(c.neighbors, id)
	c.order = slices.DeleteFunc(c.order, func(other *neighbor) bool { return other == n })
	for _, m := range c.missing.byID {
		m.removeAnnouncer(id)
	}
	if c.cfg.RootedTree {
		if c.tree.parent == n {
			c.tree.parent = nil
		}
		c.treeRecompute(nil)
	}
}

// setEager applies the paper's eager and lazy moves; with
// Config.RootedTree the eager links follow the tree only (see tree.go).
func (c *Core) setEager(n *neighbor, eager bool) {
	if c.cfg.RootedTree {
		return
	}
	n.eager = eager
}

func (c *Core) send(to peer.Info, msg any) {
	c.outputs = append(c.outputs, overlay.Send{To: to, Msg: msg})
}

// eagerPush sends g to every eager neighbour but except.
func (c *Core) eagerPush(g *Gossip, except peer.ID) {
	for _, n := range c.order {
		if n.eager && n.info.ID != except {
			c.send(n.info, g)
			c.stats.PayloadsSent++
		}
	}
}

// eagerPushCached is eagerPush of a received payload, whose forwarded copy
// is built only when there is an eager neighbour to send it to: a leaf of
// the tree allocates nothing.
func (c *Core) eagerPushCached(p cachedPayload, except peer.ID) {
	var forward *Gossip
	for _, n := range c.order {
		if n.eager && n.info.ID != except {
			if forward == nil {
				forward = p.forward()
			}
			c.send(n.info, forward)
			c.stats.PayloadsSent++
		}
	}
}

func (c *Core) receive(now time.Time, in overlay.Received) {
	from := in.From
	var err error
	switch msg := in.Msg.(type) {
	case *Gossip:
		if msg == nil {
			err = fmt.Errorf("%w: nil GOSSIP", ErrInvalidMessage)
		} else if err = msg.validate(c.cfg.MaxPayload); err == nil {
			c.receiveGossip(now, from, msg)
		}
	case *IHave:
		if msg == nil {
			err = fmt.Errorf("%w: nil IHAVE", ErrInvalidMessage)
		} else if err = msg.validate(); err == nil {
			c.receiveIHave(now, from, msg)
		}
	case *Graft:
		if msg == nil {
			err = fmt.Errorf("%w: nil GRAFT", ErrInvalidMessage)
		} else if err = msg.validate(); err == nil {
			c.receiveGraft(now, from, msg)
		}
	case *Prune:
		c.receivePrune(from)
	case *Tree:
		if msg == nil {
			err = fmt.Errorf("%w: nil TREE", ErrInvalidMessage)
		} else if err = msg.validate(); err == nil {
			c.receiveTree(from, msg)
		}
	case *Summary:
		if msg == nil {
			err = fmt.Errorf("%w: nil SUMMARY", ErrInvalidMessage)
		} else if err = msg.validate(); err == nil {
			c.receiveSummary(now, from, msg)
		}
	default:
		return
	}
	if err != nil {
		c.stats.Refused++
		c.log.Debug("plumtree: message refused", "peer", from.ID.Short(), "err", err)
	}
}

func (c *Core) receiveGossip(now time.Time, from peer.Info, g *Gossip) {
	c.stats.PayloadsReceived++
	n := c.neighbors[from.ID]
	if n == nil {
		if g.Origin.ID != from.ID {
			// Pushed by a peer that takes this node for a tree link.
			c.answerStranger(from)
		} else {
			c.stats.RelaysReceived++
		}
	}
	if c.seen.contains(now, g.ID) {
		c.stats.DuplicatePayloads++
		if n != nil && !c.cfg.RootedTree {
			c.setEager(n, false)
			c.send(n.info, &Prune{})
			c.stats.PrunesSent++
		}
		c.treeRepairPush(n, g, false)
		return
	}
	if !c.checkSendTime(now, from, g) || !c.checkSignature(from, g) {
		return
	}
	c.seen.put(now, g.ID, struct{}{})
	var announcers []announcer
	recovered := false
	if m, ok := c.missing.remove(g.ID); ok {
		announcers = m.announcers
		if m.grafts > 0 {
			recovered = true
			c.stats.PayloadsRecovered++
			if m.summarized {
				c.stats.MessagesRecovered++
			}
		}
	}
	c.treeRepairPush(n, g, recovered)
	hops := c.clampHops(g.Round)
	if g.Origin.ID != c.cfg.Self.ID {
		c.outputs = append(c.outputs, Deliver{ID: g.ID, Origin: g.Origin, Hops: int(hops), Payload: g.Payload, SentAt: g.SentAt})
		c.stats.Delivered++
	}
	round := min(hops+1, MaxHops)
	cached := cachedPayload{msg: g, hops: hops, round: round, from: from.ID}
	c.keep(now, g.ID, cached)
	if n != nil {
		c.setEager(n, true)
		c.withdraw(n, g.ID)
	}
	c.eagerPushCached(cached, from.ID)
	c.lazyPush(now, Announcement{ID: g.ID, Round: round}, from.ID, announcers)
}

func (c *Core) receiveIHave(now time.Time, from peer.Info, msg *IHave) {
	n := c.neighbors[from.ID]
	if n == nil {
		c.stats.FromStrangers++
		return
	}
	c.stats.IHavesReceived++
	c.stats.AnnouncementsReceived += uint64(len(msg.Announcements))
	unseen := false
	for _, a := range msg.Announcements {
		a.Round = c.clampHops(a.Round)
		if c.seen.contains(now, a.ID) {
			c.withdraw(n, a.ID)
			if c.cfg.OptimizationThreshold > 0 && !c.cfg.RootedTree {
				c.optimize(now, n, a)
			}
			continue
		}
		unseen = true
		m := c.missing.get(a.ID)
		if m == nil {
			if c.missing.len() >= c.cfg.MaxMissing {
				c.stats.AnnouncementsDropped++
				continue
			}
			m = c.missing.add(a.ID, now.Add(c.cfg.IHaveTimeout))
		}
		m.addAnnouncer(from.ID, a.Round)
	}
	if unseen {
		c.lazyReset(now)
		c.treeRepairAnnounce(n)
	}
}

// optimize applies the paper's optimisation: lazy neighbour n announced a
// message that n could have brought at least OptimizationThreshold hops
// sooner than the eager neighbour it came from; swap the two links.
func (c *Core) optimize(now time.Time, n *neighbor, a Announcement) {
	if n.eager {
		return
	}
	cached, cache, ok := c.cached(now, a.ID)
	if !ok || cached.from.IsZero() || cached.from == n.info.ID {
		return
	}
	parent := c.neighbors[cached.from]
	if parent == nil || !parent.eager {
		return
	}
	if int(cached.hops)-int(a.Round) < c.cfg.OptimizationThreshold {
		return
	}
	c.lazyReset(now)
	c.setEager(n, true)
	c.send(n.info, &Graft{})
	c.stats.GraftsSent++
	c.setEager(parent, false)
	c.send(parent.info, &Prune{})
	c.stats.PrunesSent++
	c.stats.OptimizationSwaps++
	cached.from, cached.hops = n.info.ID, a.Round
	cache.update(a.ID, cached)
}

func (c *Core) receiveGraft(now time.Time, from peer.Info, msg *Graft) {
	n := c.neighbors[from.ID]
	if n == nil {
		c.stats.FromStrangers++
		return
	}
	c.stats.GraftsReceived++
	c.lazyReset(now)
	c.setEager(n, true)
	for _, id := range msg.IDs {
		cached, _, ok := c.cached(now, id)
		if !ok {
			c.stats.GraftsUnanswered++
			continue
		}
		c.withdraw(n, id)
		c.send(n.info, cached.forward())
		c.stats.PayloadsSent++
	}
}

func (c *Core) receivePrune(from peer.Info) {
	n := c.neighbors[from.ID]
	if n == nil {
		c.stats.FromStrangers++
		return
	}
	c.stats.PrunesReceived++
	c.setEager(n, false)
}
