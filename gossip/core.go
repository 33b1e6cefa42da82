package gossip

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/p2p-go/p2p/hyparview"
	"github.com/p2p-go/p2p/internal/compose"
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/plumtree"
)

// TopicMembership is the broadcast topic this package uses for its own
// membership events; Broadcast refuses it.
const TopicMembership uint8 = 0

// ErrTooLarge is returned (in a Failed output) for a payload over MaxPayload.
var ErrTooLarge = errors.New("gossip: payload too large")

// probeStrikes is the number of consecutive unanswered probes (each given
// ProbeTimeout) after which a member is declared dead.
const probeStrikes = 2

// minSyncInterval is the sync period right after a join or a sync that
// brought news; it doubles after each round up to Config.SyncInterval.
const minSyncInterval = time.Second

// Join asks the core to join the network through any of Contacts (addresses
// of nodes already in it). No contacts starts a new network.
//
// Known lists members the node knew before (a restarted node's last member
// list): the core exchanges member lists with up to maxKnownSyncs of them at
// once, so that a node whose contacts restarted with it finds the others
// within a round trip, and they find it.
type Join struct {
	Contacts []string
	Known    []peer.Info
}

// maxKnownSyncs bounds the member-list exchanges a Join starts with known
// members: enough to reach every member of a small cluster at once, and some
// of a large one, whose broadcasts then do the rest.
const maxKnownSyncs = 32

// Leave asks the core to leave politely: it announces its departure and
// disconnects from its neighbours.
type Leave struct{}

// Broadcast asks the core to send Payload to every member under Topic
// (which must not be TopicMembership).
type Broadcast struct {
	Topic   uint8
	Payload []byte
}

// Direct asks the core to send Payload to one peer, dialling it when it is not
// a neighbour.
type Direct struct {
	To      peer.Info
	Topic   uint8
	Payload []byte
}

// Deliver is the output for a message received: a broadcast (Direct false)
// delivered once per node, or a direct message.
type Deliver struct {
	ID      plumtree.MessageID
	Topic   uint8
	Origin  peer.Info // the original sender
	Hops    int
	Payload []byte
	Direct  bool
}

// Failed reports a local request that could not be carried out.
type Failed struct {
	Request any
	Err     error
}

// NeighborUp reports a new active neighbour.
type NeighborUp struct{ Peer peer.Info }

// NeighborDown reports the loss of an active neighbour.
type NeighborDown struct{ Peer peer.ID }

// MemberUp reports a member that joined (or came back), with the name and
// tags of its record.
type MemberUp struct {
	Peer peer.Info
	Name string
	Tags map[string]string
}

// IncarnationAttack reports, once per Core, a claim about this node carrying
// an incarnation above its own: no honest node can make one (the node's
// incarnations come from its own signed records), so someone forged it. The
// node refuted it; Stats.IncarnationAttacks counts them all.
type IncarnationAttack struct {
	From    peer.Info // the peer that delivered the claim
	Claimed uint64
	Own     uint64
}

// MemberDown reports a member that failed (Left false) or left (Left true),
// with the name and tags of its record.
type MemberDown struct {
	Peer peer.Info
	Left bool
	Name string
	Tags map[string]string
}

// Joined reports that the node is linked to the network (see
// hyparview.Joined).
type Joined struct{}

// Core is the Broadcaster overlay's state machine. It is not safe for
// concurrent use: one driver steps it.
type Core struct {
	cfg  Config
	hv   *hyparview.Core
	pt   *plumtree.Core
	rand *rand.Rand

	self        Entry
	members     *memberTable
	diedAt      map[peer.ID]time.Time // when members not alive became dead or left
	probes      map[peer.ID]*probe
	suspicions  map[peer.ID]*suspicion // others' claims awaiting refutation
	nextSync    time.Time
	syncBackoff time.Duration // current sync period, minSyncInterval..SyncInterval
	nextProbe   time.Time
	probeRound  probeRound // the random probe round over all members, SWIM-style
	joined      bool
	joinedAt    time.Time
	incarnation uint64
	// attackReported: an IncarnationAttack was output (once per Core).
	attackReported bool
	samples        [recentSamples]sample // recent broadcasts, for island detection
	sampleNext     int
	nextBridge     time.Time
	missed         map[plumtree.MessageID]time.Time // broadcasts of other islands already acted on, until when

	linked map[peer.ID]string // peers with a live link (ID and address proven by its handshake)
	// holders maps an address to the member last adopted alive there
	// (signed cores only; checked against the table before use).
	holders map[string]peer.ID
	held    []heldOutput // HyParView outputs waiting for a record to vouch for their peer
	intro   introductions
	// checks counts the failed signature checks of the message being
	// handled (see budget.go).
	checks messageChecks

	// parts composes HyParView and Plumtree (see compose.go); now is the
	// time of the step it runs, for the routing of their outputs.
	parts          compose.Composer
	hvPart, ptPart compose.Part
	now            time.Time

	outputs []any
	stats   Stats
}

type probe struct {
	random      bool   // started by the SWIM-style round, not by a lost link
	strikes     int    // probes that went unanswered so far
	incarnation uint64 // the member's when the probe started
	nonce       uint64
	deadline    time.Time
	info        peer.Info

	// A random probe unanswered while its link stayed up (linkDown
	// false) is retried once before its first strike (retried): see
	// probeExpired.
	linkDown, retried bool
}

// Stats counts what the composite did (its sub-cores keep their own).
type Stats struct {
	DirectIn, DirectOut    uint64
	ProbesSent, ProbesLost uint64
	Syncs                  uint64 // digest exchanges started
	FullSyncs              uint64 // member lists sent (whole, or the buckets that differ)
	Refutations            uint64
	// SignaturesChecked counts member-record signatures verified (a record
	// already held is not verified again); InvalidRecords counts records
	// refused because their member did not sign them (forged, altered or
	// unsigned); IncarnationAttacks counts claims about this node above
	// its own incarnation.
	SignaturesChecked, InvalidRecords, IncarnationAttacks uint64
	// UnvouchedDials counts HyParView messages not sent because no signed
	// record vouched for their peer's address (see vouch.go).
	UnvouchedDials uint64
	// AddressTaken counts live records refused because another live member
	// (or this node) holds their address: one address is one listener, so
	// a second member there was invented (see addresses.go).
	AddressTaken uint64
	// Unintroduced counts records of members this node did not hold,
	// refused because no two members it holds introduced them (see
	// introductions.go).
	Unintroduced uint64
	// StaleRecords counts entries about members this node holds that could
	// change nothing (an older incarnation, or the held one without a
	// state that beats the held state), refused before any signature
	// check: mostly relayed old news, which is normal.
	// SignatureBudgetRefused counts entries refused unverified because
	// the message carrying them (a member list, a membership broadcast)
	// had already failed Config.SignatureFailures signature checks;
	// DuplicateRecords counts entries refused unverified because a record
	// of their member was already verified earlier in the same member
	// list (see budget.go).
	StaleRecords, SignatureBudgetRefused, DuplicateRecords uint64
	// IntroductionsSent counts this node's introductions of its
	// neighbours; IntroductionsReceived those of this node by others.
	IntroductionsSent, IntroductionsReceived uint64
	// InvalidIntroductions counts introductions in other members' records
	// whose signature failed its check: dropped, never kept nor relayed
	// (forged by an insider; see budget.go).
	InvalidIntroductions uint64
	// Suspicions counts claims of another node (suspect or dead) about a
	// member this node held alive, each given time to be refuted (see
	// suspicion.go); SuspicionsCleared those refuted, or whose member
	// answered this node, so that it never announced the member failed.
	Suspicions, SuspicionsCleared uint64
	Rejoins                       uint64 // joins through a member found alive again
	Bridges                       uint64 // joins through a probed member in another island, or by a lonely node
	IslandsFound                  uint64 // probes that showed the peer in another island
	Beacons                       uint64 // broadcasts sent only so that islands can be told apart
	Dropped                       uint64 // malformed or oversized payloads ignored
	// RelaysUnresolved counts broadcasts not relayed to the tree's root
	// because no live member record gives the root's address (see
	// relayToRoot).
	RelaysUnresolved uint64
	// SilentRetries counts random probes unanswered once over a live
	// link, probed again before any SUSPECT claim (see probeExpired).
	SilentRetries uint64
}

// New returns a Core for cfg, or an error wrapping ErrConfig (or the
// HyParView or Plumtree package's ErrConfig) that names the invalid field.
func New(cfg Config) (*Core, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	cfg.HyParView.Self = cfg.Self
	cfg.HyParView.Seed = cfg.Seed ^ 0x9e3779b97f4a7c15
	hv, err := hyparview.New(cfg.HyParView)
	if err != nil {
		return nil, fmt.Errorf("gossip: %w", err)
	}
	cfg.Plumtree.Self = cfg.Self
	cfg.Plumtree.RootedTree = cfg.Tree != TreePaper
	cfg.Plumtree.RelayToRoot = cfg.Tree == TreeRootedRelay
	cfg.Plumtree.Seed = cfg.Seed ^ 0xbf58476d1ce4e5b9
	cfg.Plumtree.Expendable = isMembership
	if cfg.Plumtree.MaxPayload == 0 {
		cfg.Plumtree.MaxPayload = cfg.MaxPayload + 1
	}
	pt, err := plumtree.New(cfg.Plumtree)
	if err != nil {
		return nil, fmt.Errorf("gossip: %w", err)
	}
	c := &Core{
		cfg:        cfg,
		hv:         hv,
		pt:         pt,
		rand:       rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x94d049bb133111eb)),
		members:    newMemberTable(cfg.Seed, cfg.Key != nil),
		diedAt:     map[peer.ID]time.Time{},
		probes:     map[peer.ID]*probe{},
		missed:     map[plumtree.MessageID]time.Time{},
		linked:     map[peer.ID]string{},
		holders:    map[string]peer.ID{},
		suspicions: map[peer.ID]*suspicion{},
	}
	c.addParts()
	return c, nil
}

var _ overlay.Core = (*Core)(nil)

// Self returns this node's peer info.
func (c *Core) Self() peer.Info { return c.cfg.Self }

// Neighbors returns the active view: the peers this node has open links to.
// With a key, a neighbour shows only once a link or its signed record
// vouches for its address (see vouch.go).
func (c *Core) Neighbors() []peer.Info {
	active := c.hv.ActiveView()
	out := active[:0:0]
	for _, p := range active {
		if c.vouched(p) {
			out = append(out, p)
		}
	}
	return out
}

// PassivePeers returns HyParView's passive view.
func (c *Core) PassivePeers() []peer.Info { return c.hv.PassiveView() }

// Members returns the live members this node knows of, itself included.
func (c *Core) Members() []peer.Info {
	out := make([]peer.Info, 1, c.members.alive+1)
	out[0] = c.cfg.Self
	c.members.each(func(m member) bool {
		if m.state == StateAlive {
			out = append(out, m.rec.entry.Peer)
		}
		return true
	})
	slices.SortFunc(out[1:], func(a, b peer.Info) int { return a.ID.Compare(b.ID) })
	return out
}

// MemberEntries returns the records of the live members this node knows
// of, itself first, then by ID. The entries' tags are the caller's; their
// public keys and signatures are shared with the core and must not be
// modified.
func (c *Core) MemberEntries() []Entry {
	out := make([]Entry, 1, c.members.alive+1)
	out[0] = c.self
	if c.self.Peer.ID.IsZero() {
		out[0] = Entry{Peer: c.cfg.Self, State: StateAlive, Name: c.cfg.Name, Tags: c.cfg.Tags}
	}
	out[0].Tags = maps.Clone(out[0].Tags)
	c.members.each(func(m member) bool {
		if m.state == StateAlive {
			e := m.entry()
			e.Tags = maps.Clone(e.Tags)
			out = append(out, e)
		}
		return true
	})
	slices.SortFunc(out[1:], func(a, b Entry) int { return a.Peer.ID.Compare(b.Peer.ID) })
	return out
}

// MaxPayload returns the largest payload Broadcast and Direct accept.
func (c *Core) MaxPayload() int { return c.cfg.MaxPayload }

// HyParView returns the membership core, for inspection.
func (c *Core) HyParView() *hyparview.Core { return c.hv }

// Plumtree returns the broadcast core, for inspection.
func (c *Core) Plumtree() *plumtree.Core { return c.pt }

// Stats returns the composite's counters.
func (c *Core) Stats() Stats { return c.stats }

// Drain implements overlay.Core.
func (c *Core) Drain(dst []any) []any {
	dst = append(dst, c.outputs...)
	clear(c.outputs)
	c.outputs = c.outputs[:0]
	if cap(c.outputs) > maxKeptOutputs {
		// A sync that brought thousands of members grew the slice:
		// do not keep that much per node (10,000 simulated nodes
		// would keep 1.6 GB of it).
		c.outputs = nil
	}
	return dst
}

// maxKeptOutputs is the largest output slice a core keeps between steps.
const maxKeptOutputs = 256

// NextDeadline implements overlay.Core.
func (c *Core) NextDeadline() (time.Time, bool) {
	var next time.Time
	consider := func(t time.Time, ok bool) {
		if ok && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	consider(c.hv.NextDeadline())
	consider(c.pt.NextDeadline())
	if len(c.probes) > 0 { // ranging over an empty map still starts an iterator
		for _, p := range c.probes {
			consider(p.deadline, true)
		}
	}
	consider(c.nextSync, c.joined)
	consider(c.nextHeld())
	consider(c.nextSuspicion())
	consider(c.nextProbe, c.joined && c.cfg.ProbeInterval > 0)
	return next, !next.IsZero()
}

// Step implements overlay.Core.
func (c *Core) Step(now time.Time, input any) {
	// Each input is a message of its own for the cap on failed signature
	// checks (see budget.go).
	c.newMessage()
	switch in := input.(type) {
	case overlay.Received:
		if c.cfg.Key != nil {
			// Only a core with a key checks addresses (see vouched).
			if addr, ok := c.linked[in.From.ID]; ok && addr != in.From.Addr || !ok && len(c.linked) < maxLinked {
				c.linked[in.From.ID] = in.From.Addr
				c.vouchFor(in.From.ID, false)
			}
		}
		c.hv.Heard(now, in.From.ID)
		c.routeReceived(now, input, in)
	case overlay.LinkDown:
		delete(c.linked, in.Peer)
		delete(c.intro.sent, in.Peer)
		if p := c.probes[in.Peer]; p != nil && !in.Peer.IsZero() {
			// The link carrying the probe went down (it may have been
			// closed by this node: HyParView releases one-off links):
			// count a strike now rather than at the deadline.
			p.deadline = now
			p.linkDown = true
			if p.random && errors.Is(in.Err, overlay.ErrDialFailed) && c.nextProbe.After(now) {
				// A random probe that could not even be dialled: many
				// members may be down at once (a mass failure). Go on
				// to the next member now rather than a ProbeInterval
				// later, so that a sweep of the dead takes as long as
				// their failed dials, not members × ProbeInterval.
				c.nextProbe = now
			}
		} else if errors.Is(in.Err, overlay.ErrDialFailed) && !in.Peer.IsZero() && !c.isNeighbor(in.Peer) {
			// A member that cannot even be dialled (HyParView trying
			// its passive view after a mass failure, say) is probed
			// now rather than when the random probe round reaches it:
			// the dead leave the member lists within the bound even
			// when none of them was a survivor's neighbour.
			c.startProbe(now, in.Peer)
		}
		c.parts.Input(c.hvPart, in)
	case overlay.Tick:
		c.parts.Input(c.hvPart, in)
		c.parts.Input(c.ptPart, in)
		c.tick(now)
	case Join:
		c.incarnation = uint64(now.UnixNano())
		c.self = Entry{Peer: c.cfg.Self, Incarnation: c.incarnation, State: StateAlive, Name: c.cfg.Name, Tags: c.cfg.Tags}
		c.sign(&c.self)
		// Plumtree's first input marks when the node started: it recovers
		// the broadcasts sent from then on (plumtree doc, Recovery), so
		// start it now rather than at its first link.
		c.parts.Input(c.ptPart, overlay.Tick{})
		c.parts.Input(c.hvPart, hyparview.Join{Contacts: in.Contacts})
		c.syncKnown(in.Known)
	case Leave:
		c.self.State = StateLeft
		c.sign(&c.self)
		c.announce(c.self)
		// The broadcast reaches the others through eager links, or
		// through lazy ones that graft it from this node, which is
		// about to go: tell each neighbour directly too, which
		// announces it on this node's behalf.
		for _, n := range c.Neighbors() {
			c.outputs = append(c.outputs, overlay.Send{To: n, Msg: &Sync{Full: true, Reply: true, Entries: []Entry{c.self}}})
		}
		// Plumtree hands its lazy neighbours the payloads of this node's
		// recent broadcasts, which they could only graft from it.
		c.parts.Input(c.ptPart, plumtree.Leave{})
		c.parts.Input(c.hvPart, hyparview.Leave{})
	case Broadcast:
		if in.Topic == TopicMembership || len(in.Payload) > c.cfg.MaxPayload {
			c.outputs = append(c.outputs, Failed{Request: in, Err: fmt.Errorf("%w or reserved topic: %d bytes, topic %d", ErrTooLarge, len(in.Payload), in.Topic)})
			break
		}
		c.parts.Input(c.ptPart, plumtree.Broadcast{Payload: withTopic(in.Topic, in.Payload)})
	case Direct:
		if len(in.Payload) > c.cfg.MaxPayload {
			c.outputs = append(c.outputs, Failed{Request: in, Err: fmt.Errorf("%w: %d bytes", ErrTooLarge, len(in.Payload))})
			break
		}
		c.stats.DirectOut++
		c.outputs = append(c.outputs, overlay.Send{To: in.To, Msg: &DirectMessage{Topic: in.Topic, Payload: in.Payload}})
	}
	c.run(now)
	if len(c.held) > 0 {
		// Records learnt in this step may vouch for held messages, and
		// refusals queue LinkDowns for HyParView.
		c.releaseHeld(now)
		c.run(now)
	}
}

// syncKnown starts member-list exchanges with up to maxKnownSyncs of known,
// chosen at random.
func (c *Core) syncKnown(known []peer.Info) {
	var targets []peer.Info
	for _, p := range known {
		if !p.ID.IsZero() && p.ID != c.cfg.Self.ID && p.Addr != "" && len(p.Addr) <= hyparview.MaxAddrLen {
			targets = append(targets, p)
		}
	}
	c.rand.Shuffle(len(targets), func(i, j int) { targets[i], targets[j] = targets[j], targets[i] })
	for _, p := range targets[:min(len(targets), maxKnownSyncs)] {
		c.sendSync(p)
	}
}

// syncSoon brings the next member-list sync forward to minSyncInterval from
// now, backing off again while rounds bring nothing new.
func (c *Core) syncSoon(now time.Time) {
	c.syncBackoff = minSyncInterval
	if next := now.Add(c.syncBackoff); c.joined && next.Before(c.nextSync) {
		c.nextSync = next
	}
}

func (c *Core) receive(now time.Time, in overlay.Received) {
	switch msg := in.Msg.(type) {
	case *DirectMessage:
		if len(msg.Payload) > c.cfg.MaxPayload {
			c.stats.Dropped++
			return
		}
		c.stats.DirectIn++
		c.outputs = append(c.outputs, Deliver{Topic: msg.Topic, Origin: in.From, Payload: msg.Payload, Direct: true})
	case *Probe:
		if len(msg.Recent) > maxRecent {
			c.stats.Dropped++
			return
		}
		c.outputs = append(c.outputs, overlay.Send{To: in.From, Msg: &ProbeReply{Nonce: msg.Nonce, Recent: c.recent(now)}})
		if msg.Claim != 0 {
			// Someone claims this node suspect or dead: refute it.
			c.refuteFrom(in.From, msg.Claim)
		}
		c.checkRecent(now, in.From, msg.Recent)
	case *ProbeReply:
		if len(msg.Recent) > maxRecent {
			c.stats.Dropped++
			return
		}
		if p := c.probes[in.From.ID]; p != nil && p.nonce == msg.Nonce {
			delete(c.probes, in.From.ID)
			// It answered: whatever others claim, it is reachable
			// from here (its refutation is on its way).
			c.clearSuspicion(in.From.ID)
			if p.random && len(c.hv.ActiveView()) == 0 {
				// A node left with no neighbour at all (its passive
				// view dead, its bootstrap contacts gone) joins again
				// through any member it finds alive.
				c.bridge(now, in.From)
			}
			c.checkRecent(now, in.From, msg.Recent)
		}
	case *Vouch:
		c.receiveVouch(in.From, msg)
	case *Sync:
		if len(msg.Entries) > c.cfg.MaxMembers || (len(msg.Digest) > 0 && !validBuckets(len(msg.Digest))) {
			c.stats.Dropped++
			return
		}
		if m, ok := c.members.get(in.From.ID); ok && m.state == StateDead && !c.isNeighbor(in.From.ID) {
			// A member we took for dead answers: a partition has healed.
			// Join through it so that the two sides' overlays reconnect.
			c.stats.Rejoins++
			c.outputs = append(c.outputs, overlay.Send{To: in.From, Msg: &hyparview.JoinMsg{}})
		}
		if !msg.Full {
			// A digest: answer with the entries of the buckets where
			// ours differs, if any.
			if len(msg.Digest) == 0 {
				c.sendFullSync(in.From, false)
			} else if differ := c.members.differingBuckets(c.self, msg.Digest); differ != nil {
				c.sendBuckets(in.From, false, differ)
			}
			return
		}
		news := c.learnList(now, msg.Entries, in.From)
		if news {
			// The lists differed: sync again soon, backing off again
			// while rounds bring nothing new.
			c.syncSoon(now)
		}
		switch {
		case msg.Reply:
		case len(msg.Digest) > 0:
			// The answer to this node's digest: send back the entries
			// of the buckets that still differ (where this node knows
			// better), if any.
			if differ := c.members.differingBuckets(c.self, msg.Digest); differ != nil {
				c.sendBuckets(in.From, true, differ)
			}
		default:
			c.sendFullSync(in.From, true)
		}
	}
}
