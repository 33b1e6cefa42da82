package p2p

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"sync"

	"github.com/p2p-go/p2p/kademlia"
	"github.com/p2p-go/p2p/node"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport"
	"github.com/p2p-go/p2p/transport/tcp"
)

// DHTConfig configures a DHT node. Zero fields take the defaults documented
// on Config (DefaultListenAddr, DefaultDataDir, DefaultReactorQueueLen) and
// in package kademlia.
type DHTConfig struct {
	// Bootstrap lists addresses ("host:port") of nodes already in the
	// network; Start joins through every one that answers. Empty starts a
	// new network.
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
}

func (c *DHTConfig) setDefaults() error {
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
		return err
	}
	if c.ReactorQueueLen < 0 {
		return fmt.Errorf("p2p: DHTConfig.ReactorQueueLen must not be negative, got %d", c.ReactorQueueLen)
	}
	if c.MaxMessageSize < 0 {
		return fmt.Errorf("p2p: DHTConfig.MaxMessageSize must not be negative, got %d", c.MaxMessageSize)
	}
	if c.Seed == 0 {
		c.Seed = randomSeed()
	}
	return nil
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
	// Kademlia holds the protocol's counters.
	Kademlia kademlia.Stats
	// Contacts is the size of the routing table.
	Contacts int
	// ReactorDrops counts messages dropped on full reactor queues.
	ReactorDrops uint64
	// KeyringRefused counts keyring messages refused: malformed, or
	// requests dropped on a full queue.
	KeyringRefused uint64
	// Runtime holds the message, byte and connection counters (connections
	// trimmed by the connection manager included).
	Runtime node.Stats
	// Transport holds the TCP transport's counters: handshakes refused by
	// reason, connections over a limit. Zero with Config.Transport set.
	Transport tcp.Stats
}

// DHT is a node of the Kademlia overlay: a distributed hash table of signed
// records, with messages to every node (Send, over the routing tables), to
// one close contact (SendOne) or back to a sender (Message.Reply). Its
// methods are safe for concurrent use.
type DHT struct {
	cfg    DHTConfig
	key    *peer.Key
	dht    *kademlia.DHT
	tr     transport.Transport
	logger *slog.Logger

	reactors *reactorSet
	keys     *keyService
	pumpDone chan struct{}

	rngMu sync.Mutex // guards rng
	rng   *mathrand.Rand

	closeOnce sync.Once
	closeErr  error
}

// NewDHT creates a node: it loads or creates its key in cfg.DataDir and
// starts listening and answering other nodes, but joins the network only in
// Start. Register reactors between NewDHT and Start so that no message is
// missed.
func NewDHT(cfg DHTConfig) (*DHT, error) {
	if err := cfg.setDefaults(); err != nil {
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
	kcfg.Logger = logger
	inner, err := kademlia.NewDHT(kademlia.DHTConfig{Key: key, Transport: tr, Core: kcfg, Logger: logger})
	if err != nil {
		tr.Close()
		return nil, fmt.Errorf("p2p: %w", err)
	}
	if err := inner.Start(); err != nil {
		inner.Close()
		return nil, fmt.Errorf("p2p: %w", err)
	}
	d := &DHT{
		cfg:      cfg,
		key:      key,
		dht:      inner,
		tr:       tr,
		logger:   logger,
		reactors: newReactorSet(cfg.ReactorQueueLen),
		pumpDone: make(chan struct{}),
		rng:      mathrand.New(mathrand.NewPCG(cfg.Seed, cfg.Seed^0x736f)),
	}
	d.keys = newKeyService(dhtKeys{d}, tr, cfg.DataDir, logger)
	go d.pump()
	return d, nil
}

// ID returns this node's ID.
func (d *DHT) ID() peer.ID { return d.key.ID() }

// Addr returns the address other nodes use to reach this one.
func (d *DHT) Addr() string { return d.dht.Self().Addr }

// Start joins the network through the configured bootstrap addresses and
// returns once the node has looked up its own ID, so that its routing table
// holds its neighbourhood and the network knows it. With no bootstrap
// address it starts a new network and returns at once. It fails with
// kademlia.ErrNoContacts when no bootstrap node answered; Start may then be
// called again.
func (d *DHT) Start(ctx context.Context) error {
	if len(d.cfg.Secret) == 0 && d.cfg.Transport == nil {
		d.logger.Warn("no cluster secret: the network is encrypted but admits any node")
	}
	d.logger.Info("starting", "addr", d.Addr(), "bootstrap", d.cfg.Bootstrap)
	if len(d.cfg.Bootstrap) > 0 {
		contacts, err := d.dht.Bootstrap(ctx, d.cfg.Bootstrap)
		if err != nil {
			return fmt.Errorf("p2p: join through %v: %w", d.cfg.Bootstrap, d.wrap(err))
		}
		d.logger.Info("joined the network", "contacts", contacts)
		return nil
	}
	// A new network: fail on a closed node like the other methods.
	_, err := d.Members(ctx)
	return err
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
	return d.wrap(d.dht.Broadcast(ctx, data))
}

// SendOne sends v, encoded as JSON, to one of the node's Neighbors chosen at
// random. It returns ErrNoNeighbors while the routing table is empty.
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
	d.rngMu.Lock()
	to := neighbors[d.rng.IntN(len(neighbors))]
	d.rngMu.Unlock()
	return d.wrap(d.dht.SendDirect(ctx, to, data))
}

// SendTo sends v, encoded as JSON, to the node with to.ID; an empty to.Addr
// is found in the routing table or by a lookup of the ID.
func (d *DHT) SendTo(ctx context.Context, to Member, v any) error {
	data, err := d.encode(v)
	if err != nil {
		return err
	}
	return d.wrap(d.dht.SendDirect(ctx, peer.Info{ID: to.ID, Addr: to.Addr}, data))
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
	key, err := d.dht.Put(ctx, []byte(name), data)
	if err != nil {
		return key, fmt.Errorf("p2p: put %q: %w", name, d.wrap(err))
	}
	return key, nil
}

// PutImmutable stores v, encoded as JSON, under the SHA-256 of that JSON and
// returns the key. Nobody can change it.
func (d *DHT) PutImmutable(ctx context.Context, v any) (peer.ID, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return peer.ID{}, fmt.Errorf("p2p: encode record: %w", err)
	}
	key, err := d.dht.PutImmutable(ctx, data)
	if err != nil {
		return key, fmt.Errorf("p2p: put immutable %s: %w", key.Short(), d.wrap(err))
	}
	return key, nil
}

// PutRecord stores a record built and signed elsewhere (with package
// kademlia), for example one relayed from another network. Every node
// verifies it: a record whose signature does not match its writer's key
// fails with kademlia.ErrForged, and is never sent.
func (d *DHT) PutRecord(ctx context.Context, rec kademlia.Record) (peer.ID, error) {
	res, err := d.dht.PutRecord(ctx, rec)
	if err != nil {
		return res.Key, fmt.Errorf("p2p: put record %s: %w", rec.Key.Short(), d.wrap(err))
	}
	return res.Key, nil
}

// Get returns the record stored under key, verified: its signature, or for
// an immutable record its hash. It fails with an error matching both
// ErrNotFound and kademlia.ErrNotFound when no node holds it.
func (d *DHT) Get(ctx context.Context, key peer.ID) (*DHTRecord, error) {
	_, rec, err := d.dht.Get(ctx, key)
	if err != nil {
		if errors.Is(err, kademlia.ErrNotFound) {
			return nil, fmt.Errorf("p2p: get %s: %w: %w", key.Short(), ErrNotFound, err)
		}
		return nil, fmt.Errorf("p2p: get %s: %w", key.Short(), d.wrap(err))
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
	infos, err := d.dht.Lookup(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("p2p: lookup %s: %w", id.Short(), d.wrap(err))
	}
	return toMembers(infos), nil
}

// Members returns the nodes this node knows: itself and every contact of its
// routing table. In a DHT no node knows every member; Lookup finds any.
func (d *DHT) Members(ctx context.Context) ([]Member, error) {
	var infos []peer.Info
	err := d.dht.Do(ctx, func(c *kademlia.Core) { infos = c.Contacts() })
	if err != nil {
		return nil, d.wrap(err)
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
	err := d.dht.Do(ctx, func(c *kademlia.Core) { infos = c.Closest(c.Self().ID, c.Config().K) })
	if err != nil {
		return nil, d.wrap(err)
	}
	return infos, nil
}

// Stats reports counters of the node.
func (d *DHT) Stats(ctx context.Context) (DHTStats, error) {
	var s DHTStats
	err := d.dht.Do(ctx, func(c *kademlia.Core) { s.Kademlia, s.Contacts = c.Stats(), c.TableSize() })
	s.ReactorDrops = d.reactors.dropped.Load() + d.dht.DroppedDeliveries()
	s.KeyringRefused = d.keys.refused.Load()
	s.Runtime = d.dht.RuntimeStats()
	if tr, ok := d.tr.(*tcp.Transport); ok {
		s.Transport = tr.Stats()
	}
	return s, d.wrap(err)
}

// Close stops every goroutine and closes the transport; the records this
// node stored stay at their holders until they expire. It may be called more
// than once.
func (d *DHT) Close() error {
	d.closeOnce.Do(func() {
		d.keys.close()
		d.closeErr = d.dht.Close() // closes Deliveries, which ends pump
		<-d.pumpDone
		d.reactors.close()
	})
	return d.closeErr
}

// pump hands deliveries to the reactors until Close.
func (d *DHT) pump() {
	defer close(d.pumpDone)
	for del := range d.dht.Deliveries() {
		if data, ok := bytes.CutPrefix(del.Payload, dhtKeyMagic); ok {
			from := peer.Info{ID: del.Origin}
			if del.Origin == del.From.ID {
				from.Addr = del.From.Addr
			}
			d.keys.deliver(from, !del.Broadcast, data)
			continue
		}
		if !json.Valid(del.Payload) {
			d.logger.Debug("message that is not JSON dropped", "peer", del.From.String(), "bytes", len(del.Payload))
			continue
		}
		d.reactors.dispatch(d.message(del))
	}
}

func (d *DHT) message(del kademlia.Deliver) *Message {
	origin := peer.Info{ID: del.Origin}
	if del.Origin == del.From.ID {
		origin.Addr = del.From.Addr
	}
	return &Message{
		Data:     json.RawMessage(del.Payload),
		From:     origin.ID,
		FromAddr: origin.Addr,
		Direct:   !del.Broadcast,
		Hops:     del.Hops,
		reply: func(ctx context.Context, v any) error {
			data, err := d.encode(v)
			if err != nil {
				return err
			}
			return d.wrap(d.dht.SendDirect(ctx, origin, data))
		},
	}
}

func (d *DHT) encode(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("p2p: encode message: %w", err)
	}
	if max := d.maxPayload(); len(data) > max {
		return nil, fmt.Errorf("%w: %d bytes of JSON, limit %d", ErrTooLarge, len(data), max)
	}
	return data, nil
}

func (d *DHT) maxPayload() int {
	if n := d.cfg.Kademlia.MaxPayloadSize; n > 0 {
		return n
	}
	return kademlia.DefaultMaxPayloadSize
}

// wrap maps the kademlia runtime's closed error to ErrClosed.
func (d *DHT) wrap(err error) error {
	if err != nil && errors.Is(err, kademlia.ErrClosed) {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return err
}
