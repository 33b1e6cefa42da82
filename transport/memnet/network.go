package memnet

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport"
	"github.com/p2p-go/p2p/wire"
)

var (
	// ErrUnreachable is returned by Dial when no node listens at the
	// address, or a partition, an isolation or a crash separates the nodes.
	ErrUnreachable = errors.New("memnet: address unreachable")
	// ErrConnReset is returned by Recv and Send on a connection broken by a
	// partition, an isolation or the crash of the other node, and by Send
	// after the other side closed the connection.
	ErrConnReset = errors.New("memnet: connection reset")
)

// Config configures a [Network]. Zero fields take the documented defaults.
type Config struct {
	// Seed seeds the random source of losses and jitter, so that a run is
	// repeatable given the same order of sends.
	Seed uint64
	// Latency is the one-way delay of every message (default 0). Dial takes
	// one round trip, 2 × Latency.
	Latency time.Duration
	// Jitter adds a uniform random delay in [0, Jitter) to each message
	// (default 0); messages of one connection stay in order.
	Jitter time.Duration
	// Loss is the probability in [0, 1] that a message is dropped (default 0).
	Loss float64
	// MaxFrameSize is the largest message, in bytes. Default
	// wire.DefaultMaxFrameSize (1 MiB), as in package transport/tcp.
	MaxFrameSize int
}

// Stats counts the messages that crossed the network.
type Stats struct {
	// MessagesSent counts messages accepted by Send, dropped ones included.
	MessagesSent uint64
	// MessagesDropped counts messages lost: by Loss, by the hook, or queued
	// on a connection when it broke.
	MessagesDropped uint64
	// MessagesDelivered counts messages returned by Recv.
	MessagesDelivered uint64
	// BytesSent and BytesDelivered count the bytes of those messages.
	BytesSent, BytesDelivered uint64
}

// Network is an in-memory network of transports. Its methods are safe for
// concurrent use.
type Network struct {
	mu sync.Mutex // guards everything below and the state of every Conn and Transport
	// random draws losses and jitter.
	random          *rand.Rand
	latency, jitter time.Duration
	loss            float64
	maxFrameSize    int
	hook            func(from, to string, msg []byte) bool
	transports      map[string]*Transport // live listeners by address
	partitionGroup  map[string]int        // address -> group while partitioned
	partitioned     bool
	isolated        map[string]bool
	closed          bool
	stats           Stats
}

// New returns an empty network. It panics when cfg is invalid (a negative
// duration or frame size, Loss outside [0, 1]), naming the field: that is a
// mistake in the test that builds it.
func New(cfg Config) *Network {
	if err := checkDelays(cfg.Latency, cfg.Jitter); err != nil {
		panic(err)
	}
	if err := checkLoss(cfg.Loss); err != nil {
		panic(err)
	}
	if cfg.MaxFrameSize < 0 {
		panic(fmt.Sprintf("memnet: Config.MaxFrameSize %d is negative", cfg.MaxFrameSize))
	}
	if cfg.MaxFrameSize == 0 {
		cfg.MaxFrameSize = wire.DefaultMaxFrameSize
	}
	return &Network{
		random:       rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		latency:      cfg.Latency,
		jitter:       cfg.Jitter,
		loss:         cfg.Loss,
		maxFrameSize: cfg.MaxFrameSize,
		transports:   make(map[string]*Transport),
		isolated:     make(map[string]bool),
	}
}

func checkDelays(latency, jitter time.Duration) error {
	if latency < 0 {
		return fmt.Errorf("memnet: Config.Latency %v is negative", latency)
	}
	if jitter < 0 {
		return fmt.Errorf("memnet: Config.Jitter %v is negative", jitter)
	}
	return nil
}

func checkLoss(rate float64) error {
	if !(rate >= 0 && rate <= 1) {
		return fmt.Errorf("memnet: Config.Loss %v outside [0, 1]", rate)
	}
	return nil
}

// Listen starts a node with identity key at addr, any string not in use.
func (n *Network) Listen(key *peer.Key, addr string) (*Transport, error) {
	if key == nil {
		return nil, errors.New("memnet: Listen: key is required")
	}
	if addr == "" {
		return nil, errors.New("memnet: Listen: address is empty")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, fmt.Errorf("memnet: listen on %s: %w", addr, transport.ErrClosed)
	}
	if _, used := n.transports[addr]; used {
		return nil, fmt.Errorf("memnet: listen on %s: address in use", addr)
	}
	t := &Transport{
		network: n,
		info:    peer.Info{ID: key.ID(), Addr: addr},
		conns:   make(map[*Conn]struct{}),
		changed: make(chan struct{}),
	}
	n.transports[addr] = t
	return t, nil
}

// SetLatency sets the one-way latency and jitter of messages sent from now
// on. It panics on a negative value.
func (n *Network) SetLatency(latency, jitter time.Duration) {
	if err := checkDelays(latency, jitter); err != nil {
		panic(err)
	}
	n.mu.Lock()
	n.latency, n.jitter = latency, jitter
	n.mu.Unlock()
}

// SetLoss sets the probability that each message sent from now on is
// dropped. It panics on a rate outside [0, 1].
func (n *Network) SetLoss(rate float64) {
	if err := checkLoss(rate); err != nil {
		panic(err)
	}
	n.mu.Lock()
	n.loss = rate
	n.mu.Unlock()
}

// SetHook installs a function called for every message sent (after the
// Loss draw, outside the network's lock) with the sender's and receiver's
// addresses; returning false drops the message. The message is the
// network's own copy. nil removes the hook.
func (n *Network) SetHook(hook func(from, to string, msg []byte) bool) {
	n.mu.Lock()
	n.hook = hook
	n.mu.Unlock()
}

// Partition splits the network into groups of addresses; the addresses
// named in no group form one more group together. Connections across
// groups break at once (both ends see ErrConnReset) and dials across
// fail, until Heal. A new Partition replaces the previous one.
func (n *Network) Partition(groups ...[]string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.partitioned = true
	n.partitionGroup = make(map[string]int)
	for i, group := range groups {
		for _, addr := range group {
			n.partitionGroup[addr] = i
		}
	}
	n.breakUnreachableLocked()
}

// Isolate cuts addr off from every other node until Heal: its connections
// break and dials from or to it fail.
func (n *Network) Isolate(addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.isolated[addr] = true
	n.breakUnreachableLocked()
}

// Heal removes every partition and isolation. Broken connections stay
// broken; nodes must dial again, as they would over TCP.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.partitioned = false
	n.partitionGroup = nil
	clear(n.isolated)
}

// Kill crashes the node at addr: its connections break on the other side
// with ErrConnReset (messages in flight are lost), its own operations
// return transport.ErrClosed, and dials to addr fail until a node listens
// there again. Kill of an address where no node listens does nothing.
func (n *Network) Kill(addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if t := n.transports[addr]; t != nil {
		t.shutdownLocked(true)
	}
}

// Stats returns the network's counters.
func (n *Network) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

// Close closes every transport; Listen fails afterwards. It may be called
// more than once.
func (n *Network) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	for _, t := range n.transports {
		t.shutdownLocked(false)
	}
	return nil
}

// reachableLocked reports whether a and b may talk.
func (n *Network) reachableLocked(a, b string) bool {
	if n.isolated[a] || n.isolated[b] {
		return false
	}
	if !n.partitioned {
		return true
	}
	groupOf := func(addr string) int {
		if g, ok := n.partitionGroup[addr]; ok {
			return g
		}
		return -1
	}
	return groupOf(a) == groupOf(b)
}

// breakUnreachableLocked resets every connection whose ends may no longer talk.
func (n *Network) breakUnreachableLocked() {
	for _, t := range n.transports {
		for c := range t.conns {
			if !n.reachableLocked(c.local.Addr, c.remote.Addr) {
				c.resetLocked()
				c.peer.resetLocked()
			}
		}
	}
}

// delayLocked draws the one-way delay of a message.
func (n *Network) delayLocked() time.Duration {
	delay := n.latency
	if n.jitter > 0 {
		delay += time.Duration(n.random.Int64N(int64(n.jitter)))
	}
	return delay
}
