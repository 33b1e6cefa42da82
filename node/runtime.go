package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2p-go/p2p/internal/bytebudget"
	"github.com/p2p-go/p2p/internal/ratelog"
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport"
	"github.com/p2p-go/p2p/wire"
)

// Defaults for Config fields left zero.
const (
	// DefaultDialTimeout bounds one dial, handshake included.
	DefaultDialTimeout = 5 * time.Second
	// DefaultIdleTimeout closes links the core did not ask to keep after
	// this long without traffic.
	DefaultIdleTimeout = 30 * time.Second
	// DefaultSendQueueLen is the number of messages queued per connection
	// before further messages to that peer are dropped. The queue is a
	// channel allocated whole (24 KiB at this length), and a node may hold
	// dozens of connections: at 4,096, 200 nodes in one process held over a
	// gigabyte of queues.
	DefaultSendQueueLen = 1024
	// DefaultHighWater is the number of open connections above which the
	// runtime closes the idle ones. A Broadcaster node keeps 5 links and
	// opens a few more for probes, shuffles and anti-entropy (about 10 in a
	// cluster of 100, a few dozen in one of thousands); 128 leaves room for
	// that and for being many nodes' probe target, and stays far under the
	// transport's own cap (tcp.DefaultMaxConns, 256) and the common default
	// limit of 1,024 open files.
	DefaultHighWater = 128
	// DefaultLowWater is the number of connections trimming leaves open: a
	// quarter below the high-water mark, so that trimming runs seldom.
	DefaultLowWater = 96
	// DefaultGracePeriod protects a connection used this recently from
	// trimming: longer than any request waits for its reply (a probe, a
	// Kademlia request: one second), so that trimming never cuts one.
	DefaultGracePeriod = 10 * time.Second
)

// ErrClosed is returned by methods of a closed Runtime.
var ErrClosed = errors.New("node: runtime closed")

// Config configures a Runtime.
type Config struct {
	// Core is the protocol state machine to drive. Required.
	Core overlay.Core
	// Transport carries messages to peers. Required. The runtime closes it
	// on Close.
	Transport transport.Transport
	// OnOutput is called during a turn of the loop for every output that
	// is not overlay.Send, Connect or Disconnect: on the loop's goroutine,
	// or on the reader goroutine that steps the messages it read (see the
	// package doc), never during another turn. It must not block.
	OnOutput func(now time.Time, out any)
	// Logger receives the runtime's logs; nil discards them.
	Logger *slog.Logger
	// DialTimeout bounds one dial (default DefaultDialTimeout).
	DialTimeout time.Duration
	// IdleTimeout closes unkept links after this long idle (default
	// DefaultIdleTimeout).
	IdleTimeout time.Duration
	// SendQueueLen bounds each connection's queue (default
	// DefaultSendQueueLen).
	SendQueueLen int
	// Denied, when set, tells which peers are refused (revoked nodes). It
	// is asked on the loop goroutine for every new connection, right after
	// its handshake and before any message from it is read (a denied
	// peer's connection is closed at once), and before dialling a peer
	// (messages to a denied peer are dropped without a dial). It must be
	// fast and safe for concurrent use. Call Runtime.CloseDenied when its
	// answers change.
	Denied func(peer.ID) bool
	// HighWater is the number of open connections above which the least
	// recently used ones are closed, down to LowWater; links the core asked
	// to keep and connections used within GracePeriod are spared. Defaults
	// DefaultHighWater, DefaultLowWater (or three quarters of HighWater
	// when only HighWater is set) and DefaultGracePeriod.
	HighWater, LowWater int
	GracePeriod         time.Duration
	// MaxQueuedBytes bounds the encoded size of the received messages
	// waiting for the loop; readers wait beyond it (default
	// DefaultMaxQueuedBytes).
	MaxQueuedBytes int
	// Clock gives the time to the core and drives the core's timer and the
	// housekeeping (idle links, connection trimming); nil is SystemClock.
	// Dials are bounded by DialTimeout of the system clock whatever the
	// Clock, as the transport's own deadlines are.
	Clock Clock
}

// Stats counts what the runtime did.
type Stats struct {
	MessagesIn, MessagesOut uint64
	BytesIn, BytesOut       uint64
	Dials, DialFailures     uint64
	Dropped                 uint64 // messages dropped on a full send queue
	MalformedIn             uint64 // frames that failed to decode
	ConnectionsOpen         int64
	LinkDowns               uint64
	// DeniedConns counts connections closed because Config.Denied refused
	// their peer: right after the handshake, or when the peer became
	// denied. DeniedSends counts messages to a denied peer dropped
	// without dialling it.
	DeniedConns, DeniedSends uint64
	// ConnsTrimmed counts connections closed because more than HighWater
	// were open.
	ConnsTrimmed uint64
}

// Runtime drives one core over one transport. Its methods are safe for
// concurrent use.
type Runtime struct {
	cfg    Config
	core   overlay.Core
	tr     transport.Transport
	clock  Clock
	logger *slog.Logger

	inbound  chan *inboundBatch
	queued   *bytebudget.Budget // bytes of the messages in inbound and in readers' batches
	events   chan any
	requests chan request
	done     chan struct{}
	// ctx ends at Close: it stops Accept and the dials in flight.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the runtime started

	closeOnce sync.Once
	closeErr  error

	// Rate-limited warnings about what peers make this node drop or refuse.
	warnQueueFull, warnTooLarge, warnRefused, warnMalformed *ratelog.Warner
	warnDenied                                              *ratelog.Warner

	stats struct {
		messagesIn, messagesOut, bytesIn, bytesOut atomic.Uint64
		dials, dialFailures, dropped, malformed    atomic.Uint64
		linkDowns, trimmed                         atomic.Uint64
		open                                       atomic.Int64
		deniedConns, deniedSends                   atomic.Uint64
	}
	deniedCheck chan struct{} // capacity 1: Config.Denied's answers changed

	// turn is held for a turn of the loop: by the loop's goroutine, or by a
	// connection's reader stepping the messages it read (receiveInline).
	// The fields below, the core and everything Config.OnOutput touches
	// are guarded by it.
	turn sync.Mutex
	// stopped is set once the loop has ended: no reader steps after it.
	stopped bool
	// openConns counts the connections that are not closing.
	openConns       int
	lastTrimWarning time.Time
	links           map[peer.ID]*link
	dialing         map[string]*pendingDial // by address
	outputs         []any
	pendingInputs   []any
	stepping        bool
	timer           Timer
	// rearmPending is set when the core stepped since the timer was last
	// set from its NextDeadline.
	rearmPending bool
	// unflushed holds the connections given messages with TrySendDeferred
	// since the last flushWrites; stepsUnflushed counts the inputs stepped
	// meanwhile.
	unflushed      []*connection
	stepsUnflushed int
	// lastMsg and lastEncoded are the last message send encoded in the
	// outputs being carried out, so that a message sent to several peers
	// (a Plumtree GOSSIP to every eager peer) is encoded once.
	lastMsg     any
	lastEncoded []byte
	// encodeBuf is the buffer encode reuses.
	encodeBuf []byte
}

// maxStepsUnflushed bounds the inputs the loop steps while messages wait
// in connections' buffers for a flush: under constant input the loop never
// runs out of it, and messages must still leave within a millisecond or so.
const maxStepsUnflushed = 64

type request struct {
	input any
	fn    func(now time.Time)
	// done and state are nil for a Post, which nobody waits for. A caller
	// of Step or Do whose context ends while its request is still queued
	// marks it abandoned, and the loop skips it: a Step that returns an
	// error was not carried out.
	done  chan struct{}
	state *atomic.Int32
}

// The states of a waited-for request.
const (
	requestQueued int32 = iota
	requestTaken
	requestAbandoned
)

// requestQueue is how many local inputs (Post, Step, Do) may wait for the
// loop. A Post returns as soon as its input is queued; the queue being full
// is what makes it wait. 64 absorbs a turn of the loop (up to 64 received
// messages) at any rate the loop can carry, and a caller offering more than
// that is held back after a few milliseconds' worth, not after seconds'.
const requestQueue = 64

// ErrConfig is wrapped by the errors of Start for an invalid Config; the
// message names the field.
var ErrConfig = errors.New("node: invalid config")

// withDefaults returns a copy of cfg with zero fields replaced by their
// defaults, or an error wrapping ErrConfig that names the invalid field.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Core == nil {
		return cfg, fmt.Errorf("%w: Config.Core is required", ErrConfig)
	}
	if cfg.Transport == nil {
		return cfg, fmt.Errorf("%w: Config.Transport is required", ErrConfig)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.SendQueueLen <= 0 {
		cfg.SendQueueLen = DefaultSendQueueLen
	}
	if cfg.HighWater <= 0 {
		cfg.HighWater = DefaultHighWater
		if cfg.LowWater <= 0 {
			cfg.LowWater = DefaultLowWater
		}
	}
	if cfg.LowWater <= 0 || cfg.LowWater > cfg.HighWater {
		cfg.LowWater = cfg.HighWater * 3 / 4
	}
	if cfg.GracePeriod <= 0 {
		cfg.GracePeriod = DefaultGracePeriod
	}
	if cfg.MaxQueuedBytes <= 0 {
		cfg.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	return cfg, nil
}

// Start starts driving cfg.Core over cfg.Transport. It returns an error
// wrapping ErrConfig for an invalid cfg.
func Start(cfg Config) (*Runtime, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Runtime{
		cfg:      cfg,
		core:     cfg.Core,
		tr:       cfg.Transport,
		clock:    cfg.Clock,
		logger:   logger,
		inbound:  make(chan *inboundBatch, 256),
		queued:   bytebudget.New(cfg.MaxQueuedBytes),
		events:   make(chan any, 256),
		requests: make(chan request, requestQueue),
		done:     make(chan struct{}),
		links:    map[peer.ID]*link{},
		dialing:  map[string]*pendingDial{},
		timer:    cfg.Clock.NewTimer(time.Hour),

		warnQueueFull: ratelog.New(logger, cfg.Clock.Now, warnInterval, "send queue full, message dropped"),
		warnTooLarge:  ratelog.New(logger, cfg.Clock.Now, warnInterval, "message too large, dropped"),
		warnRefused:   ratelog.New(logger, cfg.Clock.Now, warnInterval, "peer refused the handshake"),
		warnMalformed: ratelog.New(logger, cfg.Clock.Now, warnInterval, "malformed message, disconnecting peer"),
		warnDenied:    ratelog.New(logger, cfg.Clock.Now, warnInterval, "connection of a revoked peer refused"),

		deniedCheck: make(chan struct{}, 1),
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.wg.Add(2)
	go r.acceptLoop()
	go r.loop()
	return r, nil
}

// Step feeds a local input to the core on the loop goroutine and returns once
// the core has processed it. Inputs of Step, Do and Post are processed in
// the order they were queued. When ctx ends before the loop has taken the
// input, Step returns ctx's error and the input is not processed.
func (r *Runtime) Step(ctx context.Context, input any) error {
	return r.submit(ctx, request{input: input})
}

// Post queues a local input for the core and returns without waiting for the
// loop to process it: it waits only while the loop's queue of local inputs
// (64) is full, or until ctx ends (the input is then not queued). Inputs
// queued before Close are not processed after it; a caller that needs them
// processed steps a last input with Step, which comes after them.
func (r *Runtime) Post(ctx context.Context, input any) error {
	select {
	case <-r.done:
		return ErrClosed
	default:
	}
	select {
	case r.requests <- request{input: input}:
		return nil
	case <-r.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StepFromOutput feeds input to the core once the outputs being carried out
// have been, before any other input. Call it only from Config.OnOutput (on
// the loop goroutine): a runtime's answer to an output, such as the outcome
// of a write the core asked for, is stepped without waiting in a queue.
func (r *Runtime) StepFromOutput(input any) { r.step(input) }

// Do runs fn on the loop goroutine, where it may read the core's state, and
// returns once fn has returned. When ctx ends before the loop has taken fn,
// Do returns ctx's error and fn does not run.
func (r *Runtime) Do(ctx context.Context, fn func(now time.Time)) error {
	return r.submit(ctx, request{fn: fn})
}

func (r *Runtime) submit(ctx context.Context, req request) error {
	req.done = make(chan struct{})
	req.state = new(atomic.Int32)
	select {
	case <-r.done:
		return ErrClosed
	default:
	}
	select {
	case r.requests <- req:
	case <-r.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-req.done:
		return nil
	case <-ctx.Done():
		if req.state.CompareAndSwap(requestQueued, requestAbandoned) {
			return ctx.Err()
		}
		// The loop has taken it: wait for the end.
		select {
		case <-req.done:
			return nil
		case <-r.done:
			return r.closedWhile(req)
		}
	case <-r.done:
		return r.closedWhile(req)
	}
}

// closedWhile says how a request ended when the runtime closed while its
// caller waited: both may be ready (the loop ran the request, then the
// runtime closed before the caller woke), and a request that ran succeeded.
func (r *Runtime) closedWhile(req request) error {
	select {
	case <-req.done:
		return nil
	default:
		return ErrClosed
	}
}

// Stats returns the runtime's counters.
func (r *Runtime) Stats() Stats {
	return Stats{
		MessagesIn:      r.stats.messagesIn.Load(),
		MessagesOut:     r.stats.messagesOut.Load(),
		BytesIn:         r.stats.bytesIn.Load(),
		BytesOut:        r.stats.bytesOut.Load(),
		Dials:           r.stats.dials.Load(),
		DialFailures:    r.stats.dialFailures.Load(),
		Dropped:         r.stats.dropped.Load(),
		MalformedIn:     r.stats.malformed.Load(),
		ConnectionsOpen: r.stats.open.Load(),
		LinkDowns:       r.stats.linkDowns.Load(),
		DeniedConns:     r.stats.deniedConns.Load(),
		DeniedSends:     r.stats.deniedSends.Load(),
		ConnsTrimmed:    r.stats.trimmed.Load(),
	}
}

// LocalAddr returns the transport's advertised address.
func (r *Runtime) LocalAddr() string { return r.tr.LocalAddr() }

// Close stops the runtime: it closes the transport (and with it every
// connection) and returns once every goroutine has ended. Calling Close again
// returns the first call's result.
func (r *Runtime) Close() error {
	r.closeOnce.Do(func() {
		close(r.done)
		r.cancel()
		r.closeErr = r.tr.Close()
		r.wg.Wait()
	})
	return r.closeErr
}

func (r *Runtime) acceptLoop() {
	defer r.wg.Done()
	for {
		conn, err := r.tr.Accept(r.ctx)
		if err != nil {
			select {
			case <-r.done:
				return
			default:
			}
			if errors.Is(err, transport.ErrClosed) || errors.Is(err, context.Canceled) {
				return
			}
			r.logger.Debug("accept failed", "err", err)
			continue
		}
		select {
		case r.events <- accepted{conn: conn}:
		case <-r.done:
			conn.Close()
			return
		}
	}
}

type accepted struct{ conn transport.Conn }

type connClosed struct {
	conn *connection
	err  error
}

type dialResult struct {
	addr string
	conn transport.Conn
	err  error
}

func (r *Runtime) loop() {
	defer r.wg.Done()
	housekeeping := r.clock.NewTicker(time.Second)
	defer housekeeping.Stop()
	defer r.timer.Stop()
	defer r.stopTurns()
	r.turn.Lock()
	r.rearm()
	r.turn.Unlock()
	servedFirst := false
	for {
		// A waiting request (a Send, a Stats) goes first, every other
		// turn: its caller waits, and under load received messages are
		// always ready too, so that a uniform choice among the ready
		// channels would keep it waiting for several turns of up to
		// maxBatch messages each. Every other turn, so that a stream of
		// requests cannot starve the peers.
		if !servedFirst {
			select {
			case req := <-r.requests:
				r.turn.Lock()
				r.serve(req)
				servedFirst = true
				r.endTurn()
				r.turn.Unlock()
				continue
			default:
			}
		}
		servedFirst = false
		select {
		case <-r.done:
			return
		case batch := <-r.inbound:
			r.turn.Lock()
			r.receiveQueued(batch)
		case ev := <-r.events:
			r.turn.Lock()
			r.handleEvent(ev)
		case req := <-r.requests:
			r.turn.Lock()
			r.serve(req)
		case <-r.timer.C():
			r.turn.Lock()
			// Messages that arrived before the deadline go first: under
			// load, a payload can sit in the queue while the timer that
			// waits for it fires (Plumtree would GRAFT it again).
			for range len(r.inbound) {
				r.receiveQueued(<-r.inbound)
				if r.stepsUnflushed >= maxStepsUnflushed {
					r.flushWrites()
				}
			}
			r.step(overlay.Tick{})
		case now := <-housekeeping.C():
			r.turn.Lock()
			r.closeIdle(now)
			r.trimConns(now)
			r.closeLingering(now)
		case <-r.deniedCheck:
			r.turn.Lock()
			r.closeDenied()
		}
		r.endTurn()
		r.turn.Unlock()
	}
}

// stopTurns ends the loop's turns, no reader stepping a batch after it, and
// closes every connection.
func (r *Runtime) stopTurns() {
	r.turn.Lock()
	defer r.turn.Unlock()
	r.stopped = true
	r.shutdownLinks()
}

// receiveQueued steps a batch taken from the loop's queue; the caller
// holds turn.
func (r *Runtime) receiveQueued(batch *inboundBatch) {
	c := batch.conn
	r.receive(batch)
	c.queuedBatches.Add(-1)
}

// receiveInline steps batch on the calling reader's goroutine when no
// turn of the loop is under way and none of c's earlier batches waits in
// the loop's queue (c's messages keep their order), and reports whether it
// did: the loop's goroutine is not woken for it. At light load this saves a
// goroutine hand-off per message received; under load the loop is busy
// and the batch is queued as before.
func (r *Runtime) receiveInline(batch *inboundBatch) bool {
	if batch.conn.queuedBatches.Load() != 0 || !r.turn.TryLock() {
		return false
	}
	defer r.turn.Unlock()
	if r.stopped {
		r.queued.Release(batch.size)
		batch.recycle()
		return true
	}
	r.receive(batch)
	r.endTurn()
	return true
}

// serve carries out a request of Step or Do.
func (r *Runtime) serve(req request) {
	if req.state != nil && !req.state.CompareAndSwap(requestQueued, requestTaken) {
		return // abandoned by its caller, whose context ended
	}
	if req.fn != nil {
		req.fn(r.clock.Now())
	} else {
		r.step(req.input)
	}
	if req.done != nil {
		close(req.done)
	}
}

// endTurn ends a turn of the loop. Messages queued for peers leave once no
// input is waiting (what the next inputs send to the same peers joins them
// in one write) or after maxStepsUnflushed inputs.
func (r *Runtime) endTurn() {
	// The core's next deadline is read once per turn, however many inputs
	// the turn stepped: the timer matters only once the loop waits again.
	if r.rearmPending {
		r.rearmPending = false
		r.rearm()
	}
	r.stepsUnflushed++
	if len(r.unflushed) > 0 && (len(r.inbound) == 0 || r.stepsUnflushed >= maxStepsUnflushed) {
		r.flushWrites()
	}
}

// flushWrites hands the messages queued with TrySendDeferred to the
// network.
func (r *Runtime) flushWrites() {
	for i, c := range r.unflushed {
		c.unflushed = false
		c.deferred.Flush()
		r.unflushed[i] = nil
	}
	r.unflushed = r.unflushed[:0]
	r.stepsUnflushed = 0
}

// receive steps the messages of batch; the caller holds turn.
func (r *Runtime) receive(batch *inboundBatch) {
	c := batch.conn
	for _, msg := range batch.msgs {
		if c.denied {
			break // read before its peer was denied
		}
		r.stats.messagesIn.Add(1)
		c.lastUsed = r.clock.Now()
		r.step(overlay.Received{From: c.remote, Msg: msg})
	}
	r.stepsUnflushed += len(batch.msgs)
	r.queued.Release(batch.size)
	batch.recycle()
}

// step feeds one input to the core and carries out its outputs. Inputs that
// arise while outputs are carried out (a LinkDown for an unreachable peer)
// are queued and stepped afterwards, so that steps never nest.
func (r *Runtime) step(input any) {
	r.pendingInputs = append(r.pendingInputs, input)
	if r.stepping {
		return
	}
	r.stepping = true
	// Walk by index rather than reslicing, so that the slice keeps its
	// capacity: an input per message must not cost an allocation.
	for i := 0; i < len(r.pendingInputs); i++ {
		next := r.pendingInputs[i]
		r.pendingInputs[i] = nil
		r.stepOne(next)
	}
	r.pendingInputs = r.pendingInputs[:0]
	r.stepping = false
	r.rearmPending = true
}

func (r *Runtime) stepOne(input any) {
	now := r.clock.Now()
	r.core.Step(now, input)
	r.outputs = r.core.Drain(r.outputs[:0])
	defer func() { r.lastMsg, r.lastEncoded = nil, nil }()
	for i, out := range r.outputs {
		r.outputs[i] = nil
		switch out := out.(type) {
		case overlay.Send:
			r.send(now, out)
		case overlay.Connect:
			r.keep(out.Peer)
		case overlay.Disconnect:
			r.release(out.Peer)
		default:
			if r.cfg.OnOutput != nil {
				r.cfg.OnOutput(now, out)
			}
		}
	}
}

func (r *Runtime) rearm() {
	deadline, ok := r.core.NextDeadline()
	if !r.timer.Stop() {
		select {
		case <-r.timer.C():
		default:
		}
	}
	if !ok {
		r.timer.Reset(time.Hour)
		return
	}
	wait := deadline.Sub(r.clock.Now())
	if wait < 0 {
		wait = 0
	}
	r.timer.Reset(wait)
}

func (r *Runtime) handleEvent(ev any) {
	switch ev := ev.(type) {
	case accepted:
		r.addConn(ev.conn)
	case dialResult:
		r.dialDone(ev)
	case connClosed:
		r.connGone(ev.conn, ev.err)
	default:
		panic(fmt.Sprintf("node: unexpected event %T", ev))
	}
}

func (r *Runtime) send(now time.Time, out overlay.Send) {
	data, err := r.encode(out.Msg)
	if err != nil {
		r.logger.Error("cannot encode message", "peer", out.To.ID.Short(), "type", fmt.Sprintf("%T", out.Msg), "err", err)
		return
	}
	id := out.To.ID
	if r.denied(id) {
		r.refuseSend(out.To)
		return
	}
	if id.IsZero() {
		// Only the address is known (a bootstrap contact): use a link to
		// whoever listens there, if there is one.
		for linked, l := range r.links {
			if l.info.Addr == out.To.Addr {
				id = linked
				break
			}
		}
	}
	if !id.IsZero() {
		if c := r.usable(id); c != nil {
			c.enqueue(r, data, now)
			return
		}
	}
	if out.To.Addr == "" {
		r.step(overlay.LinkDown{Peer: out.To.ID, Err: errors.New("no connection and no address")})
		return
	}
	pd := r.dialing[out.To.Addr]
	if pd == nil {
		pd = &pendingDial{want: out.To.ID}
		r.dialing[out.To.Addr] = pd
		r.stats.dials.Add(1)
		r.wg.Add(1)
		go r.dial(out.To.Addr)
	}
	if len(pd.queue) < r.cfg.SendQueueLen {
		pd.queue = append(pd.queue, slices.Clone(data))
	} else {
		r.stats.dropped.Add(1)
	}
}

// encode returns msg's encoding, reusing the last one when the outputs
// being carried out send the very same message (the same pointer: wire
// messages are pointers) again. The encoding is made in a buffer the
// runtime reuses, valid until the next encode: transports copy what they
// are given (transport.Conn.Send), and the queues that keep a message
// longer (a pending dial's, a connection's writer's) keep a copy.
func (r *Runtime) encode(msg any) ([]byte, error) {
	// Comparing interfaces cannot panic here: lastMsg is a registered wire
	// message, a pointer, and msg differs in type or is a pointer too.
	if r.lastMsg != nil && msg == r.lastMsg {
		return r.lastEncoded, nil
	}
	data, err := wire.AppendMarshal(r.encodeBuf[:0], msg)
	if err != nil {
		return nil, err
	}
	if cap(data) <= maxEncodeBuf {
		r.encodeBuf = data[:0]
	}
	r.lastMsg, r.lastEncoded = msg, data
	return data, nil
}

// maxEncodeBuf bounds the encoding buffer the runtime keeps: a large
// message's is not held for the runtime's life.
const maxEncodeBuf = 64 << 10

// Flush waits until every message queued so far has been handed to the
// transport, or ctx ends.
func (r *Runtime) Flush(ctx context.Context) error {
	tick := r.clock.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		pending := 0
		if err := r.Do(ctx, func(time.Time) {
			pending = len(r.dialing)
			for _, l := range r.links {
				for _, c := range l.conns {
					pending += len(c.queue)
				}
			}
		}); err != nil {
			return err
		}
		if pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C():
		}
	}
}
