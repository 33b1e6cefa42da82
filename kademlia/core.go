package kademlia

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
)

// rpcKind says what a pending request is for, and so which reply it expects.
type rpcKind uint8

const (
	rpcProbe     rpcKind = iota + 1 // PING of a least-recently-seen contact
	rpcFindNode                     // FIND_NODE of a lookup
	rpcFindValue                    // FIND_VALUE of a Get
	rpcStore                        // STORE of a Put, replication or cache
	rpcBootstrap                    // FIND_NODE to a bootstrap address
)

// pendingRPC is a request waiting for its reply.
type pendingRPC struct {
	to    peer.Info
	kind  rpcKind
	owner uint64 // handle of the lookup or bootstrap, 0 for none
	// late is set once RPCTimeout has passed without a reply: the request
	// no longer holds up its lookup, but its reply is still taken until
	// LateReplyTimeout.
	late bool
	// msg is the request, kept to send it again once when its link goes
	// down (resent).
	msg    any
	resent bool
}

// timeout is an entry of a FIFO of request deadlines. Every request has the
// same two deadlines, RPCTimeout and LateReplyTimeout after it was sent, so
// each FIFO's deadlines come in the order requests were sent.
type timeout struct {
	at  time.Time
	rpc uint64
}

// Core is the Kademlia state machine (an overlay.Core). It is not safe for
// concurrent use: one driver steps it.
type Core struct {
	cfg     Config
	log     *slog.Logger
	rng     *rand.Rand
	table   *table
	store   *recordStore
	limiter *rateLimiter

	// published holds the records this node put, to republish them.
	published map[peer.ID]*publishedRecord

	rpcs map[uint64]*pendingRPC
	// timeouts holds the RPCTimeout deadlines, lateTimeouts the
	// LateReplyTimeout ones; each is a FIFO by deadline.
	timeouts, lateTimeouts []timeout

	lookups    map[uint64]*lookup
	bootstraps map[uint64]*bootstrap
	nextHandle uint64

	broadcasts broadcastState

	outputs         []any
	started         bool
	now             time.Time
	nextMaintenance time.Time
	stats           Stats
}

// publishedRecord is a record this node wrote and republishes.
type publishedRecord struct {
	rec           Record
	nextRepublish time.Time
}

// Stats counts what a core did.
type Stats struct {
	// MessagesSent counts every message handed to the driver.
	MessagesSent uint64
	// RPCsSent counts requests (PING, FIND_NODE, FIND_VALUE, STORE).
	RPCsSent uint64
	// RPCTimeouts counts requests that got no reply within
	// LateReplyTimeout: failed.
	RPCTimeouts uint64
	// RPCsLate counts requests that got no reply within RPCTimeout, and
	// LateReplies those of them answered afterwards (within
	// LateReplyTimeout).
	RPCsLate, LateReplies uint64
	// RPCsResent counts requests sent again because their link went down
	// while they waited for the reply.
	RPCsResent uint64
	// BroadcastsSent counts broadcast messages sent or forwarded.
	BroadcastsSent uint64
	// BroadcastDuplicates counts broadcast messages received twice.
	BroadcastDuplicates uint64
	// StoresRefused counts STOREs this node refused.
	StoresRefused uint64
	// Malformed counts messages dropped as malformed.
	Malformed uint64
}

var _ overlay.Core = (*Core)(nil)

// New returns a core for cfg, validated and with defaults filled in.
func New(cfg Config) (*Core, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Core{
		cfg:        cfg,
		log:        cfg.Logger,
		rng:        rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x6b61646d6c6961)),
		table:      newTable(cfg.Self.ID, cfg.K, cfg.ReplacementCacheSize, cfg.StaleAfter, cfg.ProbeAfter),
		store:      newRecordStore(&cfg),
		limiter:    newRateLimiter(cfg.StoreRate, cfg.StoreBurst, cfg.MaxTrackedPeers),
		published:  map[peer.ID]*publishedRecord{},
		rpcs:       map[uint64]*pendingRPC{},
		lookups:    map[uint64]*lookup{},
		bootstraps: map[uint64]*bootstrap{},
	}
	c.broadcasts.init()
	return c, nil
}

// Self returns the node's own contact.
func (c *Core) Self() peer.Info { return c.cfg.Self }

// Config returns the configuration in use, defaults filled in.
func (c *Core) Config() Config { return c.cfg }

// Stats returns the core's counters.
func (c *Core) Stats() Stats { return c.stats }

// TableSize returns the number of contacts in the routing table.
func (c *Core) TableSize() int { return c.table.size }

// Contacts returns every contact of the routing table, bucket by bucket.
func (c *Core) Contacts() []peer.Info {
	out := make([]peer.Info, 0, c.table.size)
	c.table.forEach(func(_ int, ct *contact) { out = append(out, ct.info) })
	return out
}

// Contact returns the routing table's contact with id, if it holds one.
func (c *Core) Contact(id peer.ID) (peer.Info, bool) {
	if ct := c.table.get(id); ct != nil {
		return ct.info, true
	}
	return peer.Info{}, false
}

// Closest returns the n contacts of the routing table closest to target.
func (c *Core) Closest(target peer.ID, n int) []peer.Info { return c.table.closest(target, n, false) }

// StoredRecord returns the live record this node holds under key.
func (c *Core) StoredRecord(key peer.ID) (Record, bool) {
	entry, ok := c.store.get(key, c.now)
	if !ok {
		return Record{}, false
	}
	return entry.rec, true
}

// StoredCount returns the number of records this node holds for the network.
func (c *Core) StoredCount() int { return len(c.store.records) }

// Step implements overlay.Core.
func (c *Core) Step(now time.Time, input any) {
	if !c.started {
		c.started = true
		c.now = now
		c.table.created = now
		c.nextMaintenance = now.Add(c.cfg.MaintenanceInterval)
	}
	if now.Before(c.now) {
		now = c.now // time never runs backwards inside the core
	}
	c.now = now
	switch in := input.(type) {
	case overlay.Received:
		c.receive(now, in.From, in.Msg)
	case *overlay.Received:
		if in != nil {
			c.receive(now, in.From, in.Msg)
		}
	case overlay.LinkDown:
		c.linkDown(now, in)
	case overlay.Tick:
	case Bootstrap:
		c.startBootstrap(now, in)
	case Lookup:
		c.startLookup(now, lookupNodes, in.ReqID, in.Target, nil)
	case Get:
		c.startGet(now, in)
	case Put:
		c.startPut(now, in)
	case Broadcast:
		c.originateBroadcast(now, in.Payload)
	case Direct:
		c.sendDirect(in)
	default:
		c.log.Warn("unknown input ignored", "type", fmt.Sprintf("%T", input))
	}
	c.expireRPCs(now)
	if !now.Before(c.nextMaintenance) {
		c.maintain(now)
	}
}

// Drain implements overlay.Core.
func (c *Core) Drain(dst []any) []any {
	dst = append(dst, c.outputs...)
	clear(c.outputs)
	c.outputs = c.outputs[:0]
	return dst
}

// NextDeadline implements overlay.Core: the earliest request deadline, or
// the next maintenance.
func (c *Core) NextDeadline() (time.Time, bool) {
	if !c.started {
		return time.Time{}, false
	}
	next := c.nextMaintenance
	for _, fifo := range [][]timeout{c.timeouts, c.lateTimeouts} {
		if len(fifo) > 0 && fifo[0].at.Before(next) {
			next = fifo[0].at
		}
	}
	return next, true
}

func (c *Core) emit(out any) { c.outputs = append(c.outputs, out) }

func (c *Core) send(to peer.Info, msg any) {
	c.stats.MessagesSent++
	c.outputs = append(c.outputs, overlay.Send{To: to, Msg: msg})
}

// request sends an RPC to to and remembers it until its reply or deadline.
// It returns the request ID.
func (c *Core) request(now time.Time, to peer.Info, kind rpcKind, owner uint64, build func(rpc uint64) any) uint64 {
	id := c.rng.Uint64()
	for id == 0 || c.rpcs[id] != nil {
		id = c.rng.Uint64()
	}
	msg := build(id)
	c.rpcs[id] = &pendingRPC{to: to, kind: kind, owner: owner, msg: msg}
	c.timeouts = append(c.timeouts, timeout{at: now.Add(c.cfg.RPCTimeout), rpc: id})
	c.lateTimeouts = append(c.lateTimeouts, timeout{at: now.Add(c.cfg.LateReplyTimeout), rpc: id})
	c.stats.RPCsSent++
	c.send(to, msg)
	return id
}

// expireRPCs marks late the requests unanswered after RPCTimeout, and
// fails those unanswered after LateReplyTimeout.
func (c *Core) expireRPCs(now time.Time) {
	c.timeouts = c.expire(now, c.timeouts, func(id uint64, rpc *pendingRPC) {
		if rpc.late {
			return
		}
		rpc.late = true
		c.stats.RPCsLate++
		c.rpcLate(now, rpc)
	})
	c.lateTimeouts = c.expire(now, c.lateTimeouts, func(id uint64, rpc *pendingRPC) {
		delete(c.rpcs, id)
		c.stats.RPCTimeouts++
		c.rpcFailed(now, id, rpc, fmt.Errorf("no reply from %s within %v", rpc.to, c.cfg.LateReplyTimeout))
	})
}

// expire calls fn for every pending request of fifo whose deadline has
// passed, and returns fifo without them and without the entries of
// requests answered since.
func (c *Core) expire(now time.Time, fifo []timeout, fn func(id uint64, rpc *pendingRPC)) []timeout {
	n := 0
	for n < len(fifo) && !fifo[n].at.After(now) {
		id := fifo[n].rpc
		n++
		if rpc := c.rpcs[id]; rpc != nil {
			fn(id, rpc)
		}
	}
	if n > 0 {
		fifo = append(fifo[:0], fifo[n:]...)
	}
	for len(fifo) > 0 && c.rpcs[fifo[0].rpc] == nil {
		fifo = fifo[1:]
	}
	return fifo
}

// rpcLate handles a request unanswered after RPCTimeout: its lookup stops
// waiting for it and asks the next candidate (paper section 2.3: nodes that
// fail to respond quickly are removed from consideration until and unless
// they do respond). The request stays pending until LateReplyTimeout: a
// reply that comes meanwhile is taken as any other.
func (c *Core) rpcLate(now time.Time, rpc *pendingRPC) {
	switch rpc.kind {
	case rpcFindNode, rpcFindValue:
		if l := c.lookups[rpc.owner]; l != nil {
			c.lookupLate(now, l, rpc.to.ID)
		}
	}
}

// rpcFailed handles a request that will get no reply.
func (c *Core) rpcFailed(now time.Time, id uint64, rpc *pendingRPC, reason error) {
	c.log.Debug("request failed", "peer", rpc.to.String(), "rpc", id, "err", reason)
	if rpc.kind == rpcProbe {
		c.table.probeFailed(rpc.to.ID)
	} else if ct := c.table.get(rpc.to.ID); ct != nil && ct.info.Addr == rpc.to.Addr {
		// Only a failure at the address the table knows counts against
		// the contact: a peer advertising a wrong address for someone
		// else's ID must not make that contact stale.
		c.table.failed(rpc.to.ID)
	}
	switch rpc.kind {
	case rpcFindNode, rpcFindValue:
		if l := c.lookups[rpc.owner]; l != nil {
			c.lookupFailed(now, l, rpc.to.ID)
		}
	case rpcStore:
		if l := c.lookups[rpc.owner]; l != nil {
			c.storeDone(now, l, rpc.to, fmt.Errorf("%w: %v", ErrNotStored, reason))
		}
	case rpcBootstrap:
		if b := c.bootstraps[rpc.owner]; b != nil {
			c.bootstrapReply(now, b, rpc.owner, nil)
		}
	}
}

// linkDown sends every request pending on the lost peer (or, for a
// bootstrap address, on that address) once more, and fails those already
// sent twice; it retries broadcasts sent to the peer.
//
// A link also goes down when the peer closes an idle connection (its
// connection manager trims the least recently used ones) while a request
// to it is on the way: the peer still reads the request and answers it on a
// new connection, but the link is down here before the answer comes.
// Failing the request then would drop a live node from the lookup, which
// then misses one of the K closest; sending it again costs the peer a
// duplicate (whose reply is ignored) and a dead peer one more dial, which
// fails at once where the first did.
func (c *Core) linkDown(now time.Time, in overlay.LinkDown) {
	if in.Peer.IsZero() && in.Addr == "" {
		return
	}
	var pending []uint64
	for id, rpc := range c.rpcs {
		// A failure at one address says nothing of the same ID at
		// another (a third party may have advertised a wrong one).
		sameAddr := in.Addr == "" || rpc.to.Addr == in.Addr
		if (!in.Peer.IsZero() && rpc.to.ID == in.Peer && sameAddr) || (in.Peer.IsZero() && rpc.to.ID.IsZero() && rpc.to.Addr == in.Addr) {
			pending = append(pending, id)
		}
	}
	// Map order is random: go in request order so runs repeat.
	sortUint64s(pending)
	for _, id := range pending {
		rpc := c.rpcs[id]
		if !rpc.resent {
			rpc.resent = true
			c.stats.RPCsResent++
			c.send(rpc.to, rpc.msg)
			continue
		}
		delete(c.rpcs, id)
		c.rpcFailed(now, id, rpc, fmt.Errorf("link down: %v", in.Err))
	}
	if !in.Peer.IsZero() {
		c.retryBroadcasts(now, in.Peer)
	}
}

// takeRPC returns and forgets the pending request id if from may answer it
// with a reply of kind.
func (c *Core) takeRPC(id uint64, from peer.ID, kinds ...rpcKind) *pendingRPC {
	rpc := c.rpcs[id]
	if rpc == nil {
		return nil
	}
	if !rpc.to.ID.IsZero() && rpc.to.ID != from {
		return nil
	}
	for _, k := range kinds {
		if rpc.kind == k {
			delete(c.rpcs, id)
			if rpc.late {
				c.stats.LateReplies++
			}
			return rpc
		}
	}
	return nil
}

// validContacts checks the contacts a peer sent.
func (c *Core) validContacts(from peer.Info, contacts []peer.Info) error {
	if len(contacts) > c.cfg.MaxContactsPerReply {
		return fmt.Errorf("%w: %s sent %d contacts, limit %d", ErrMalformed, from, len(contacts), c.cfg.MaxContactsPerReply)
	}
	for i := range contacts {
		if contacts[i].ID.IsZero() {
			return fmt.Errorf("%w: %s sent a contact with the zero ID", ErrMalformed, from)
		}
		if contacts[i].Addr == "" || len(contacts[i].Addr) > c.cfg.MaxAddrLen {
			return fmt.Errorf("%w: %s sent contact %s with a %d-byte address", ErrMalformed, from, contacts[i].ID.Short(), len(contacts[i].Addr))
		}
	}
	return nil
}

// replyContacts returns the contacts to answer requester with.
func (c *Core) replyContacts(target peer.ID, requester peer.ID) []peer.Info {
	list := c.table.closest(target, c.cfg.MaxContactsPerReply+1, true)
	out := list[:0]
	for _, info := range list {
		if info.ID != requester && len(out) < c.cfg.MaxContactsPerReply {
			out = append(out, info)
		}
	}
	return out
}

// observe updates the routing table with a peer heard from, and probes the
// least recently seen contact of a full bucket.
func (c *Core) observe(now time.Time, from peer.Info) {
	if len(from.Addr) > c.cfg.MaxAddrLen {
		return
	}
	if probe := c.table.seen(from, now); !probe.ID.IsZero() {
		c.request(now, probe, rpcProbe, 0, func(rpc uint64) any { return &Ping{RPC: rpc} })
	}
}

// receive handles one message from a peer.
func (c *Core) receive(now time.Time, from peer.Info, msg any) {
	if from.ID.IsZero() || from.ID == c.cfg.Self.ID || msg == nil {
		return
	}
	switch m := msg.(type) {
	case *Ping:
		c.observe(now, from)
		c.send(from, &Pong{RPC: m.RPC})
	case *FindNode:
		c.observe(now, from)
		c.send(from, &FindNodeReply{RPC: m.RPC, Contacts: c.replyContacts(m.Target, from.ID)})
	case *FindValue:
		c.observe(now, from)
		reply := &FindValueReply{RPC: m.RPC}
		if entry, ok := c.store.get(m.Key, now); ok {
			w := entry.rec.toWire(entry.rec.Expires.Sub(now))
			reply.Record = &w
		} else {
			reply.Contacts = c.replyContacts(m.Key, from.ID)
		}
		c.send(from, reply)
	case *Store:
		c.observe(now, from)
		c.send(from, &StoreReply{RPC: m.RPC, Code: c.acceptStore(now, from, &m.Record)})
	case *Pong:
		if rpc := c.takeRPC(m.RPC, from.ID, rpcProbe); rpc != nil {
			c.observe(now, from)
		}
	case *FindNodeReply:
		c.handleNodes(now, from, m.RPC, m.Contacts, nil)
	case *FindValueReply:
		c.handleNodes(now, from, m.RPC, m.Contacts, m.Record)
	case *StoreReply:
		if rpc := c.takeRPC(m.RPC, from.ID, rpcStore); rpc != nil {
			c.observe(now, from)
			if l := c.lookups[rpc.owner]; l != nil {
				var err error
				if m.Code != StoreOK {
					err = fmt.Errorf("%s refused record %s: %w", from, l.target.Short(), m.Code.Err())
				}
				c.storeDone(now, l, from, err)
			}
		}
	case *BroadcastMessage:
		c.observe(now, from)
		c.receiveBroadcast(now, from, m)
	case *DirectMessage:
		c.observe(now, from)
		if len(m.Payload) > c.cfg.MaxPayloadSize {
			c.stats.Malformed++
			c.log.Debug("direct message too large", "peer", from.String(), "bytes", len(m.Payload))
			return
		}
		c.emit(Deliver{From: from, Origin: from.ID, Payload: m.Payload})
	default:
		c.log.Debug("unexpected message ignored", "peer", from.String(), "type", fmt.Sprintf("%T", msg))
	}
}

// handleNodes handles a FIND_NODE or FIND_VALUE reply.
func (c *Core) handleNodes(now time.Time, from peer.Info, id uint64, contacts []peer.Info, record *WireRecord) {
	rpc := c.takeRPC(id, from.ID, rpcFindNode, rpcFindValue, rpcBootstrap)
	if rpc == nil {
		return
	}
	if err := c.validContacts(from, contacts); err != nil {
		c.stats.Malformed++
		c.log.Debug("bad reply", "peer", from.String(), "err", err)
		c.rpcFailed(now, id, rpc, err)
		return
	}
	c.observe(now, from)
	switch rpc.kind {
	case rpcBootstrap:
		if b := c.bootstraps[rpc.owner]; b != nil {
			c.bootstrapReply(now, b, rpc.owner, contacts)
		}
	case rpcFindNode, rpcFindValue:
		if l := c.lookups[rpc.owner]; l != nil {
			c.lookupReply(now, l, from, contacts, record)
		}
	}
}

// acceptStore validates and stores a record a peer sent.
func (c *Core) acceptStore(now time.Time, from peer.Info, w *WireRecord) StoreCode {
	if !c.limiter.allow(from.ID, now) {
		c.stats.StoresRefused++
		c.log.Debug("STORE refused", "peer", from.String(), "err", ErrRateLimited)
		return StoreRateLimited
	}
	if w.TTL == 0 {
		c.stats.StoresRefused++
		return StoreMalformed
	}
	rec := fromWire(w, now, c.cfg.RecordTTL)
	if _, err := c.store.put(rec, from.ID, now, c.replicateAt(now)); err != nil {
		c.stats.StoresRefused++
		c.log.Debug("STORE refused", "peer", from.String(), "key", rec.Key.Short(), "err", err)
		return codeOf(err)
	}
	return StoreOK
}

// replicateAt is when a record stored at now is next replicated: one
// interval later, plus up to a tenth of it at random so that the holders of
// a key do not all replicate at once.
func (c *Core) replicateAt(now time.Time) time.Time {
	jitter := time.Duration(c.rng.Int64N(int64(c.cfg.ReplicateInterval/10) + 1))
	return now.Add(c.cfg.ReplicateInterval + jitter)
}

func (c *Core) sendDirect(in Direct) {
	if len(in.Payload) > c.cfg.MaxPayloadSize || in.To.ID.IsZero() || in.To.ID == c.cfg.Self.ID {
		c.log.Warn("direct message not sent", "peer", in.To.String(), "bytes", len(in.Payload))
		return
	}
	if in.To.Addr == "" {
		if ct := c.table.get(in.To.ID); ct != nil {
			in.To.Addr = ct.info.Addr
		}
	}
	c.send(in.To, &DirectMessage{Payload: in.Payload})
}
