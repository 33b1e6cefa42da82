package p2p

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2p-go/p2p/gossip"
	"github.com/p2p-go/p2p/internal/stack"
	"github.com/p2p-go/p2p/kv"
	"github.com/p2p-go/p2p/kv/boltstore"
	"github.com/p2p-go/p2p/node"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/plumtree"
	"github.com/p2p-go/p2p/transport"
	"github.com/p2p-go/p2p/transport/tcp"
)

// Broadcast topics of the root package (topic 2, the store's, is
// stack.StoreTopic).
const (
	topicApp  uint8 = 1
	topicKeys uint8 = 3 // keyring operations (keys.go)
)

// Stats reports what a node did.
type Stats struct {
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
	// Gossip counts the member list's probes, syncs and refutations.
	Gossip gossip.Stats
	// Plumtree counts payloads, duplicates, IHAVEs, GRAFTs and PRUNEs.
	Plumtree plumtree.Stats
	// Store counts the replicated store's anti-entropy and the records it
	// applied and refused (forged, revoked, held back, ...).
	Store kv.Stats
	// Transport holds the TCP transport's counters: handshakes refused by
	// reason, connections over a limit. Zero with Config.Transport set.
	Transport tcp.Stats
}

// Member is a node of the network: its ID and address, and the name and
// tags it set in its Config. All four come from the member's own record,
// signed with its key and checked by every node.
type Member struct {
	ID   peer.ID           `json:"id"`
	Addr string            `json:"addr"`
	Name string            `json:"name,omitempty"`
	Tags map[string]string `json:"tags,omitempty"`
}

// MemberEvent reports a change of the member list.
type MemberEvent struct {
	Member Member `json:"member"`
	// Kind is MemberJoin, MemberFail or MemberLeave.
	Kind MemberEventKind `json:"kind"`
}

// MemberEventKind is what happened to a member; in JSON it is the string
// itself ("join", "fail", "leave").
type MemberEventKind string

// The kinds of MemberEvent.
const (
	// MemberJoin: the member joined, or was found alive again.
	MemberJoin MemberEventKind = "join"
	// MemberFail: the member was found dead.
	MemberFail MemberEventKind = "fail"
	// MemberLeave: the member left on purpose.
	MemberLeave MemberEventKind = "leave"
)

// Broadcaster is a node of the Broadcaster overlay: every member receives
// every message sent with Send. Its methods are safe for concurrent use.
type Broadcaster struct {
	cfg    Config
	key    *peer.Key
	tr     transport.Transport
	core   *gossip.Core
	stack  *stack.Node
	rt     *node.Runtime
	store  *Store
	logger *slog.Logger

	reactors *reactorSet
	members  *listeners[MemberEvent]
	keys     *keyService

	invalidJSON atomic.Uint64
	pick        *lockedRand // SendOne's choices, seeded by Config.Seed

	// denied is the deny list (revoked nodes), replaced as a whole by the
	// loop goroutine and read by the runtime's Config.Denied and Members.
	denied atomic.Pointer[map[peer.ID]struct{}]
	// runtime is rt, for onDenyList, which may run before NewBroadcaster
	// has set rt.
	runtime atomic.Pointer[node.Runtime]

	joined     chan struct{}
	joinedOnce sync.Once

	// membersStop stops keepMembers, which closes membersDone (both nil
	// when the node keeps no member list).
	membersStop, membersDone chan struct{}

	mu      sync.Mutex // guards started, closed, membersStop, membersDone
	started bool
	closed  bool

	closeOnce sync.Once
	closeErr  error
}

// NewBroadcaster creates a node: it loads or creates its key in
// cfg.DataDir and starts listening, but does not join the network until
// Start. Register reactors between NewBroadcaster and Start so that no
// message is missed.
func NewBroadcaster(cfg Config) (*Broadcaster, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	key, tr, err := openIdentity(listenSettings{
		key: cfg.Key, transport: cfg.Transport, dataDir: cfg.DataDir,
		listenAddr: cfg.ListenAddr, advertiseAddr: cfg.AdvertiseAddr, secret: cfg.Secret,
		maxFrameSize: cfg.MaxMessageSize, logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	gcfg := cfg.Gossip
	if gcfg.Plumtree.IHaveTimeout == 0 {
		gcfg.Plumtree.IHaveTimeout = DefaultIHaveTimeout
	}
	if gcfg.Plumtree.GraftTimeout == 0 {
		gcfg.Plumtree.GraftTimeout = DefaultGraftTimeout
	}
	gcfg.Self = peer.Info{ID: key.ID(), Addr: tr.LocalAddr()}
	gcfg.Key, gcfg.Name, gcfg.Tags = key, cfg.Name, cfg.Tags
	if cfg.SignBroadcasts {
		gcfg.Plumtree.SigningKey, gcfg.Plumtree.RequireSignatures = key, true
	}
	gcfg.Seed = cfg.Seed
	if cfg.MaxMessageSize > 0 && gcfg.MaxPayload == 0 {
		gcfg.MaxPayload = cfg.MaxMessageSize - 1024
	}
	core, err := gossip.New(gcfg)
	if err != nil {
		tr.Close()
		return nil, err
	}
	backend := cfg.StoreBackend
	if backend == nil {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			tr.Close()
			return nil, fmt.Errorf("p2p: create data directory: %w", err)
		}
		bolt, err := boltstore.Open(filepath.Join(cfg.DataDir, boltstore.File))
		if err != nil {
			tr.Close()
			return nil, fmt.Errorf("p2p: open store: %w", err)
		}
		backend = bolt
	}
	storeCore, err := kv.New(kv.Config{Key: key, Admins: cfg.Admins, Backend: backend, Seed: cfg.Seed, Logger: cfg.Logger, MaxKeys: cfg.StoreMaxKeys})
	if err != nil {
		backend.Close()
		tr.Close()
		return nil, fmt.Errorf("p2p: %w", err)
	}
	b := &Broadcaster{
		cfg:      cfg,
		key:      key,
		tr:       tr,
		core:     core,
		stack:    stack.New(core, storeCore),
		logger:   cfg.Logger.With("node", key.ID().Short()),
		reactors: newReactorSet(cfg.ReactorQueueLen),
		members:  newListeners[MemberEvent](cfg.ReactorQueueLen),
		joined:   make(chan struct{}),
		pick:     newLockedRand(cfg.Seed),
	}
	b.store = newStore(b, storeCore, backend)
	b.setDenied(storeCore.Revocations())
	b.keys = newKeyService(broadcasterKeys{b}, tr, cfg.DataDir, b.logger)
	rt, err := node.Start(node.Config{
		Core:      b.stack,
		Transport: tr,
		Logger:    b.logger,
		OnOutput:  b.onOutput,
		Denied:    b.isDenied,
	})
	if err != nil {
		b.keys.close()
		backend.Close()
		tr.Close()
		return nil, err
	}
	b.rt = rt
	b.runtime.Store(rt)
	b.store.startWriter(rt)
	rt.CloseDenied() // for a revocation learnt before runtime was set
	return b, nil
}

// ID returns this node's ID.
func (b *Broadcaster) ID() peer.ID { return b.key.ID() }

// Addr returns the address other nodes use to reach this one.
func (b *Broadcaster) Addr() string { return b.tr.LocalAddr() }

// Start joins the network through the configured bootstrap addresses, or
// starts a new network when there are none. It returns once the join request
// is under way; Joined tells when the node is linked to the network.
func (b *Broadcaster) Start(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	if b.started {
		b.mu.Unlock()
		return nil
	}
	b.started = true
	join := gossip.Join{Contacts: b.cfg.Bootstrap}
	if b.cfg.keepsMembers() {
		kept, err := readMembersFile(b.cfg.DataDir)
		if err != nil {
			b.logger.Warn("cannot read the last known members", "err", err)
		}
		// Any member known before is a contact too: a node whose
		// bootstrap nodes restarted with it still finds the others.
		join.Contacts, join.Known = rejoinContacts(b.cfg.Bootstrap, kept)
		b.membersStop, b.membersDone = make(chan struct{}), make(chan struct{})
		go b.keepMembers(kept, b.membersStop)
	}
	b.mu.Unlock()
	if len(b.cfg.Secret) == 0 && b.cfg.Transport == nil {
		b.logger.Warn("no cluster secret: the network is encrypted but admits any node")
	}
	b.logger.Info("starting", "addr", b.Addr(), "bootstrap", b.cfg.Bootstrap, "known_members", len(join.Known))
	return b.rt.Step(ctx, join)
}

// Joined returns a channel closed once the node is linked to the network (the
// original framework's joined signal): for a node with bootstrap addresses,
// once a member of the network has taken it as a neighbour (a newcomer that
// joined through this node meanwhile does not count); for a node that starts
// a new network, once another node has joined it. Broadcasts sent before a
// node is linked do not reach it.
func (b *Broadcaster) Joined() <-chan struct{} { return b.joined }

// React registers a reactor, called for every message this node receives, and
// returns the function that removes it. Each reactor runs on its own
// goroutine with a queue of Config.ReactorQueueLen messages; when that queue
// is full, messages for that reactor are dropped and counted in
// Stats.ReactorDrops.
func (b *Broadcaster) React(r Reactor) (remove func()) { return b.reactors.add(r) }

// Store returns the node's replicated configuration store.
func (b *Broadcaster) Store() *Store { return b.store }

// Stats reports counters of the node.
func (b *Broadcaster) Stats() Stats {
	n := b.NodeStats()
	st := Stats{Runtime: n.Runtime, ReactorDrops: n.ReactorDrops, InvalidJSON: n.InvalidJSON, KeyringRefused: n.KeyringRefused, Transport: n.Transport}
	_ = b.rt.Do(context.Background(), func(time.Time) {
		st.Gossip = b.core.Stats()
		st.Plumtree = b.core.Plumtree().Stats()
		st.Store = b.store.core.Stats()
	})
	return st
}

// OnMemberEvent registers fn for membership changes, with the same queueing
// rules as reactors, and returns the function that removes it.
func (b *Broadcaster) OnMemberEvent(fn func(MemberEvent)) (remove func()) {
	return b.members.add(fn)
}

// Send sends v, encoded as JSON, to every member of the network.
//
// Send returns once the message is queued on the node's loop; it waits
// neither for the loop nor for the network. The loop takes local inputs
// (Send, SendOne, SendTo, Reply and the other calls) in the order they were
// queued, a waiting one before the received messages queued meanwhile, and
// hands each message to the connections of its neighbours. Up to 64
// local inputs may wait; a node offered more messages than its loop can
// carry fills that queue, and Send then waits for room: the rate achieved
// falls to what the loop carries, and no message is dropped for it. When
// ctx ends first Send returns ctx's error and the message is not sent; on
// a closed node it returns an error matching ErrClosed. Messages queued
// before Close are sent before the node leaves. Past the loop, each
// neighbour's connection buffers up to 256 KiB and then 1,024 messages; a
// message that finds both full (a neighbour too slow to read) is dropped
// for that neighbour and counted (Stats().Runtime.Dropped), and the
// neighbour normally fetches it from another one through Plumtree's
// IHAVE and GRAFT.
func (b *Broadcaster) Send(ctx context.Context, v any) error {
	data, err := b.encode(v)
	if err != nil {
		return err
	}
	return b.post(ctx, gossip.Broadcast{Topic: topicApp, Payload: data})
}

// SendOne sends v, encoded as JSON, to one neighbour chosen at random
// (seeded by Config.Seed).
func (b *Broadcaster) SendOne(ctx context.Context, v any) error {
	data, err := b.encode(v)
	if err != nil {
		return err
	}
	var neighbors []peer.Info
	if err := b.do(ctx, func(time.Time) { neighbors = b.core.Neighbors() }); err != nil {
		return err
	}
	if len(neighbors) == 0 {
		return ErrNoNeighbors
	}
	to := neighbors[b.pick.IntN(len(neighbors))]
	return b.post(ctx, gossip.Direct{To: to, Topic: topicApp, Payload: data})
}

// SendTo sends v, encoded as JSON, to the node at to (any member, not only a
// neighbour: the node dials it when needed).
func (b *Broadcaster) SendTo(ctx context.Context, to Member, v any) error {
	data, err := b.encode(v)
	if err != nil {
		return err
	}
	return b.post(ctx, gossip.Direct{To: peer.Info{ID: to.ID, Addr: to.Addr}, Topic: topicApp, Payload: data})
}

// Members returns the live members this node knows of, itself included;
// revoked nodes are left out.
func (b *Broadcaster) Members(ctx context.Context) ([]Member, error) {
	var entries []gossip.Entry
	if err := b.do(ctx, func(time.Time) { entries = b.core.MemberEntries() }); err != nil {
		return nil, err
	}
	entries = slices.DeleteFunc(entries, func(e gossip.Entry) bool { return e.Peer.ID != b.ID() && b.isDenied(e.Peer.ID) })
	out := make([]Member, len(entries))
	for i, e := range entries {
		out[i] = Member{ID: e.Peer.ID, Addr: e.Peer.Addr, Name: e.Name, Tags: e.Tags}
	}
	return out, nil
}

// Neighbors returns the members this node has open links to.
func (b *Broadcaster) Neighbors(ctx context.Context) ([]Member, error) {
	var infos []peer.Info
	if err := b.do(ctx, func(time.Time) { infos = b.core.Neighbors() }); err != nil {
		return nil, err
	}
	return toMembers(infos), nil
}

func toMembers(infos []peer.Info) []Member {
	out := make([]Member, len(infos))
	for i, p := range infos {
		out[i] = Member{ID: p.ID, Addr: p.Addr}
	}
	return out
}

// Close leaves the network politely (its neighbours and the member list
// learn at once), then stops every goroutine and closes the transport. It may
// be called more than once.
func (b *Broadcaster) Close() error {
	b.closeOnce.Do(func() {
		b.keys.close()
		b.mu.Lock()
		started := b.started
		b.closed = true
		membersStop, membersDone := b.membersStop, b.membersDone
		b.mu.Unlock()
		if membersStop != nil {
			close(membersStop)
			<-membersDone
		}
		if started {
			ctx, cancel := context.WithTimeout(context.Background(), b.cfg.LeaveTimeout)
			if err := b.rt.Step(ctx, gossip.Leave{}); err == nil {
				_ = b.rt.Flush(ctx)
			}
			cancel()
		}
		b.closeErr = b.rt.Close()
		b.reactors.close()
		b.members.close()
		if err := b.store.close(); err != nil && b.closeErr == nil {
			b.closeErr = err
		}
	})
	return b.closeErr
}

func (b *Broadcaster) encode(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("p2p: encode message: %w", err)
	}
	if max := b.core.MaxPayload(); len(data) > max {
		return nil, fmt.Errorf("%w: %d bytes of JSON, limit %d", ErrTooLarge, len(data), max)
	}
	return data, nil
}

// runtimeErr returns the error of a node.Runtime call as the overlays
// report it: a closed runtime answers ErrClosed.
func runtimeErr(err error) error {
	if errors.Is(err, node.ErrClosed) {
		return ErrClosed
	}
	return err
}

func (b *Broadcaster) step(ctx context.Context, input any) error {
	return runtimeErr(b.rt.Step(ctx, input))
}

// post queues input for the core without waiting for the loop to step it
// (see Send).
func (b *Broadcaster) post(ctx context.Context, input any) error {
	return runtimeErr(b.rt.Post(ctx, input))
}

func (b *Broadcaster) do(ctx context.Context, fn func(time.Time)) error {
	return runtimeErr(b.rt.Do(ctx, fn))
}

// onOutput runs during a turn of the runtime's loop (on its goroutine or on
// the reader goroutine that steps what it read, never two at once) and must
// not block.
func (b *Broadcaster) onOutput(now time.Time, out any) {
	switch out := out.(type) {
	case gossip.Deliver:
		if out.Topic == topicKeys {
			b.keys.deliver(out.Origin, out.Direct, out.Payload)
			break
		}
		if out.Topic != topicApp {
			break
		}
		if !validJSON(out.Payload) {
			// Only a modified or hostile peer sends this: Send and Reply
			// encode JSON. Reactors are promised JSON, so drop it.
			b.invalidJSON.Add(1)
			b.logger.Warn("message is not JSON, dropped", "peer", out.Origin.ID.Short(), "direct", out.Direct, "bytes", len(out.Payload))
			break
		}
		b.reactors.dispatch(b.message(out))
	case gossip.Joined:
		b.joinedOnce.Do(func() { close(b.joined) })
		b.logger.Info("joined the network")
	case gossip.MemberUp:
		b.members.dispatch(MemberEvent{Member: Member{ID: out.Peer.ID, Addr: out.Peer.Addr, Name: out.Name, Tags: out.Tags}, Kind: MemberJoin})
	case gossip.IncarnationAttack:
		// Reported once per node (Stats.Gossip.IncarnationAttacks counts
		// them all): a peer relayed a forged claim that this node failed.
		b.logger.Warn("forged claim that this node failed, refuted", "peer", out.From.ID.Short(), "claimed_incarnation", out.Claimed, "own_incarnation", out.Own)
	case gossip.MemberDown:
		kind := MemberFail
		if out.Left {
			kind = MemberLeave
		}
		b.members.dispatch(MemberEvent{Member: Member{ID: out.Peer.ID, Addr: out.Peer.Addr, Name: out.Name, Tags: out.Tags}, Kind: kind})
	case kv.Persist:
		b.store.persist(out)
	case kv.Result:
		b.store.result(out)
	case kv.Changed:
		b.store.changed(out)
	case kv.DenyList:
		b.onDenyList(out)
	case gossip.Failed:
		b.logger.Warn("request failed", "err", out.Err)
	}
}

func (b *Broadcaster) message(d gossip.Deliver) *Message {
	origin := d.Origin
	return &Message{
		Data:     json.RawMessage(d.Payload),
		From:     origin.ID,
		FromAddr: origin.Addr,
		Direct:   d.Direct,
		Hops:     d.Hops,
		replier:  b,
		origin:   origin,
	}
}

// replyTo implements replier: Message.Reply of a message b delivered.
func (b *Broadcaster) replyTo(ctx context.Context, origin peer.Info, v any) error {
	data, err := b.encode(v)
	if err != nil {
		return err
	}
	return b.post(ctx, gossip.Direct{To: origin, Topic: topicApp, Payload: data})
}
