package tcp

import (
	"container/list"
	"net"
	"net/netip"
	"sync"
	"time"
)

const (
	// memberMemory is how long an address that completed a handshake keeps
	// its access to the slots reserved for members.
	memberMemory = time.Hour
	// maxRememberedAddrs bounds the addresses remembered as members; the
	// least recently seen is forgotten first.
	maxRememberedAddrs = 4096
)

// admission decides which inbound connections may go on with a handshake.
// A connection waits for message 1 among the idle connections: at most
// idleFactor × MaxPendingHandshakes of them, each for FirstMessageTimeout
// at most; when they are all taken, a new connection closes an old one
// (counted as "overload": see evictable), so that however many idle
// sockets an outsider holds and however fast it reopens them, a peer that
// sends message 1 at once (every real node does) is read, even from the
// flood's own address.
// Message 1, authenticated by the cluster secret, then takes a handshake
// slot: the slots are bounded in total and per source address, and a share
// of them is kept for addresses that completed a handshake recently
// (members), so that an insider stalling handshakes from a few addresses
// can neither take every slot nor starve the members.
type admission struct {
	maxPending int // MaxPendingHandshakes
	perAddr    int // MaxHandshakesPerAddr
	reserve    int // MemberHandshakeReserve
	maxIdle    int // idleFactor × MaxPendingHandshakes

	mu sync.Mutex // guards the fields below
	// idle holds the tickets of connections waiting for message 1,
	// oldest first; idleByAddr counts them per source address.
	idle       list.List
	idleByAddr map[netip.Addr]int
	// pending counts the handshakes past message 1 (the slots taken).
	pending int
	// byAddr counts them per source address.
	byAddr map[netip.Addr]int
	// members maps addresses that completed a handshake to when they last
	// did (or last closed a connection).
	members map[netip.Addr]time.Time
	// seen holds the ephemeral keys of the latest messages 1, in seenRing
	// (oldest at seenNext once full).
	seen     map[[32]byte]struct{}
	seenRing [][32]byte
	seenNext int
}

// idleFactor sets how many connections may wait for message 1, per
// handshake slot: a connection closed to make room has had to wait behind
// that many newer ones, which a real peer's message 1 never does.
const idleFactor = 4

// ticket is one inbound connection's place: among the idle ones, then in a
// handshake slot.
type ticket struct {
	ip   netip.Addr
	raw  net.Conn
	elem *list.Element // in admission.idle while the connection is idle
	slot bool          // holds a handshake slot
	// evicted: the connection was closed idle to make room.
	evicted bool
}

func newAdmission(cfg Config) *admission {
	return &admission{
		maxPending: cfg.MaxPendingHandshakes,
		perAddr:    cfg.MaxHandshakesPerAddr,
		reserve:    cfg.MemberHandshakeReserve,
		maxIdle:    idleFactor * cfg.MaxPendingHandshakes,
		byAddr:     make(map[netip.Addr]int),
		idleByAddr: make(map[netip.Addr]int),
		members:    make(map[netip.Addr]time.Time),
		seen:       make(map[[32]byte]struct{}),
	}
}

// sourceAddr returns the IP address of a socket's remote end (IPv4-mapped
// IPv6 addresses unmapped), or the zero address when it has none.
func sourceAddr(addr net.Addr) netip.Addr {
	if tcpAddr, ok := addr.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(tcpAddr.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}

// admit places raw, a new connection from ip, among the idle ones, closing
// an old idle connection when they are all taken.
func (a *admission) admit(ip netip.Addr, raw net.Conn) *ticket {
	var evicted net.Conn
	a.mu.Lock()
	if a.idle.Len() >= a.maxIdle {
		victim := a.evictable()
		a.removeIdle(victim)
		victim.evicted = true
		evicted = victim.raw
	}
	t := &ticket{ip: ip, raw: raw}
	t.elem = a.idle.PushBack(t)
	a.idleByAddr[ip]++
	a.mu.Unlock()
	if evicted != nil {
		evicted.Close()
	}
	return t
}

// evictScan is how many of the oldest idle connections admit looks at for
// one from an address that holds several.
const evictScan = 16

// evictable returns the idle connection to close to make room: the oldest
// among the evictScan oldest whose address holds several idle connections
// (a flood's), or else the oldest. A peer's connection, alone from its
// address, is then closed only when the flood comes from as many addresses
// as it has sockets. The caller holds mu; idle is not empty.
func (a *admission) evictable() *ticket {
	e := a.idle.Front()
	for range evictScan {
		if e == nil {
			break
		}
		if t := e.Value.(*ticket); a.idleByAddr[t.ip] > 1 {
			return t
		}
		e = e.Next()
	}
	return a.idle.Front().Value.(*ticket)
}

// removeIdle takes t out of the idle connections. The caller holds mu.
func (a *admission) removeIdle(t *ticket) {
	if t.elem == nil {
		return
	}
	a.idle.Remove(t.elem)
	t.elem = nil
	if a.idleByAddr[t.ip] <= 1 {
		delete(a.idleByAddr, t.ip)
	} else {
		a.idleByAddr[t.ip]--
	}
}

// take gives t's connection, whose message 1 authenticated, a handshake
// slot, or returns the error it is refused with: closed idle to make room,
// message 1 seen before (a replay), or a limit on slots reached.
func (a *admission) take(t *ticket, msg1 []byte, now time.Time) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if t.evicted {
		return refuse(reasonOverload, "closed idle to make room for a newer connection")
	}
	a.removeIdle(t)
	if a.replayed(msg1) {
		return refuse(reasonProtocol, "message 1 replayed (its ephemeral key was seen before)")
	}
	if a.byAddr[t.ip] >= a.perAddr {
		return refuse(reasonPerAddress, "%d handshakes in progress from %s", a.perAddr, t.ip)
	}
	limit := a.maxPending - a.reserve
	if a.isMember(t.ip, now) {
		limit = a.maxPending
	}
	if a.pending >= limit {
		return refuse(reasonOverload, "%d handshakes in progress", a.pending)
	}
	a.pending++
	a.byAddr[t.ip]++
	t.slot = true
	return nil
}

// seenMessages1 is how many of the latest messages 1 admission remembers,
// to refuse replays.
const seenMessages1 = 4096

// replayed reports whether msg1's ephemeral key is among the last
// seenMessages1 ones, and remembers it. Message 1 is authenticated by the
// cluster secret but carries no time: without this, an outsider who
// captured one (on a shared network) could replay it from many sockets and
// hold handshake slots until their deadline. A real initiator's ephemeral
// key is fresh each time. The caller holds mu.
func (a *admission) replayed(msg1 []byte) bool {
	if len(msg1) < 32 {
		return false
	}
	var e [32]byte
	copy(e[:], msg1)
	if _, ok := a.seen[e]; ok {
		return true
	}
	if len(a.seenRing) < seenMessages1 {
		a.seenRing = append(a.seenRing, e)
	} else {
		delete(a.seen, a.seenRing[a.seenNext])
		a.seenRing[a.seenNext] = e
		a.seenNext = (a.seenNext + 1) % seenMessages1
	}
	a.seen[e] = struct{}{}
	return false
}

// release gives back t's place, idle or slot, once its handshake ended; it
// reports whether the connection was closed idle to make room.
func (a *admission) release(t *ticket) (evicted bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.removeIdle(t)
	if t.slot {
		t.slot = false
		a.pending--
		if a.byAddr[t.ip] <= 1 {
			delete(a.byAddr, t.ip)
		} else {
			a.byAddr[t.ip]--
		}
	}
	return t.evicted
}

// isMember reports whether ip completed a handshake within memberMemory.
// The caller holds mu.
func (a *admission) isMember(ip netip.Addr, now time.Time) bool {
	seen, ok := a.members[ip]
	return ok && now.Sub(seen) < memberMemory
}

// remember records that ip completed a handshake (or held a connection
// until now).
func (a *admission) remember(ip netip.Addr, now time.Time) {
	if !ip.IsValid() {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.members[ip]; !ok && len(a.members) >= maxRememberedAddrs {
		var oldest netip.Addr
		var oldestSeen time.Time
		for addr, seen := range a.members {
			if !oldest.IsValid() || seen.Before(oldestSeen) {
				oldest, oldestSeen = addr, seen
			}
		}
		delete(a.members, oldest)
	}
	a.members[ip] = now
}

// inboundConn is the responder's socket during a handshake: the first
// message must arrive within FirstMessageTimeout, the rest of the
// handshake within HandshakeTimeout of the connection's acceptance.
type inboundConn struct {
	countingConn
	deadline  time.Time // end of the whole handshake
	admission *admission
	ticket    *ticket
}

func (c *inboundConn) firstMessageRead(msg1 []byte) error {
	if err := c.admission.take(c.ticket, msg1, time.Now()); err != nil {
		return err
	}
	return c.Conn.SetDeadline(c.deadline)
}
