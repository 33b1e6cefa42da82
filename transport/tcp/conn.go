package tcp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport"
)

const (
	// sendBufferLimit is how many encrypted bytes may wait for the socket
	// before Send blocks (back-pressure). A single larger message is always
	// accepted when nothing else is waiting.
	sendBufferLimit = 256 << 10
	// readBufferSize is the size of the socket read buffer: small messages
	// are read in batches through it, a large message's chunks (64 KiB)
	// straight into the message. 16 KiB rather than 64 keeps 256 idle
	// connections at 4 MiB of buffers instead of 16.
	readBufferSize = 16 << 10
	// closeLinger bounds how long Close spends writing what Send queued.
	closeLinger = 2 * time.Second
	// keepBufferLimit: send buffers that grew larger are released after use.
	keepBufferLimit = 1 << 20
	// deferredWriteLimit is how many encrypted bytes TrySendDeferred lets
	// wait for Flush before it wakes the writer itself: a write of 64 KiB
	// costs little more than one of a few hundred bytes, and a larger one
	// would hold the frames back for no gain.
	deferredWriteLimit = 64 << 10
)

var _ transport.Conn = (*Conn)(nil)

// Conn is an authenticated, encrypted connection to one peer.
//
// Send encrypts the message at once and queues it for a per-connection
// writer goroutine, which writes everything queued in one system call:
// concurrent and back-to-back sends are coalesced. TrySendDeferred queues
// without waking the writer, so that the messages queued until Flush leave
// in one write. Send blocks while more than 256 KiB wait for a slow socket,
// until ctx is done. Recv must be called from one goroutine at a time.
type Conn struct {
	transport *Transport
	raw       net.Conn
	remote    peer.Info
	log       *slog.Logger

	reader        *messageReader // used by Recv only
	recvErr       error          // sticky error of Recv, used by Recv only
	frameDeadline time.Time      // used by Recv only: the current message's deadline

	wake       chan struct{} // tells the writer that pending has data (capacity 1)
	done       chan struct{} // closed by Close
	writerDone chan struct{} // closed when the writer has exited
	closeOnce  sync.Once
	// closeWrite is closed by CloseWrite.
	closeWrite     chan struct{}
	closeWriteOnce sync.Once
	// rawConn writes to the socket without waiting (Flush); nil when the
	// socket or the system has no such write.
	rawConn syscall.RawConn
	// now writes through rawConn; used under writeMu.
	now *nowWriter

	// writeMu is held by whoever writes to the socket, the writer or
	// Flush: frames are taken from pending and written under it, so they
	// reach the socket in order.
	writeMu sync.Mutex
	// spare is the empty buffer swapped with pending; guarded by writeMu.
	spare []byte

	mu sync.Mutex // guards the fields below
	// sendCipher encrypts in the order bytes enter pending.
	sendCipher frameCipher
	// pending holds encrypted frames not yet handed to the socket.
	pending []byte
	// space is closed (and replaced) when the writer takes pending and a
	// sender was given it to wait on (spaceWanted).
	space       chan struct{}
	spaceWanted bool
	// sendErr, once set, fails every later Send.
	sendErr error
}

func newConn(t *Transport, raw net.Conn, keys *sessionKeys) *Conn {
	c := &Conn{
		transport:  t,
		raw:        raw,
		remote:     keys.remote,
		log:        t.log.With("peer", keys.remote.ID.Short(), "remote_addr", raw.RemoteAddr().String()),
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		writerDone: make(chan struct{}),
		closeWrite: make(chan struct{}),
		sendCipher: newChachaState(keys.send),
		space:      make(chan struct{}),
	}
	c.reader = newMessageReader(bufio.NewReaderSize(raw, readBufferSize), newChachaState(keys.recv), t.cfg.MaxFrameSize)
	socket := raw
	if counted, ok := raw.(*countingConn); ok {
		socket = counted.Conn
	}
	if sc, ok := socket.(syscall.Conn); ok && canWriteNow {
		c.rawConn, _ = sc.SyscallConn()
		c.now = newNowWriter()
	}
	c.reader.budget = t.buffered
	c.reader.hooks = c
	return c
}

// frameStarted bounds the arrival of the message whose length has arrived.
func (c *Conn) frameStarted() {
	c.frameDeadline = time.Now().Add(c.transport.cfg.FrameTimeout)
	c.raw.SetReadDeadline(c.frameDeadline)
	c.keepClosedUnblocked()
}

// waitForBudget waits for freed until the message's deadline.
func (c *Conn) waitForBudget(freed <-chan struct{}) error {
	timer := time.NewTimer(time.Until(c.frameDeadline))
	defer timer.Stop()
	select {
	case <-freed:
		return nil
	case <-timer.C:
		return errors.New("the budget stayed taken for FrameTimeout")
	case <-c.done:
		return transport.ErrClosed
	}
}

// frameEnded lifts the bound: between messages a connection may be idle.
func (c *Conn) frameEnded() {
	c.raw.SetReadDeadline(time.Time{})
	c.keepClosedUnblocked()
}

// keepClosedUnblocked restores the past read deadline that Close set, in
// case a deadline set by the reader replaced it: Close closes done before
// it sets its deadline, so a reader that set its own after Close's sees
// done closed here.
func (c *Conn) keepClosedUnblocked() {
	select {
	case <-c.done:
		c.raw.SetReadDeadline(time.Now())
	default:
	}
}

// Remote returns the peer's authenticated ID and its advertised address.
func (c *Conn) Remote() peer.Info { return c.remote }

// Send queues one message for the peer. It returns transport.ErrTooLarge for
// a message over MaxFrameSize (the connection stays usable),
// transport.ErrClosed after Close, the connection's write error after a
// failed write, or ctx's error when ctx ends while Send waits for buffer
// space. A nil error means the message is encrypted and queued in order;
// like TCP itself, it does not mean the peer has read it.
func (c *Conn) Send(ctx context.Context, msg []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("tcp: send to %s: %w", c.remote, err)
	}
	for {
		space, err := c.tryQueue(msg, true)
		if space == nil {
			return err
		}
		select {
		case <-space:
		case <-c.done:
		case <-ctx.Done():
			return fmt.Errorf("tcp: send to %s: %w", c.remote, ctx.Err())
		}
	}
}

// TrySend implements transport.TrySender: it queues msg like Send, or
// returns transport.ErrWouldBlock at once when the send buffer is full.
func (c *Conn) TrySend(msg []byte) error {
	space, err := c.tryQueue(msg, true)
	if space != nil {
		return fmt.Errorf("tcp: send to %s: %w", c.remote, transport.ErrWouldBlock)
	}
	return err
}

// TrySendDeferred implements transport.DeferredSender: it queues msg like
// TrySend but leaves it for the next Flush (or Send, TrySend, CloseWrite,
// Close), unless 64 KiB already wait.
func (c *Conn) TrySendDeferred(msg []byte) error {
	space, err := c.tryQueue(msg, false)
	if space != nil {
		return fmt.Errorf("tcp: send to %s: %w", c.remote, transport.ErrWouldBlock)
	}
	return err
}

// Flush implements transport.DeferredSender: it writes everything queued
// in one system call, from the calling goroutine as far as the socket
// takes it without waiting, and leaves the rest to the writer. Writing
// here rather than waking the writer saves a goroutine hand-off per
// write.
func (c *Conn) Flush() {
	if c.rawConn == nil || !c.writeMu.TryLock() {
		// The writer is writing: woken, it takes what is queued next.
		c.wakeWriter()
		return
	}
	defer c.writeMu.Unlock()
	out := c.takeOut()
	if len(out) == 0 {
		return
	}
	n := c.now.writeNow(c.rawConn, out)
	if n > 0 {
		c.transport.stats.writes.Add(1)
		c.transport.stats.bytesOut.Add(uint64(n))
	}
	if n == len(out) {
		c.keepSpare(out)
		return
	}
	// The socket's buffer is full, or the write failed: the writer writes
	// the rest, waiting (or meets the error), before what was queued
	// meanwhile.
	c.mu.Lock()
	rest := make([]byte, 0, len(out)-n+len(c.pending))
	rest = append(rest, out[n:]...)
	c.pending = append(rest, c.pending...)
	c.mu.Unlock()
	c.wakeWriter()
}

func (c *Conn) wakeWriter() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

var _ transport.DeferredSender = (*Conn)(nil)

// tryQueue encrypts and queues msg if the send buffer has room, and returns
// the error of that; it wakes the writer when wake is set or when the bytes
// waiting reach deferredWriteLimit. When the buffer is full it returns a
// channel closed once the writer has taken the buffer, and queues nothing.
func (c *Conn) tryQueue(msg []byte, wake bool) (space chan struct{}, err error) {
	if len(msg) > c.transport.cfg.MaxFrameSize {
		return nil, fmt.Errorf("%w: %d bytes to %s, limit %d", transport.ErrTooLarge, len(msg), c.remote, c.transport.cfg.MaxFrameSize)
	}
	need := encodedLen(len(msg))
	c.mu.Lock()
	if c.sendErr != nil {
		err := c.sendErr
		c.mu.Unlock()
		return nil, err
	}
	if len(c.pending) != 0 && len(c.pending)+need > sendBufferLimit {
		c.spaceWanted = true
		space := c.space
		c.mu.Unlock()
		return space, nil
	}
	c.pending, err = appendMessage(c.pending, c.sendCipher, msg)
	if err != nil {
		c.sendErr = fmt.Errorf("tcp: send to %s: %w", c.remote, err)
		err = c.sendErr
		c.mu.Unlock()
		c.Close()
		return nil, err
	}
	wake = wake || len(c.pending) >= deferredWriteLimit
	c.mu.Unlock()
	c.transport.stats.framesOut.Add(1)
	if wake {
		c.wakeWriter()
	}
	return nil, nil
}

var _ transport.TrySender = (*Conn)(nil)

// writeLoop hands queued frames to the socket until Close, then writes what
// is left (for at most closeLinger) and closes the socket.
func (c *Conn) writeLoop() {
	defer c.transport.wg.Done()
	defer close(c.writerDone)
	// lastWrite takes what is queued and writes it, for at most
	// closeLinger, as the connection closes.
	lastWrite := func() {
		c.writeMu.Lock()
		defer c.writeMu.Unlock()
		c.raw.SetWriteDeadline(time.Now().Add(closeLinger))
		if out := c.takePending(c.spare); len(out) > 0 {
			c.raw.Write(out)
		}
		c.spare = nil
	}
	for {
		select {
		case <-c.wake:
		case <-c.done:
			lastWrite()
			c.raw.Close()
			return
		case <-c.closeWrite:
			lastWrite()
			if cw, ok := c.raw.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
			<-c.done
			c.raw.Close()
			return
		}
		if err := c.write(); err != nil {
			c.failSend(fmt.Errorf("tcp: write to %s: %w", c.remote, err))
			c.log.Debug("write failed, closing connection", "err", err)
			c.raw.Close()
			c.signalClose()
			return
		}
	}
}

// write takes what is queued and writes it, waiting for the socket.
func (c *Conn) write() error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	out := c.takeOut()
	if len(out) == 0 {
		return nil
	}
	_, err := c.raw.Write(out)
	c.keepSpare(out)
	return err
}

// takeOut takes the queued bytes to write, in exchange for the spare
// buffer, which the bytes' buffer becomes once written (keepSpare). The
// caller holds writeMu.
func (c *Conn) takeOut() []byte {
	out := c.takePending(c.spare)
	c.spare = out[:0]
	return out
}

// keepSpare keeps out, written, as the spare buffer unless it grew past
// keepBufferLimit (a burst's buffer is not held for the connection's life).
// The caller holds writeMu.
func (c *Conn) keepSpare(out []byte) {
	if cap(out) > keepBufferLimit {
		c.spare = nil
	}
}

// takePending swaps the queued bytes with the writer's empty buffer and
// wakes the senders waiting for space.
func (c *Conn) takePending(out []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	out, c.pending = c.pending, out[:0]
	if c.spaceWanted {
		c.spaceWanted = false
		close(c.space)
		c.space = make(chan struct{})
	}
	return out
}

func (c *Conn) failSend(err error) {
	c.mu.Lock()
	if c.sendErr == nil {
		c.sendErr = err
	}
	c.mu.Unlock()
}

// Recv returns the next message from the peer. It returns an error wrapping
// io.EOF when the peer closed the connection, transport.ErrClosed after
// Close, and a descriptive error for a malformed frame (an announced length
// over MaxFrameSize, a failed authentication, a truncated frame), in which
// case the connection is closed and the event logged and counted. Every
// error is final: the connection is closed and later calls return it again.
func (c *Conn) Recv() ([]byte, error) {
	if c.recvErr != nil {
		return nil, c.recvErr
	}
	msg, err := c.reader.read()
	if err == nil {
		c.transport.stats.framesIn.Add(1)
		select {
		case <-c.done: // Close may have run before msg's reservation was kept
			c.reader.releaseHeld()
		default:
		}
		return msg, nil
	}
	select {
	case <-c.done:
		c.recvErr = fmt.Errorf("tcp: recv from %s: %w", c.remote, transport.ErrClosed)
		return nil, c.recvErr
	default:
	}
	var netErr net.Error
	switch {
	case errors.Is(err, errMalformed):
		c.transport.closedConn(reasonMalformed, c, err)
	case errors.Is(err, errBufferLimit):
		c.transport.closedConn(reasonBufferLimit, c, err)
	case errors.As(err, &netErr) && netErr.Timeout():
		err = fmt.Errorf("%w: %w", errFrameTimeout, err)
		c.transport.closedConn(reasonFrameTimeout, c, err)
	case errors.Is(err, io.EOF):
		c.log.Debug("peer closed the connection")
	default:
		c.log.Debug("connection failed", "err", err)
	}
	c.recvErr = fmt.Errorf("tcp: recv from %s: %w", c.remote, err)
	c.failSend(fmt.Errorf("tcp: send to %s: connection closed after receive error: %w", c.remote, transport.ErrClosed))
	c.Close()
	return nil, c.recvErr
}

var _ transport.HalfCloser = (*Conn)(nil)

// Buffered implements transport.BufferedReceiver: it reports whether a
// whole message of one chunk (under 64 KiB) waits in the read buffer, or
// Recv has failed for good.
func (c *Conn) Buffered() bool {
	return c.recvErr != nil || c.reader.buffered()
}

var _ transport.BufferedReceiver = (*Conn)(nil)

// CloseWrite implements transport.HalfCloser: the writer sends what Send
// queued (for at most two seconds), then shuts down the sending side of the
// socket; Send fails from now on, Recv returns what the peer still sends
// until it closes its side. Close must still be called.
func (c *Conn) CloseWrite() error {
	c.failSend(fmt.Errorf("tcp: send to %s: %w", c.remote, transport.ErrClosed))
	c.closeWriteOnce.Do(func() { close(c.closeWrite) })
	return nil
}

// Close writes what Send queued (for at most two seconds), closes the
// connection and unblocks Recv. It may be called more than once.
func (c *Conn) Close() error {
	c.signalClose()
	<-c.writerDone
	return nil
}

// signalClose starts closing without waiting for the writer.
func (c *Conn) signalClose() {
	c.closeOnce.Do(func() {
		c.failSend(fmt.Errorf("tcp: send to %s: %w", c.remote, transport.ErrClosed))
		close(c.done)
		c.reader.releaseHeld()
		c.raw.SetReadDeadline(time.Now()) // unblock Recv at once
		// Bound a write blocked on a peer that does not read.
		c.raw.SetWriteDeadline(time.Now().Add(closeLinger))
		c.transport.forget(c)
	})
}
