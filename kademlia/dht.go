package kademlia

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2p-go/p2p/node"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport"
)

// DefaultDeliveryQueue is the default capacity of DHT.Deliveries.
const DefaultDeliveryQueue = 1024

// DefaultSendQueueLen is the default number of messages queued for one
// connection. A DHT node holds a connection to every peer it talked to
// recently (hundreds in a large network) but sends each a few requests at a
// time (at most about one per replication lookup of a maintenance round, of
// which there are at most 100), so it queues less than the node package's
// default, whose per-connection buffer (4,096 slots, 96 KiB) made the
// garbage collector's work grow with the number of connections.
const DefaultSendQueueLen = 1024

// Connection manager defaults for a DHT node (see node.Config.HighWater).
// A Kademlia node talks to many peers once (a lookup contacts 20 to 35) and
// to few of them again soon, so it keeps fewer connections than a
// Broadcaster node: reopening one costs a handshake, about a millisecond on
// a LAN. At 32, 500 nodes in one process hold at most 16,000 sockets; at
// the node package's 128, about 100 each, 200 nodes ran out of file
// descriptors.
//
// DefaultGracePeriod, twice the request timeout (DefaultRPCTimeout), spares
// a connection that carries a request waiting for its reply; longer, as
// the node package's 10 s, every node joining a large network keeps every
// connection its join opened.
const (
	DefaultHighWater   = 32
	DefaultLowWater    = 24
	DefaultGracePeriod = 2 * time.Second
)

// ErrClosed is returned by the methods of a closed DHT.
var ErrClosed = errors.New("kademlia: DHT closed")

// DHTConfig configures a DHT.
type DHTConfig struct {
	// Key is the node's identity; it signs its mutable records. Required.
	Key *peer.Key
	// Transport carries the messages. Required; the DHT closes it on Close.
	Transport transport.Transport
	// Core tunes the protocol. Its Self and Signer are filled in from Key
	// and Transport.LocalAddr(); its Logger defaults to Logger.
	Core Config
	// Logger receives the DHT's and the runtime's logs; nil discards them.
	Logger *slog.Logger
	// DeliveryQueue is the capacity of the Deliveries channel
	// (DefaultDeliveryQueue). When the channel is full a delivery is
	// dropped and counted (DroppedDeliveries), so that a slow consumer never
	// stalls the network loop.
	DeliveryQueue int
	// DialTimeout and IdleTimeout tune the runtime (node package defaults
	// when zero).
	DialTimeout, IdleTimeout time.Duration
	// SendQueueLen bounds each connection's send queue
	// (DefaultSendQueueLen); a message that finds it full is dropped and
	// counted, and its request times out.
	SendQueueLen int
	// HighWater and LowWater are the connection manager's marks: above
	// HighWater open connections the least recently used are closed down to
	// LowWater (DefaultHighWater, DefaultLowWater). GracePeriod protects
	// connections used recently (DefaultGracePeriod).
	HighWater, LowWater int
	GracePeriod         time.Duration
}

// DHT runs a Kademlia Core on the node package's runtime over a transport.
// Its methods are safe for concurrent use.
type DHT struct {
	cfg        DHTConfig
	core       *Core
	self       peer.Info
	deliveries chan Deliver
	dropped    atomic.Uint64
	nextReq    atomic.Uint64
	done       chan struct{} // closed by Close

	mu      sync.Mutex // guards the fields below
	waiters map[uint64]chan any
	rt      *node.Runtime
	closed  bool
}

// NewDHT validates cfg and builds the DHT's core; Start connects it.
func NewDHT(cfg DHTConfig) (*DHT, error) {
	if cfg.Key == nil {
		return nil, errors.New("kademlia: DHTConfig.Key is required")
	}
	if cfg.Transport == nil {
		return nil, errors.New("kademlia: DHTConfig.Transport is required")
	}
	if cfg.DeliveryQueue < 0 {
		return nil, fmt.Errorf("kademlia: DHTConfig.DeliveryQueue must not be negative, got %d", cfg.DeliveryQueue)
	}
	if cfg.DeliveryQueue == 0 {
		cfg.DeliveryQueue = DefaultDeliveryQueue
	}
	if cfg.SendQueueLen < 0 {
		return nil, fmt.Errorf("kademlia: DHTConfig.SendQueueLen must not be negative, got %d", cfg.SendQueueLen)
	}
	if cfg.SendQueueLen == 0 {
		cfg.SendQueueLen = DefaultSendQueueLen
	}
	if cfg.HighWater < 0 || cfg.LowWater < 0 || cfg.GracePeriod < 0 {
		return nil, fmt.Errorf("kademlia: DHTConfig.HighWater, LowWater and GracePeriod must not be negative")
	}
	if cfg.HighWater == 0 {
		cfg.HighWater = DefaultHighWater
		if cfg.LowWater == 0 {
			cfg.LowWater = DefaultLowWater
		}
	}
	if cfg.GracePeriod == 0 {
		cfg.GracePeriod = DefaultGracePeriod
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	coreCfg := cfg.Core
	coreCfg.Self = peer.Info{ID: cfg.Key.ID(), Addr: cfg.Transport.LocalAddr()}
	coreCfg.Signer = cfg.Key
	if coreCfg.Logger == nil {
		coreCfg.Logger = cfg.Logger
	}
	core, err := New(coreCfg)
	if err != nil {
		return nil, err
	}
	return &DHT{
		cfg:        cfg,
		core:       core,
		self:       coreCfg.Self,
		deliveries: make(chan Deliver, cfg.DeliveryQueue),
		waiters:    map[uint64]chan any{},
		done:       make(chan struct{}),
	}, nil
}

// Start starts the runtime: the DHT accepts connections and answers peers.
func (d *DHT) Start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	if d.rt != nil {
		return errors.New("kademlia: DHT already started")
	}
	rt, err := node.Start(node.Config{
		Core:         d.core,
		Transport:    d.cfg.Transport,
		OnOutput:     d.onOutput,
		Logger:       d.cfg.Logger,
		DialTimeout:  d.cfg.DialTimeout,
		IdleTimeout:  d.cfg.IdleTimeout,
		SendQueueLen: d.cfg.SendQueueLen,
		HighWater:    d.cfg.HighWater,
		LowWater:     d.cfg.LowWater,
		GracePeriod:  d.cfg.GracePeriod,
	})
	if err != nil {
		return fmt.Errorf("kademlia: start runtime: %w", err)
	}
	d.rt = rt
	return nil
}

// RuntimeStats returns the runtime's message and connection counters (zero
// before Start).
func (d *DHT) RuntimeStats() node.Stats {
	d.mu.Lock()
	rt := d.rt
	d.mu.Unlock()
	if rt == nil {
		return node.Stats{}
	}
	return rt.Stats()
}

// Self returns the node's ID and advertised address.
func (d *DHT) Self() peer.Info { return d.self }

// Deliveries returns the channel of broadcast and direct payloads received.
// It is closed by Close.
func (d *DHT) Deliveries() <-chan Deliver { return d.deliveries }

// DroppedDeliveries returns the number of deliveries dropped because the
// Deliveries channel was full.
func (d *DHT) DroppedDeliveries() uint64 { return d.dropped.Load() }

// onOutput runs on the runtime's loop: it must not block.
func (d *DHT) onOutput(_ time.Time, out any) {
	var reqID uint64
	switch out := out.(type) {
	case Deliver:
		select {
		case d.deliveries <- out:
		default:
			d.dropped.Add(1)
		}
		return
	case BootstrapResult:
		reqID = out.ReqID
	case LookupResult:
		reqID = out.ReqID
	case PutResult:
		reqID = out.ReqID
	case GetResult:
		reqID = out.ReqID
	default:
		return
	}
	d.mu.Lock()
	ch := d.waiters[reqID]
	delete(d.waiters, reqID)
	d.mu.Unlock()
	if ch != nil {
		ch <- out // buffered: never blocks
	}
}

func (d *DHT) runtime() (*node.Runtime, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	if d.rt == nil {
		return nil, errors.New("kademlia: DHT not started")
	}
	return d.rt, nil
}

// call steps the core with the request build makes and waits for its
// answer.
func (d *DHT) call(ctx context.Context, build func(reqID uint64) any) (any, error) {
	rt, err := d.runtime()
	if err != nil {
		return nil, err
	}
	id := d.nextReq.Add(1)
	ch := make(chan any, 1)
	d.mu.Lock()
	d.waiters[id] = ch
	d.mu.Unlock()
	forget := func() {
		d.mu.Lock()
		delete(d.waiters, id)
		d.mu.Unlock()
	}
	if err := rt.Step(ctx, build(id)); err != nil {
		forget()
		return nil, d.wrapClosed(err)
	}
	select {
	case out := <-ch:
		return out, nil
	case <-ctx.Done():
		forget()
		return nil, ctx.Err()
	case <-d.done:
		forget()
		select {
		case out := <-ch: // answered just before the DHT closed
			return out, nil
		default:
			return nil, ErrClosed
		}
	}
}

func (d *DHT) wrapClosed(err error) error {
	if errors.Is(err, node.ErrClosed) {
		return fmt.Errorf("%w: %v", ErrClosed, err)
	}
	return err
}

// Bootstrap joins the network through the nodes at addrs and returns the
// size of the routing table.
func (d *DHT) Bootstrap(ctx context.Context, addrs []string) (int, error) {
	out, err := d.call(ctx, func(id uint64) any { return Bootstrap{ReqID: id, Contacts: addrs} })
	if err != nil {
		return 0, err
	}
	res := out.(BootstrapResult)
	return res.Contacts, res.Err
}

// Lookup returns the K nodes closest to id.
func (d *DHT) Lookup(ctx context.Context, id peer.ID) ([]peer.Info, error) {
	out, err := d.call(ctx, func(req uint64) any { return Lookup{ReqID: req, Target: id} })
	if err != nil {
		return nil, err
	}
	res := out.(LookupResult)
	return res.Closest, res.Err
}

// Put stores value under this node's name, signed by its key, and returns
// the key: MutableKey(public key, name). A later Put of the same name
// replaces it.
func (d *DHT) Put(ctx context.Context, name, value []byte) (peer.ID, error) {
	if len(name) == 0 {
		return peer.ID{}, fmt.Errorf("%w: empty name", ErrMalformed)
	}
	res, err := d.PutRecord(ctx, Record{Name: name, Value: value})
	return res.Key, err
}

// PutImmutable stores value under its SHA-256 and returns that key.
func (d *DHT) PutImmutable(ctx context.Context, value []byte) (peer.ID, error) {
	res, err := d.PutRecord(ctx, Record{Value: value})
	return res.Key, err
}

// PutRecord stores rec as the Put input describes: a signed record as
// given, a named unsigned one signed by this node, anything else as an
// immutable value.
func (d *DHT) PutRecord(ctx context.Context, rec Record) (PutResult, error) {
	out, err := d.call(ctx, func(id uint64) any { return Put{ReqID: id, Record: rec} })
	if err != nil {
		return PutResult{}, err
	}
	res := out.(PutResult)
	return res, res.Err
}

// Get returns the value stored under key and its verified record.
func (d *DHT) Get(ctx context.Context, key peer.ID) ([]byte, Record, error) {
	out, err := d.call(ctx, func(id uint64) any { return Get{ReqID: id, Key: key} })
	if err != nil {
		return nil, Record{}, err
	}
	res := out.(GetResult)
	if res.Err != nil {
		return nil, Record{}, res.Err
	}
	return res.Record.Value, res.Record, nil
}

// Broadcast sends payload to every node of the network.
func (d *DHT) Broadcast(ctx context.Context, payload []byte) error {
	if len(payload) > d.core.cfg.MaxPayloadSize {
		return fmt.Errorf("%w: broadcast payload of %d bytes, limit %d", ErrTooLarge, len(payload), d.core.cfg.MaxPayloadSize)
	}
	rt, err := d.runtime()
	if err != nil {
		return err
	}
	return d.wrapClosed(rt.Step(ctx, Broadcast{Payload: payload}))
}

// SendDirect sends payload to one peer. When to.Addr is empty and the
// routing table does not know the peer, it is looked up first.
func (d *DHT) SendDirect(ctx context.Context, to peer.Info, payload []byte) error {
	if len(payload) > d.core.cfg.MaxPayloadSize {
		return fmt.Errorf("%w: direct payload of %d bytes, limit %d", ErrTooLarge, len(payload), d.core.cfg.MaxPayloadSize)
	}
	if to.ID.IsZero() || to.ID == d.self.ID {
		return fmt.Errorf("%w: cannot send to %s", ErrMalformed, to)
	}
	rt, err := d.runtime()
	if err != nil {
		return err
	}
	if to.Addr == "" {
		err := rt.Do(ctx, func(time.Time) {
			if ct := d.core.table.get(to.ID); ct != nil {
				to.Addr = ct.info.Addr
			}
		})
		if err != nil {
			return d.wrapClosed(err)
		}
	}
	if to.Addr == "" {
		closest, err := d.Lookup(ctx, to.ID)
		if err != nil {
			return fmt.Errorf("kademlia: find %s: %w", to.ID.Short(), err)
		}
		for _, info := range closest {
			if info.ID == to.ID {
				to.Addr = info.Addr
			}
		}
		if to.Addr == "" {
			return fmt.Errorf("%w: peer %s not found", ErrNotFound, to.ID.Short())
		}
	}
	return d.wrapClosed(rt.Step(ctx, Direct{To: to, Payload: payload}))
}

// Do runs fn on the runtime's loop with the core, to read its state safely.
func (d *DHT) Do(ctx context.Context, fn func(c *Core)) error {
	rt, err := d.runtime()
	if err != nil {
		return err
	}
	return d.wrapClosed(rt.Do(ctx, func(time.Time) { fn(d.core) }))
}

// Close stops the DHT: it closes the transport, waits for every goroutine
// and closes Deliveries. It may be called more than once.
func (d *DHT) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	rt := d.rt
	d.mu.Unlock()
	close(d.done)
	var err error
	if rt != nil {
		err = rt.Close()
	} else {
		err = d.cfg.Transport.Close()
	}
	close(d.deliveries)
	return err
}
