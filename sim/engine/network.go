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
	silent := j >= 0 && !s.nodes[j].alive && s.cfg.DeadSilent
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
	s.push(event{at: arrival, kind: eventDeliver, from: i, to: j, size: size, msg: o.Msg})
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
	if j == i || (j >= 0 && !s.nodes[j].alive && s.cfg.DeadSilent) {
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
// dead node does nothing.
func (s *Sim) Kill(i int) {
	if !s.Alive(i) {
		return
	}
	x := int32(i)
	n := &s.nodes[x]
	if !s.cfg.SilentFailures {
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
