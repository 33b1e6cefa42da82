package p2p

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2p-go/p2p/kademlia"
	"github.com/p2p-go/p2p/node"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport"
	"github.com/p2p-go/p2p/transport/tcp"
)

// Defaults of a DHT node's runtime (package node), for the fields of
// node.Config a DHT sets differently from a Broadcaster.
const (
	// DefaultDHTSendQueueLen is the number of messages queued for one
	// connection. A DHT node holds a connection to every peer it talked to
	// recently (hundreds in a large network) but sends each a few requests
	// at a time (at most about one per replication lookup of a maintenance
	// round, of which there are at most 100), so it queues less than a
	// Broadcaster's links might: a larger per-connection buffer made the
	// garbage collector's work grow with the number of connections.
	DefaultDHTSendQueueLen = 1024
	// DefaultDHTHighWater and DefaultDHTLowWater are the connection
	// manager's marks (see node.Config.HighWater). A Kademlia node talks to
	// many peers once (a lookup contacts 20 to 35) and to few of them again
	// soon, so it keeps fewer connections than a Broadcaster node: reopening
	// one costs a handshake, about a millisecond on a LAN. At 32, 500 nodes
	// in one process hold at most 16,000 sockets; at the node package's
	// 128, about 100 each, 200 nodes ran out of file descriptors.
	DefaultDHTHighWater = 32
	DefaultDHTLowWater  = 24
	// DefaultDHTGracePeriod, twice the request timeout
	// (kademlia.DefaultRPCTimeout), spares a connection that carries a
	// request waiting for its reply; longer, as the node package's 10 s,
	// every node joining a large network keeps every connection its join
	// opened.
	DefaultDHTGracePeriod = 2 * time.Second
	// DefaultJoinRetry is how long a DHT node whose bootstrap nodes did not
	// answer waits before it tries them again (the Broadcaster's overlay
	// retries its join every second too).
	DefaultJoinRetry = time.Second
)

// DHTConfig configures a DHT node. Zero fields take the defaults documented
// on Config (DefaultListenAddr, DefaultDataDir, DefaultReactorQueueLen) and
// in package kademlia.
type DHTConfig struct {
	// Bootstrap lists addresses ("host:port") of nodes already in the
	// network; Start joins through every one that answers, in the
	// background, trying again every DefaultJoinRetry until one does.
	// Empty starts a new network.
	Bootstrap []string
	// ListenAddr is the TCP address to listen on (default
	// DefaultListenAddr; port 0 picks a free port).
	ListenAddr string
	// AdvertiseAddr is the address other nodes dial to reach this one
	// (default: the address actually listened on).
	AdvertiseAddr string
	// DataDir holds the node key (node.key, mode 0600), which is also the
	// key that signs the node's records: a node that keeps its DataDir
	// keeps its records' keys (default DefaultDataDir). Records live in
	// the network, not on disk.
	DataDir string
	// Secret is the cluster secret (SecretLen bytes, see ParseSecret);
	// nodes with another secret are refused during the handshake. Empty:
	// encrypted but open to any node, which Start logs.
	Secret []byte
	// Logger receives the node's logs (nil discards them).
	Logger *slog.Logger
	// ReactorQueueLen: see DefaultReactorQueueLen.
	ReactorQueueLen int
	// MaxMessageSize is the largest frame accepted on the wire (default 1
	// MiB). Messages and record values have their own, smaller limits in
	// Kademlia (64 KiB by default).
	MaxMessageSize int
	// Kademlia tunes the protocol (k, α, timeouts, record limits); its
	// Self, Signer and Logger are set by the node, and a zero Seed is
	// replaced by the node's Seed.
	Kademlia kademlia.Config
	// Key overrides the key kept in DataDir (for tests and embedding).
	Key *peer.Key
	// Transport overrides the TCP transport (for tests over package
	// transport/memnet). The node closes it on Close.
	Transport transport.Transport
	// Seed seeds the node's random choices: the protocol's and SendOne's
	// (default: random).
	Seed uint64

	// idleTimeout overrides the runtime's IdleTimeout (tests that run
	// hundreds of nodes in one process close idle links sooner).
	idleTimeout time.Duration
}

// withDefaults returns a copy of c with zero fields replaced by their
// defaults, or an error wrapping ErrConfig that names the invalid field.
func (c DHTConfig) withDefaults() (DHTConfig, error) {
	if c.ListenAddr == "" {
		c.ListenAddr = DefaultListenAddr
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.ReactorQueueLen == 0 {
		c.ReactorQueueLen = DefaultReactorQueueLen
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if err := checkSecret("DHTConfig", c.Secret); err != nil {
		return c, err
	}
	if c.ReactorQueueLen < 0 {
		return c, fmt.Errorf("%w: DHTConfig.ReactorQueueLen must not be negative, got %d", ErrConfig, c.ReactorQueueLen)
	}
	if c.MaxMessageSize < 0 {
		return c, fmt.Errorf("%w: DHTConfig.MaxMessageSize must not be negative, got %d", ErrConfig, c.MaxMessageSize)
	}
	if c.Seed == 0 {
		c.Seed = randomSeed()
	}
	return c, nil
}

// DHTRecord is a value read from the DHT.
type DHTRecord struct {
	// Key is where the record lives: SHA-256(writer key || name) for a
	// record written with Put, SHA-256(value) for PutImmutable.
	Key peer.ID `json:"key"`
	// Value is the JSON the writer passed to Put or PutImmutable (a record
	// written by another program may hold any bytes).
	Value []byte `json:"value"`
	// Writer is the ID of the node whose key signed the record; zero for
	// an immutable record.
	Writer peer.ID `json:"writer"`
	// Name is the writer's name for the record (empty for an immutable
	// record).
	Name string `json:"name,omitempty"`
	// Seq is the record's version: a later Put of the same name has a
	// higher one.
	Seq uint64 `json:"seq,omitempty"`
	// Record is the verified record as package kademlia holds it, with the
	// writer's public key and signature.
	Record kademlia.Record `json:"-"`
}

// Decode unmarshals the record's JSON value into v.
func (r *DHTRecord) Decode(v any) error {
	if err := json.Unmarshal(r.Value, v); err != nil {
		return fmt.Errorf("p2p: decode record %s: %w", r.Key.Short(), err)
	}
	return nil
}

// DHTStats reports what a DHT node did.
type DHTStats struct {
	// Runtime holds the message, byte and connection counters (connections
	// trimmed by the connection manager included).
	Runtime node.Stats
	// ReactorDrops counts messages dropped on full reactor queues.
	ReactorDrops uint64
	// InvalidJSON counts received messages dropped because their data was
	// not JSON.
	InvalidJSON uint64
	// KeyringRefused counts keyring messages refused: malformed, or
	// requests dropped on a full queue.
	KeyringRefused uint64
	// Transport holds the TCP transport's counters: handshakes refused by
	// reason, connections over a limit. Zero with DHTConfig.Transport set.
	Transport tcp.Stats
	// Kademlia holds the protocol's counters (zero once the node is
	// closed).
	Kademlia kademlia.Stats
	// Contacts is the size of the routing table.
	Contacts int
}

// DHT is a node of the Kademlia overlay: a distributed hash table of signed
// records, with messages to every node (Send, over the routing tables), to
// one close contact (SendOne) or back to a sender (Message.Reply). It drives
// a kademlia.Core, the protocol's state machine, with a node.Runtime over
// the transport, as the Broadcaster drives its cores. Its methods are safe
// for concurrent use.
type DHT struct {
	cfg        DHTConfig
	key        *peer.Key
	core       *kademlia.Core // touched only on the runtime's loop
	rt         *node.Runtime
	tr         transport.Transport
	logger     *slog.Logger
	maxPayload int

	reactors    *reactorSet
	keys        *keyService
	pick        *lockedRand // SendOne's choices
	invalidJSON atomic.Uint64
	nextReq     atomic.Uint64

	joined     chan struct{}
	joinedOnce sync.Once
	// founding is loop-owned: the node started a new network, and is
	// joined once its routing table holds a contact.
	founding bool

	// ctx ends at Close: it stops the join goroutine and the calls waiting
	// for an answer.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the join goroutine

	mu      sync.Mutex // guards the fields below
	waiters map[uint64]chan any
	started bool
	closed  bool

	closeOnce sync.Once
	closeErr  error
}

// NewDHT creates a node: it loads or creates its key in cfg.DataDir and
// starts listening and answering other nodes, but joins the network only in
// Start. Register reactors between NewDHT and Start so that no message is
// missed.
func NewDHT(cfg DHTConfig) (*DHT, error) {
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
	logger := cfg.Logger.With("node", key.ID().Short())
	kcfg := cfg.Kademlia
	if kcfg.Seed == 0 {
		kcfg.Seed = cfg.Seed
	}
	kcfg.Self = peer.Info{ID: key.ID(), Addr: tr.LocalAddr()}
	kcfg.Signer = key
	kcfg.Logger = logger
	core, err := kademlia.New(kcfg)
	if err != nil {
		tr.Close()
		return nil, fmt.Errorf("p2p: %w", err)
	}
	d := &DHT{
		cfg:        cfg,
		key:        key,
		core:       core,
		tr:         tr,
		logger:     logger,
		maxPayload: core.Config().MaxPayloadSize,
		reactors:   newReactorSet(cfg.ReactorQueueLen),
		pick:       newLockedRand(cfg.Seed),
		joined:     make(chan struct{}),
		waiters:    map[uint64]chan any{},
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.keys = newKeyService(dhtKeys{d}, tr, cfg.DataDir, logger)
	rt, err := node.Start(node.Config{
		Core:         dhtCore{core, d},
		Transport:    tr,
		OnOutput:     d.onOutput,
		Logger:       logger,
		IdleTimeout:  cfg.idleTimeout,
		SendQueueLen: DefaultDHTSendQueueLen,
		HighWater:    DefaultDHTHighWater,
		LowWater:     DefaultDHTLowWater,
		GracePeriod:  DefaultDHTGracePeriod,
	})
	if err != nil {
		d.cancel()
		d.keys.close()
		tr.Close()
		return nil, fmt.Errorf("p2p: start runtime: %w", err)
	}
	d.rt = rt
	return d, nil
}

// ID returns this node's ID.
func (d *DHT) ID() peer.ID { return d.key.ID() }

// Addr returns the address other nodes use to reach this one.
func (d *DHT) Addr() string { return d.tr.LocalAddr() }

// Start joins the network through the configured bootstrap addresses, or
// starts a new network when there are none. Like the Broadcaster's, it
// returns once the join is under way; Joined tells when the node is linked
// to the network. A node whose bootstrap nodes do not answer tries them
// again every DefaultJoinRetry until Close; Bootstrap joins in the caller's
// goroutine and reports why a join failed. Calling Start again does
// nothing.
func (d *DHT) Start(ctx context.Context) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	if d.started {
		d.mu.Unlock()
		return nil
	}
	d.started = true
	d.mu.Unlock()
	if len(d.cfg.Secret) == 0 && d.cfg.Transport == nil {
		d.logger.Warn("no cluster secret: the network is encrypted but admits any node")
	}
	d.logger.Info("starting", "addr", d.Addr(), "bootstrap", d.cfg.Bootstrap)
	if len(d.cfg.Bootstrap) == 0 {
		return d.do(ctx, func(time.Time) { d.founding = true; d.checkFounded() })
	}
	d.wg.Add(1)
	go d.join(d.cfg.Bootstrap)
	return nil
}

// Joined returns a channel closed once the node is linked to the network,
// as the Broadcaster's: for a node with bootstrap addresses, once it has
// looked up its own ID through them (Start or Bootstrap), so that its
// routing table holds its neighbourhood and the network knows it; for a
// node that starts a new network, once another node has joined it.
func (d *DHT) Joined() <-chan struct{} { return d.joined }

// Bootstrap joins the network through the nodes at addrs, in the caller's
// goroutine: it returns once the node has looked up its own ID, with the
// size of its routing table, and closes Joined. It fails with
// kademlia.ErrNoContacts when no node at addrs answered.
func (d *DHT) Bootstrap(ctx context.Context, addrs []string) (int, error) {
	out, err := d.call(ctx, func(id uint64) any { return kademlia.Bootstrap{ReqID: id, Contacts: addrs} })
	if err != nil {
		return 0, fmt.Errorf("p2p: join through %v: %w", addrs, err)
	}
	res := out.(kademlia.BootstrapResult)
	if res.Err != nil {
		return 0, fmt.Errorf("p2p: join through %v: %w", addrs, res.Err)
	}
	d.markJoined(res.Contacts)
	return res.Contacts, nil
}

// join runs Bootstrap until it succeeds or the node closes.
func (d *DHT) join(addrs []string) {
	defer d.wg.Done()
	retry := time.NewTimer(DefaultJoinRetry)
	defer retry.Stop()
	for attempt := 1; ; attempt++ {
		_, err := d.Bootstrap(d.ctx, addrs)
		if err == nil || d.ctx.Err() != nil || errors.Is(err, ErrClosed) {
			return
		}
		if attempt == 1 {
			d.logger.Warn("join failed, retrying every second", "bootstrap", addrs, "err", err)
		} else {
			d.logger.Debug("join failed", "bootstrap", addrs, "attempt", attempt, "err", err)
		}
		retry.Reset(DefaultJoinRetry)
		select {
		case <-d.ctx.Done():
			return
		case <-retry.C:
		}
	}
}

func (d *DHT) markJoined(contacts int) {
	d.joinedOnce.Do(func() {
		close(d.joined)
		d.logger.Info("joined the network", "contacts", contacts)
	})
}

// checkFounded closes Joined for a node that started a new network once
// another node has joined it. It runs on the loop.
func (d *DHT) checkFounded() {
	if d.founding && d.core.TableSize() > 0 {
		d.founding = false
		d.markJoined(d.core.TableSize())
	}
}

// dhtCore is the core the runtime drives: the Kademlia core, watched after
// every step for the first contact of a node that started a new network.
type dhtCore struct {
	*kademlia.Core
	d *DHT
}

// Step steps the core and checks whether a founding node has joined.
func (c dhtCore) Step(now time.Time, input any) {
	c.Core.Step(now, input)
	if c.d.founding {
		c.d.checkFounded()
	}
}

// React registers a reactor, called for every message this node receives,
// and returns the function that removes it. Each reactor runs on its own
// goroutine with a queue of DHTConfig.ReactorQueueLen messages; when that
// queue is full, messages for that reactor are dropped and counted in
// DHTStats.ReactorDrops.
func (d *DHT) React(r Reactor) (remove func()) { return d.reactors.add(r) }

// Send sends v, encoded as JSON, to every node of the network along the
// routing tables (El-Ansary et al.): about one message per node.
func (d *DHT) Send(ctx context.Context, v any) error {
	data, err := d.encode(v)
	if err != nil {
		return err
	}
	return d.broadcast(ctx, data)
}

// SendOne sends v, encoded as JSON, to one of the node's Neighbors chosen at
// random (seeded by DHTConfig.Seed). It returns ErrNoNeighbors while the
// routing table is empty.
func (d *DHT) SendOne(ctx context.Context, v any) error {
	data, err := d.encode(v)
	if err != nil {
		return err
	}
	neighbors, err := d.neighbors(ctx)
	if err != nil {
		return err
	}
	if len(neighbors) == 0 {
		return ErrNoNeighbors
	}
	return d.sendDirect(ctx, neighbors[d.pick.IntN(len(neighbors))], data)
}

// SendTo sends v, encoded as JSON, to the node with to.ID; an empty to.Addr
// is found in the routing table or by a lookup of the ID.
func (d *DHT) SendTo(ctx context.Context, to Member, v any) error {
	data, err := d.encode(v)
	if err != nil {
		return err
	}
	return d.sendDirect(ctx, peer.Info{ID: to.ID, Addr: to.Addr}, data)
}

// Put stores v, encoded as JSON, under name in the DHT, signed by this
// node's key, and returns its key: SHA-256(public key || name). A later Put
// of the same name, by this node or any node with the same key, replaces it
// everywhere; no other key can. The record lives at the k nodes closest to
// its key and is republished by this node while it runs.
func (d *DHT) Put(ctx context.Context, name string, v any) (peer.ID, error) {
	if name == "" {
		return peer.ID{}, errors.New("p2p: Put: empty record name")
	}
	data, err := json.Marshal(v)
	if err != nil {
		return peer.ID{}, fmt.Errorf("p2p: encode record %q: %w", name, err)
	}
	res, err := d.putRecord(ctx, kademlia.Record{Name: []byte(name), Value: data})
	if err != nil {
		return res.Key, fmt.Errorf("p2p: put %q: %w", name, err)
	}
	return res.Key, nil
}

// PutImmutable stores v, encoded as JSON, under the SHA-256 of that JSON and
// returns the key. Nobody can change it.
func (d *DHT) PutImmutable(ctx context.Context, v any) (peer.ID, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return peer.ID{}, fmt.Errorf("p2p: encode record: %w", err)
	}
	res, err := d.putRecord(ctx, kademlia.Record{Value: data})
	if err != nil {
		return res.Key, fmt.Errorf("p2p: put immutable %s: %w", res.Key.Short(), err)
	}
	return res.Key, nil
}

// PutRecord stores a record built and signed elsewhere (with package
// kademlia), for example one relayed from another network. Every node
// verifies it: a record whose signature does not match its writer's key
// fails with kademlia.ErrForged, and is never sent.
func (d *DHT) PutRecord(ctx context.Context, rec kademlia.Record) (peer.ID, error) {
	res, err := d.putRecord(ctx, rec)
	if err != nil {
		return res.Key, fmt.Errorf("p2p: put record %s: %w", rec.Key.Short(), err)
	}
	return res.Key, nil
}

// Get returns the record stored under key, verified: its signature, or for
// an immutable record its hash. It fails with an error matching both
// ErrNotFound and kademlia.ErrNotFound when no node holds it.
func (d *DHT) Get(ctx context.Context, key peer.ID) (*DHTRecord, error) {
	rec, err := d.get(ctx, key)
	if err != nil {
		if errors.Is(err, kademlia.ErrNotFound) {
			return nil, fmt.Errorf("p2p: get %s: %w: %w", key.Short(), ErrNotFound, err)
		}
		return nil, fmt.Errorf("p2p: get %s: %w", key.Short(), err)
	}
	out := &DHTRecord{Key: rec.Key, Value: rec.Value, Name: string(rec.Name), Seq: rec.Seq, Record: rec}
	if rec.Mutable() {
		out.Writer = peer.IDFromPublicKey(rec.Writer)
	}
	return out, nil
}

// Lookup returns the (up to k) nodes closest to id that answered the
// lookup, closest first.
func (d *DHT) Lookup(ctx context.Context, id peer.ID) ([]Member, error) {
	res, err := d.lookup(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("p2p: lookup %s: %w", id.Short(), err)
	}
	return toMembers(res.Closest), nil
}

// Members returns the nodes this node knows: itself and every contact of its
// routing table. In a DHT no node knows every member; Lookup finds any.
func (d *DHT) Members(ctx context.Context) ([]Member, error) {
	var infos []peer.Info
	if err := d.do(ctx, func(time.Time) { infos = d.core.Contacts() }); err != nil {
		return nil, err
	}
	return append([]Member{{ID: d.ID(), Addr: d.Addr()}}, toMembers(infos)...), nil
}

// Neighbors returns the node's neighbourhood: the k contacts of its routing
// table closest to its own ID, closest first.
func (d *DHT) Neighbors(ctx context.Context) ([]Member, error) {
	infos, err := d.neighbors(ctx)
	if err != nil {
		return nil, err
	}
	return toMembers(infos), nil
}

func (d *DHT) neighbors(ctx context.Context) ([]peer.Info, error) {
	var infos []peer.Info
	err := d.do(ctx, func(time.Time) { infos = d.core.Closest(d.core.Self().ID, d.core.Config().K) })
	return infos, err
}

// Stats reports counters of the node, as the Broadcaster's Stats does: it
// waits for the runtime's loop to read the protocol's counters, which are
// zero once the node is closed.
func (d *DHT) Stats() DHTStats {
	n := d.NodeStats()
	s := DHTStats{Runtime: n.Runtime, ReactorDrops: n.ReactorDrops, InvalidJSON: n.InvalidJSON, KeyringRefused: n.KeyringRefused, Transport: n.Transport}
	_ = d.do(context.Background(), func(time.Time) { s.Kademlia, s.Contacts = d.core.Stats(), d.core.TableSize() })
	return s
}

// NodeStats returns the counters every overlay has.
func (d *DHT) NodeStats() NodeStats {
	s := NodeStats{
		Runtime:        d.rt.Stats(),
		ReactorDrops:   d.reactors.dropped.Load(),
		InvalidJSON:    d.invalidJSON.Load(),
		KeyringRefused: d.keys.refused.Load(),
	}
	if tr, ok := d.tr.(*tcp.Transport); ok {
		s.Transport = tr.Stats()
	}
	return s
}

// closeDrainTimeout bounds how long Close waits for queued messages to leave.
const closeDrainTimeout = 2 * time.Second

// Close sends the messages still queued by Send and SendTo, then stops every
// goroutine and closes the transport; the records this node stored stay at
// their holders until they expire. It may be called more than once.
func (d *DHT) Close() error {
	d.closeOnce.Do(func() {
		d.mu.Lock()
		d.closed = true
		d.mu.Unlock()
		// Messages queued by Send and SendTo leave before the links
		// close: a last request comes after them, then the writes drain.
		ctx, cancel := context.WithTimeout(context.Background(), closeDrainTimeout)
		if err := d.rt.Do(ctx, func(time.Time) {}); err == nil {
			_ = d.rt.Flush(ctx)
		}
		cancel()
		d.cancel()
		d.keys.close()
		d.closeErr = d.rt.Close()
		d.wg.Wait()
		d.reactors.close()
	})
	return d.closeErr
}
