package p2p

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/p2p-go/p2p/kademlia"
	"github.com/p2p-go/p2p/peer"
)

// The DHT's side of the runtime: requests stepped into the Kademlia core on
// the runtime's loop, and the core's outputs (answers, deliveries) handed
// back to the callers waiting for them and to the reactors.

// onOutput runs on the runtime's loop for every output of the core that is
// not a message or a link: it must not block.
func (d *DHT) onOutput(_ time.Time, out any) {
	var reqID uint64
	switch out := out.(type) {
	case kademlia.Deliver:
		d.deliver(out)
		return
	case kademlia.BootstrapResult:
		reqID = out.ReqID
	case kademlia.LookupResult:
		reqID = out.ReqID
	case kademlia.PutResult:
		reqID = out.ReqID
	case kademlia.GetResult:
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

// deliver hands a received payload to the keyring or to the reactors. It
// runs on the loop.
func (d *DHT) deliver(del kademlia.Deliver) {
	origin := peer.Info{ID: del.Origin}
	if del.Origin == del.From.ID {
		origin.Addr = del.From.Addr
	}
	if data, ok := bytes.CutPrefix(del.Payload, dhtKeyMagic); ok {
		d.keys.deliver(origin, !del.Broadcast, data)
		return
	}
	if !json.Valid(del.Payload) {
		// Only a modified or hostile peer sends this: Send and Reply
		// encode JSON. Reactors are promised JSON, so drop it.
		d.invalidJSON.Add(1)
		d.logger.Debug("message is not JSON, dropped", "peer", del.From.ID.Short(), "direct", !del.Broadcast, "bytes", len(del.Payload))
		return
	}
	d.reactors.dispatch(&Message{
		Data:     json.RawMessage(del.Payload),
		From:     origin.ID,
		FromAddr: origin.Addr,
		Direct:   !del.Broadcast,
		Hops:     del.Hops,
		replier:  d,
		origin:   origin,
	})
}

// replyTo implements replier: Message.Reply of a message d delivered.
func (d *DHT) replyTo(ctx context.Context, origin peer.Info, v any) error {
	data, err := d.encode(v)
	if err != nil {
		return err
	}
	return d.sendDirect(ctx, origin, data)
}

// call steps the core with the request build makes and waits for its
// answer.
func (d *DHT) call(ctx context.Context, build func(reqID uint64) any) (any, error) {
	id := d.nextReq.Add(1)
	ch := make(chan any, 1)
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, ErrClosed
	}
	d.waiters[id] = ch
	d.mu.Unlock()
	forget := func() {
		d.mu.Lock()
		delete(d.waiters, id)
		d.mu.Unlock()
	}
	if err := d.step(ctx, build(id)); err != nil {
		forget()
		return nil, err
	}
	select {
	case out := <-ch:
		return out, nil
	case <-ctx.Done():
		forget()
		return nil, ctx.Err()
	case <-d.ctx.Done():
		forget()
		select {
		case out := <-ch: // answered just before the node closed
			return out, nil
		default:
			return nil, ErrClosed
		}
	}
}

func (d *DHT) lookup(ctx context.Context, target peer.ID) (kademlia.LookupResult, error) {
	out, err := d.call(ctx, func(id uint64) any { return kademlia.Lookup{ReqID: id, Target: target} })
	if err != nil {
		return kademlia.LookupResult{}, err
	}
	res := out.(kademlia.LookupResult)
	return res, res.Err
}

func (d *DHT) putRecord(ctx context.Context, rec kademlia.Record) (kademlia.PutResult, error) {
	out, err := d.call(ctx, func(id uint64) any { return kademlia.Put{ReqID: id, Record: rec} })
	if err != nil {
		return kademlia.PutResult{}, err
	}
	res := out.(kademlia.PutResult)
	return res, res.Err
}

func (d *DHT) get(ctx context.Context, key peer.ID) (kademlia.Record, error) {
	out, err := d.call(ctx, func(id uint64) any { return kademlia.Get{ReqID: id, Key: key} })
	if err != nil {
		return kademlia.Record{}, err
	}
	res := out.(kademlia.GetResult)
	return res.Record, res.Err
}

// broadcast sends payload to every node of the network.
func (d *DHT) broadcast(ctx context.Context, payload []byte) error {
	if len(payload) > d.maxPayload {
		return fmt.Errorf("%w: broadcast payload of %d bytes, limit %d", ErrTooLarge, len(payload), d.maxPayload)
	}
	return d.post(ctx, kademlia.Broadcast{Payload: payload})
}

// sendDirect sends payload to one peer. When to.Addr is empty and the
// routing table does not know the peer, it is looked up first.
func (d *DHT) sendDirect(ctx context.Context, to peer.Info, payload []byte) error {
	if len(payload) > d.maxPayload {
		return fmt.Errorf("%w: direct payload of %d bytes, limit %d", ErrTooLarge, len(payload), d.maxPayload)
	}
	if to.ID.IsZero() || to.ID == d.ID() {
		return fmt.Errorf("%w: cannot send to %s", kademlia.ErrMalformed, to)
	}
	if to.Addr == "" {
		err := d.do(ctx, func(time.Time) {
			if info, ok := d.core.Contact(to.ID); ok {
				to.Addr = info.Addr
			}
		})
		if err != nil {
			return err
		}
	}
	if to.Addr == "" {
		res, err := d.lookup(ctx, to.ID)
		if err != nil {
			return fmt.Errorf("p2p: find %s: %w", to.ID.Short(), err)
		}
		for _, info := range res.Closest {
			if info.ID == to.ID {
				to.Addr = info.Addr
			}
		}
		if to.Addr == "" {
			return fmt.Errorf("%w: peer %s not found", kademlia.ErrNotFound, to.ID.Short())
		}
	}
	return d.post(ctx, kademlia.Direct{To: to, Payload: payload})
}

func (d *DHT) encode(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("p2p: encode message: %w", err)
	}
	if len(data) > d.maxPayload {
		return nil, fmt.Errorf("%w: %d bytes of JSON, limit %d", ErrTooLarge, len(data), d.maxPayload)
	}
	return data, nil
}

// post queues input for the core without waiting for the loop to step it,
// as the Broadcaster's Send does.
func (d *DHT) post(ctx context.Context, input any) error {
	return runtimeErr(d.rt.Post(ctx, input))
}

// step feeds input to the core on the runtime's loop; a closed runtime
// answers ErrClosed, as the Broadcaster's does.
func (d *DHT) step(ctx context.Context, input any) error {
	return runtimeErr(d.rt.Step(ctx, input))
}

// do runs fn on the runtime's loop, where it may read the core.
func (d *DHT) do(ctx context.Context, fn func(time.Time)) error {
	return runtimeErr(d.rt.Do(ctx, fn))
}
