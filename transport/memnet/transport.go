package memnet

import (
	"context"
	"fmt"
	"time"

	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport"
)

var _ transport.Transport = (*Transport)(nil)

// Transport is one node's endpoint on a [Network].
type Transport struct {
	network *Network
	info    peer.Info

	// The fields below are guarded by network.mu.
	closed  bool
	conns   map[*Conn]struct{} // open connections, accepted ones included
	backlog []*Conn            // connections waiting for Accept
	changed chan struct{}      // closed and replaced when backlog or closed change
}

// LocalAddr returns the node's address on the network.
func (t *Transport) LocalAddr() string { return t.info.Addr }

// Dial connects to the node listening at addr after one round trip
// (2 × latency). It fails with ErrUnreachable when no node listens there or
// the nodes are separated, and with ctx's error when ctx ends first.
func (t *Transport) Dial(ctx context.Context, addr string) (transport.Conn, error) {
	n := t.network
	n.mu.Lock()
	roundTrip := 2 * n.latency
	n.mu.Unlock()
	if roundTrip > 0 {
		timer := time.NewTimer(roundTrip)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("memnet: dial %s from %s: %w", addr, t.info.Addr, ctx.Err())
		}
	} else if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memnet: dial %s from %s: %w", addr, t.info.Addr, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if t.closed {
		return nil, fmt.Errorf("memnet: dial %s from %s: %w", addr, t.info.Addr, transport.ErrClosed)
	}
	target := n.transports[addr]
	if target == nil || target.closed {
		return nil, fmt.Errorf("memnet: dial %s from %s: no node listens there: %w", addr, t.info.Addr, ErrUnreachable)
	}
	if !n.reachableLocked(t.info.Addr, addr) {
		return nil, fmt.Errorf("memnet: dial %s from %s: separated by a fault: %w", addr, t.info.Addr, ErrUnreachable)
	}
	local, remote := newConnPair(t, target)
	t.conns[local] = struct{}{}
	target.conns[remote] = struct{}{}
	target.backlog = append(target.backlog, remote)
	target.signalLocked()
	return local, nil
}

// Accept returns the next inbound connection. It returns
// transport.ErrClosed once the transport is closed or killed.
func (t *Transport) Accept(ctx context.Context) (transport.Conn, error) {
	n := t.network
	for {
		n.mu.Lock()
		if t.closed {
			n.mu.Unlock()
			return nil, fmt.Errorf("memnet: accept on %s: %w", t.info.Addr, transport.ErrClosed)
		}
		if len(t.backlog) > 0 {
			conn := t.backlog[0]
			t.backlog[0] = nil
			t.backlog = t.backlog[1:]
			n.mu.Unlock()
			return conn, nil
		}
		changed := t.changed
		n.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("memnet: accept on %s: %w", t.info.Addr, ctx.Err())
		}
	}
}

// Close stops the node gracefully: its peers read the messages already
// sent, then io.EOF. The address becomes free. It may be called more than
// once.
func (t *Transport) Close() error {
	t.network.mu.Lock()
	defer t.network.mu.Unlock()
	t.shutdownLocked(false)
	return nil
}

// shutdownLocked closes the transport and its connections; crash selects
// a reset of the peers' ends instead of a graceful end of stream.
func (t *Transport) shutdownLocked(crash bool) {
	if t.closed {
		return
	}
	t.closed = true
	n := t.network
	if n.transports[t.info.Addr] == t {
		delete(n.transports, t.info.Addr)
	}
	for c := range t.conns {
		if crash {
			c.closeLocked()
			c.peer.resetLocked()
		} else {
			c.closeLocked()
		}
	}
	t.backlog = nil
	t.signalLocked()
}

func (t *Transport) signalLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}
