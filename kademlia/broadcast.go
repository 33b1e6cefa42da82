package kademlia

import (
	"time"

	"github.com/p2p-go/p2p/peer"
)

// broadcastRetryWindow is how long a node remembers where it forwarded a
// broadcast, to pick another contact of the same bucket when the link to the
// chosen one goes down. It covers a dial timeout with room to spare.
const broadcastRetryWindow = 30 * time.Second

// maxForwards bounds the broadcasts remembered for retries.
const maxForwards = 1024

type broadcastKey struct {
	origin peer.ID
	id     uint64
}

type seenEntry struct {
	key broadcastKey
	at  time.Time
}

// forward remembers where one broadcast went.
type forward struct {
	msg     BroadcastMessage // Depth is set per target
	sentTo  map[peer.ID]int  // target -> bucket
	tried   map[peer.ID]struct{}
	expires time.Time
}

// broadcastState is the dedupe set and the retry memory of broadcasts.
type broadcastState struct {
	seen      map[broadcastKey]struct{}
	seenOrder []seenEntry // FIFO by time
	forwards  []*forward  // FIFO by expiry
}

func (s *broadcastState) init() { s.seen = map[broadcastKey]struct{}{} }

// markSeen records key, reporting false when it was already seen.
func (s *broadcastState) markSeen(key broadcastKey, now time.Time, maxSeen int) bool {
	if _, dup := s.seen[key]; dup {
		return false
	}
	s.seen[key] = struct{}{}
	s.seenOrder = append(s.seenOrder, seenEntry{key: key, at: now})
	for len(s.seenOrder) > maxSeen {
		delete(s.seen, s.seenOrder[0].key)
		s.seenOrder = s.seenOrder[1:]
	}
	return true
}

// expire forgets broadcast IDs older than ttl and retry memories past their
// window.
func (s *broadcastState) expire(now time.Time, ttl time.Duration, maxSeen int) {
	n := 0
	for n < len(s.seenOrder) && (now.Sub(s.seenOrder[n].at) >= ttl || len(s.seenOrder)-n > maxSeen) {
		delete(s.seen, s.seenOrder[n].key)
		n++
	}
	s.seenOrder = append(s.seenOrder[:0], s.seenOrder[n:]...)
	n = 0
	for n < len(s.forwards) && !s.forwards[n].expires.After(now) {
		n++
	}
	clear(s.forwards[:n])
	s.forwards = append(s.forwards[:0], s.forwards[n:]...)
}

// originateBroadcast starts a broadcast of payload: the node is responsible
// for the whole ID space (depth 0).
func (c *Core) originateBroadcast(now time.Time, payload []byte) {
	if len(payload) > c.cfg.MaxPayloadSize {
		c.log.Warn("broadcast not sent: payload too large", "bytes", len(payload), "limit", c.cfg.MaxPayloadSize)
		return
	}
	key := broadcastKey{origin: c.cfg.Self.ID, id: c.rng.Uint64()}
	c.broadcasts.markSeen(key, now, c.cfg.MaxSeen)
	c.forwardBroadcast(now, BroadcastMessage{ID: key.id, Origin: key.origin, Payload: payload}, 0)
}

// receiveBroadcast delivers a broadcast and forwards it within the
// receiver's subtree.
func (c *Core) receiveBroadcast(now time.Time, from peer.Info, m *BroadcastMessage) {
	if int(m.Depth) > IDBits || m.Origin.IsZero() || len(m.Payload) > c.cfg.MaxPayloadSize {
		c.stats.Malformed++
		c.log.Debug("malformed broadcast dropped", "peer", from.String(), "depth", m.Depth, "bytes", len(m.Payload))
		return
	}
	if !c.broadcasts.markSeen(broadcastKey{origin: m.Origin, id: m.ID}, now, c.cfg.MaxSeen) {
		c.stats.BroadcastDuplicates++
		return
	}
	c.emit(Deliver{From: from, Origin: m.Origin, Payload: m.Payload, Broadcast: true, Hops: int(m.Hops) + 1})
	c.forwardBroadcast(now, BroadcastMessage{ID: m.ID, Origin: m.Origin, Hops: m.Hops, Payload: m.Payload}, int(m.Depth))
}

// forwardBroadcast sends msg to one contact in each bucket from depth on,
// handing each the subtree below it (El-Ansary et al. 2003): the contact
// chosen in bucket i becomes responsible for the IDs sharing i+1 leading
// bits with it.
func (c *Core) forwardBroadcast(now time.Time, msg BroadcastMessage, depth int) {
	if msg.Hops < 255 {
		msg.Hops++
	}
	f := &forward{msg: msg, sentTo: map[peer.ID]int{}, tried: map[peer.ID]struct{}{}, expires: now.Add(broadcastRetryWindow)}
	for i, deepest := depth, c.table.deepest(); i <= deepest; i++ {
		c.forwardTo(f, i)
	}
	if len(f.sentTo) == 0 {
		return
	}
	if len(c.broadcasts.forwards) >= maxForwards {
		c.broadcasts.forwards[0] = nil
		c.broadcasts.forwards = c.broadcasts.forwards[1:]
	}
	c.broadcasts.forwards = append(c.broadcasts.forwards, f)
}

// forwardTo sends f's message to the most recently seen contact of bucket i
// not tried yet, preferring contacts that are not stale.
func (c *Core) forwardTo(f *forward, i int) bool {
	b := c.table.buckets[i]
	if b == nil {
		return false
	}
	var choice *contact
	for pass := 0; pass < 2 && choice == nil; pass++ {
		for j := len(b.contacts) - 1; j >= 0; j-- {
			ct := &b.contacts[j]
			if _, done := f.tried[ct.info.ID]; done || ct.info.ID == f.msg.Origin {
				continue
			}
			if pass == 0 && c.table.stale(ct) {
				continue
			}
			choice = ct
			break
		}
	}
	if choice == nil {
		return false
	}
	msg := f.msg
	msg.Depth = uint16(i + 1)
	f.sentTo[choice.info.ID] = i
	f.tried[choice.info.ID] = struct{}{}
	c.stats.BroadcastsSent++
	c.send(choice.info, &msg)
	return true
}

// retryBroadcasts re-sends, to another contact of the same bucket, the
// recent broadcasts whose chosen contact id is unreachable.
func (c *Core) retryBroadcasts(now time.Time, id peer.ID) {
	for _, f := range c.broadcasts.forwards {
		if !f.expires.After(now) {
			continue
		}
		i, ok := f.sentTo[id]
		if !ok {
			continue
		}
		delete(f.sentTo, id)
		c.forwardTo(f, i)
	}
}
