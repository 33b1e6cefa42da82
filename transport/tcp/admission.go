package tcp

import (
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

// admission decides which inbound connections may start a handshake. It
// bounds the handshakes in progress in total and per source address, and
// keeps a share of the slots for addresses that completed a handshake
// recently (members), so that a flood of idle sockets from a few addresses
// can neither take every slot nor starve the members.
type admission struct {
	maxPending int // MaxPendingHandshakes
	perAddr    int // MaxHandshakesPerAddr
	reserve    int // MemberHandshakeReserve

	mu sync.Mutex // guards the fields below
	// pending counts the inbound handshakes in progress.
	pending int
	// byAddr counts them per source address.
	byAddr map[netip.Addr]int
	// members maps addresses that completed a handshake to when they last
	// did (or last closed a connection).
	members map[netip.Addr]time.Time
}

func newAdmission(cfg Config) *admission {
	return &admission{
		maxPending: cfg.MaxPendingHandshakes,
		perAddr:    cfg.MaxHandshakesPerAddr,
		reserve:    cfg.MemberHandshakeReserve,
		byAddr:     make(map[netip.Addr]int),
		members:    make(map[netip.Addr]time.Time),
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

// admit takes a handshake slot for a connection from ip, or returns the
// reason it is refused.
func (a *admission) admit(ip netip.Addr, now time.Time) (refuseReason, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.byAddr[ip] >= a.perAddr {
		return reasonPerAddress, false
	}
	limit := a.maxPending - a.reserve
	if a.isMember(ip, now) {
		limit = a.maxPending
	}
	if a.pending >= limit {
		return reasonOverload, false
	}
	a.pending++
	a.byAddr[ip]++
	return 0, true
}

// release gives back the slot admit took for ip.
func (a *admission) release(ip netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pending--
	if a.byAddr[ip] <= 1 {
		delete(a.byAddr, ip)
	} else {
		a.byAddr[ip]--
	}
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
	deadline time.Time // end of the whole handshake
}

func (c *inboundConn) firstMessageRead() { c.Conn.SetDeadline(c.deadline) }
