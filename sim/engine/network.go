package engine

import (
	"fmt"
	"reflect"
	"slices"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/wire"
)

// pruneEvery is how many sends pass between sweeps of the per-link FIFO
// table, which forget links whose last message has already arrived.
const pruneEvery = 1 << 18

// TypeStats counts the messages of one Go type.
type TypeStats struct {
	Type     string `json:"type"`
	Sent     int64  `json:"sent"`
	Received int64  `json:"received"`
	Lost     int64  `json:"lost"`
	Bytes    int64  `json:"bytes"`
}

// typeStats returns the counters of msg's type.
func (s *Sim) typeStats(msg any) *TypeStats {
	goType := reflect.TypeOf(msg)
	stats, ok := s.types[goType]
	if !ok {
		stats = &TypeStats{Type: fmt.Sprintf("%T", msg)}
		s.types[goType] = stats
	}
	return stats
}

// send carries out an overlay.Send from node i: the message arrives after a
// sampled latency, never before an earlier message on the same directed
// link, unless it is lost; a Send to an unknown, dead or unreachable peer
// comes back as overlay.LinkDown after the dial timeout (one round trip by
// default), or vanishes over a kept link with Config.SilentFailures.
func (s *Sim) send(i int32, o overlay.Send) {
	j := s.resolve(o.To)
	silent := j >= 0 && s.deadSilent(j)
	if !silent && (j < 0 || !s.nodes[j].alive || s.nodes[j].group != s.nodes[i].group) {
		if s.cfg.SilentFailures && j >= 0 && slices.Contains(s.nodes[i].keeps, j) {
			return // over a link that no reset broke: lost without a word
		}
		s.linkDownLater(i, o.To, s.dial)
		return
	}
	stats := s.typeStats(o.Msg)
	stats.Sent++
	s.nodes[i].stats.MessagesSent++
	var size uint32
	if s.cfg.CountBytes {
		size = frameOverhead
		data, err := wire.Marshal(o.Msg)
		if err == nil {
			size += uint32(len(data))
		} else {
			s.log.Debug("sim: message not encodable", "type", stats.Type, "err", err)
		}
		if s.cfg.Decode {
			if err == nil {
				o.Msg, err = wire.Unmarshal(data)
			}
			if err != nil {
				s.codecErrors++
				return
			}
		}
		s.nodes[i].stats.BytesSent += int64(size)
		stats.Bytes += int64(size)
	}
	if s.cfg.Drop != nil && s.cfg.Drop(s.Now(), int(i), int(j), o.Msg) {
		stats.Lost++
		s.lost++
		return
	}
	if silent {
		return // sent into the void: counted, never delivered
	}
	if s.loss > 0 && s.network.Float64() < s.loss {
		stats.Lost++
		s.lost++
		return
	}
	arrival := s.now + int64(s.latency.Sample(s.network))
	link := uint64(uint32(i))<<32 | uint64(uint32(j))
	if last, ok := s.lastArrival[link]; ok && last > arrival {
		arrival = last // per-link FIFO: equal times keep their order by sequence
	}
	s.lastArrival[link] = arrival
	s.sendsSincePrune++
	if s.sendsSincePrune >= pruneEvery {
		s.pruneLinks()
	}
	s.push(event{at: arrival, kind: eventDeliver, from: i, to: j, size: size, msg: o.Msg, gen: s.nodes[j].incarn})
}

// deadSilent reports whether node j is dead and swallows what is sent to
// it (Config.DeadSilent, or a CrashSilent crash).
func (s *Sim) deadSilent(j int32) bool {
	n := &s.nodes[j]
	return !n.alive && (s.cfg.DeadSilent || n.crash == CrashSilent)
}

// pruneLinks forgets FIFO constraints that can no longer bind: a link whose
// last message arrives no later than now cannot delay a new one.
func (s *Sim) pruneLinks() {
	s.sendsSincePrune = 0
	for link, last := range s.lastArrival {
		if last <= s.now {
			delete(s.lastArrival, link)
		}
	}
}

// deliver hands a message that reached node j to its core, unless j died or
// was cut off from the sender while the message travelled.
func (s *Sim) deliver(from, to int32, size uint32, msg any) {
	if !s.nodes[to].alive || s.nodes[to].group != s.nodes[from].group {
		s.dropped++
		return
	}
	s.nodes[to].stats.MessagesReceived++
	stats := s.typeStats(msg)
	stats.Received++
	s.nodes[to].stats.BytesReceived += int64(size)
	if s.cfg.OnMessage != nil {
		s.cfg.OnMessage(s.Now(), int(from), int(to), msg)
	}
	if !s.nodes[to].alive {
		return // OnMessage killed it
	}
	s.stepNode(to, overlay.Received{From: s.nodes[from].info, Msg: msg}, false)
}

// connect records that node i keeps a link to peer. A peer that cannot be
// reached yields overlay.LinkDown after one round trip, as a failed dial.
func (s *Sim) connect(i int32, to peer.Info) {
	j := s.resolve(to)
	if j == i || (j >= 0 && s.deadSilent(j)) {
		return
	}
	if j < 0 || !s.nodes[j].alive || s.nodes[j].group != s.nodes[i].group {
		if s.cfg.SilentFailures && j >= 0 && slices.Contains(s.nodes[i].keeps, j) {
			return // already kept: nothing tells the node it is gone
		}
		s.linkDownLater(i, to, s.dial)
		return
	}
	if slices.Contains(s.nodes[i].keeps, j) {
		return
	}
	s.nodes[i].keeps = append(s.nodes[i].keeps, j)
	s.nodes[j].keptBy = append(s.nodes[j].keptBy, i)
}

// disconnect forgets node i's wish to keep a link to the peer with ID id.
// The other end is not told: a link lives while either end keeps it, and a
// core announces its own disconnections with its own messages.
func (s *Sim) disconnect(i int32, id peer.ID) {
	j, ok := s.byID[id]
	if !ok {
		return
	}
	s.unlink(i, j)
}

// unlink removes the record that i keeps a link to j.
func (s *Sim) unlink(i, j int32) {
	s.nodes[i].keeps = removeValue(s.nodes[i].keeps, j)
	s.nodes[j].keptBy = removeValue(s.nodes[j].keptBy, i)
}

// cut breaks the link that i keeps to j and tells i after the detection
// delay.
func (s *Sim) cut(i, j int32) {
	s.unlink(i, j)
	s.linkDownLater(i, s.nodes[j].info, s.detect)
}

// removeValue deletes the first occurrence of v from list, keeping order.
func removeValue(list []int32, v int32) []int32 {
	if k := slices.Index(list, v); k >= 0 {
		return slices.Delete(list, k, k+1)
	}
	return list
}

// Kill crashes node i abruptly: its core is dropped, messages to it are
// lost, sends to it fail, and every node that kept a link to it receives
// overlay.LinkDown after the detection delay (with Config.SilentFailures,
// nobody is told and what is sent over those links vanishes). Killing a
// dead node does nothing. It is Crash(i, CrashReset).
func (s *Sim) Kill(i int) { s.Crash(i, CrashReset) }

// CrashMode says what a crash ([Sim.Crash]) tells the rest of the network.
type CrashMode uint8

const (
	// CrashReset is Kill's crash: the links kept to the node break as a TCP
	// reset would tell (as Config.SilentFailures says).
	CrashReset CrashMode = iota
	// CrashRefusing tells no one: the links kept to the node stay, and
	// sends and dials to it fail with overlay.LinkDown after the dial
	// timeout, as to a host whose system refuses connections.
	CrashRefusing
	// CrashSilent tells no one and answers nothing: the links kept to the
	// node stay, what is sent to it vanishes and dials to it neither
	// succeed nor fail, as to a host powered off (Config.DeadSilent for one
	// node). Only the keepers' own timeouts reveal it.
	CrashSilent
)

// Crash crashes node i as Kill does, telling the network what mode says.
// Crashing a dead node does nothing.
func (s *Sim) Crash(i int, mode CrashMode) {
	if !s.Alive(i) {
		return
	}
	x := int32(i)
	n := &s.nodes[x]
	n.crash = mode
	if !s.cfg.SilentFailures && mode == CrashReset {
		for _, keeper := range slices.Clone(n.keptBy) {
			s.cut(keeper, x)
		}
		n.keptBy = nil
	}
	for _, kept := range n.keeps {
		s.nodes[kept].keptBy = removeValue(s.nodes[kept].keptBy, x)
	}
	n.keeps = nil
	n.alive = false
	n.core = nil
	n.hasTick = false
	n.tickGen++
	pos := s.livePos[x]
	last := s.live[len(s.live)-1]
	s.live[pos] = last
	s.livePos[last] = pos
	s.live = s.live[:len(s.live)-1]
	s.livePos[x] = -1
}

// Restart brings dead node i back with a new core from build, given the
// node's identity as AddNode gave it (a core that must not repeat its
// random choices varies Identity.Seed): a process restarted on the same
// host and keys. The node keeps its partition group and clock skew and
// keeps no link; the links others still keep to it (after a crash that told
// no one) carry messages again. What was in flight to the crashed process
// is lost, even if it would arrive after the restart. As with AddNode, the
// core is not stepped. Restarting a live node is an error.
func (s *Sim) Restart(i int, build func(id Identity) (overlay.Core, error)) error {
	if i < 0 || i >= len(s.nodes) {
		return fmt.Errorf("sim: restart: no node %d", i)
	}
	n := &s.nodes[i]
	if n.alive {
		return fmt.Errorf("sim: restart: node %d (%s) is alive", i, n.info)
	}
	_, coreSeed, err := DeriveIdentity(s.cfg.Seed, i)
	if err != nil {
		return fmt.Errorf("sim: identity of node %d: %w", i, err)
	}
	core, err := build(Identity{Index: i, Key: n.key, Info: n.info, Seed: coreSeed})
	if err != nil {
		return fmt.Errorf("sim: core of node %d (%s): %w", i, n.info, err)
	}
	if core == nil {
		return fmt.Errorf("sim: core of node %d (%s) is nil", i, n.info)
	}
	n.core, n.alive, n.crash = core, true, CrashReset
	n.incarn++
	s.livePos[i] = int32(len(s.live))
	s.live = append(s.live, int32(i))
	return nil
}

// Partition splits the network: each group lists node indices, and nodes
// named in no group form one more group together. Messages and links
// between groups are cut: kept links across groups break (both ends are
// told after the detection delay; with Config.SilentFailures they stay and
// carry nothing until Heal) and messages in flight across them are lost. A
// new Partition replaces the previous one.
func (s *Sim) Partition(groups ...[]int) {
	for i := range s.nodes {
		s.nodes[i].group = 0
	}
	for g, members := range groups {
		for _, i := range members {
			if i >= 0 && i < len(s.nodes) {
				s.nodes[i].group = int32(g + 1)
			}
		}
	}
	for i := range s.nodes {
		n := &s.nodes[i]
		if !n.alive || s.cfg.SilentFailures {
			continue
		}
		for _, j := range slices.Clone(n.keeps) {
			if s.nodes[j].group != n.group {
				s.cut(int32(i), j)
			}
		}
	}
}

// Heal removes every partition. Links are not restored: cores reconnect on
// their own.
func (s *Sim) Heal() {
	for i := range s.nodes {
		s.nodes[i].group = 0
	}
}

// Links returns the nodes that node i keeps a link to, in the order the
// links were made.
func (s *Sim) Links(i int) []int {
	out := make([]int, len(s.nodes[i].keeps))
	for k, j := range s.nodes[i].keeps {
		out[k] = int(j)
	}
	return out
}

// Send carries out an overlay.Send on behalf of node i, as if its core had
// output it: a runtime's own traffic, such as a message a host relays over a
// direct connection for its core. Sending from a dead node does nothing.
func (s *Sim) Send(i int, o overlay.Send) {
	if !s.Alive(i) {
		return
	}
	s.send(int32(i), o)
}
