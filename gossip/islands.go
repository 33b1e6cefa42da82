package gossip

// Island detection: HyParView can leave groups of nodes whose active views
// are full among themselves (after a mass failure, say) with no link between
// the groups, and no shuffle or repair ever crosses between them. Every
// member still answers probes, so the member lists do not show it. What does
// show it is the broadcasts: a broadcast reaches every node of the island it
// starts in and no other. So probes and their replies carry the IDs of a few
// broadcasts the sender delivered between recentMinAge and recentMaxAge ago;
// a node that has never seen one of them is in another island, and joins
// again through the peer that told it, which links the two islands. A quiet
// network has no broadcasts to compare, so a node that has delivered nothing
// for a ProbeInterval sends a tiny beacon now and then (about one per
// ProbeInterval across the whole network, none while other broadcasts flow).

import (
	"encoding/binary"
	"time"

	"github.com/p2p-go/p2p/hyparview"
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/plumtree"
)

const (
	// recentSamples is the number of delivered broadcast IDs a node keeps
	// to put in its probes, at least sampleSpacing apart.
	recentSamples = 8
	sampleSpacing = time.Second
	// recentMinAge leaves a broadcast time to reach its whole island before
	// its absence means anything; recentMaxAge keeps well inside the time
	// a seen ID is remembered. Each ID travels with its age, so that a node
	// ignores the broadcasts sent before it joined.
	recentMinAge = 5 * time.Second
	recentMaxAge = 30 * time.Second
	// maxSampleLateness is the longest a broadcast may take from its
	// origin's send time to its delivery here and still be a sample: the
	// margin checkRecent gives a node that joined just before a broadcast
	// was sent. (It needs the clocks to agree within about that much; a
	// node whose clock is ahead of the origins' samples nothing.)
	maxSampleLateness = time.Second
	// maxRecent bounds the IDs a probe or a membership event may carry.
	maxRecent = 8
	// maxMissed bounds the other islands' broadcasts remembered as acted on.
	maxMissed = 1024
)

type sample struct {
	id plumtree.MessageID
	at time.Time
}

// recordSample remembers a broadcast delivered (or sent) at now.
func (c *Core) recordSample(now time.Time, id plumtree.MessageID) {
	last := c.samples[(c.sampleNext+recentSamples-1)%recentSamples]
	if !last.at.IsZero() && now.Sub(last.at) < sampleSpacing {
		return
	}
	c.samples[c.sampleNext] = sample{id: id, at: now}
	c.sampleNext = (c.sampleNext + 1) % recentSamples
}

// lastSample returns when the latest sample was taken (zero if none).
func (c *Core) lastSample() time.Time {
	return c.samples[(c.sampleNext+recentSamples-1)%recentSamples].at
}

// recent returns the sampled broadcasts of the right age to put in a probe.
func (c *Core) recent(now time.Time) []RecentBroadcast {
	var out []RecentBroadcast
	for _, s := range c.samples {
		if age := now.Sub(s.at); !s.at.IsZero() && age >= recentMinAge && age <= c.maxRecentAge() {
			out = append(out, RecentBroadcast{ID: s.id, AgeMillis: uint32(age / time.Millisecond)})
		}
	}
	return out
}

func (c *Core) maxRecentAge() time.Duration {
	return min(recentMaxAge, c.pt.SeenTTL()/2)
}

// probeMsg returns probe p's message, with this node's recent broadcasts
// and the claim against the member that this node has heard, if any.
func (c *Core) probeMsg(now time.Time, p *probe) *Probe {
	msg := &Probe{Nonce: p.nonce, Recent: c.recent(now)}
	if s := c.suspicions[p.info.ID]; s != nil {
		msg.Claim = s.incarnation
	}
	return msg
}

// checkRecent bridges to from when it delivered a broadcast this node never
// saw: the two are in different islands. The node then tells its own island
// which broadcasts it found missing, so that the rest of the island does not
// bridge again for the same ones once the islands are joined.
func (c *Core) checkRecent(now time.Time, from peer.Info, recent []RecentBroadcast) {
	if !c.joined || c.self.State != StateAlive || c.isNeighbor(from.ID) {
		return
	}
	var missing []plumtree.MessageID
	for _, r := range recent {
		// A broadcast sent before this node joined (with a second's
		// margin) proves nothing.
		age := time.Duration(r.AgeMillis) * time.Millisecond
		if age+time.Second > now.Sub(c.joinedAt) {
			continue
		}
		if _, known := c.missed[r.ID]; !known && !c.pt.Seen(now, r.ID) {
			missing = append(missing, r.ID)
		}
	}
	if len(missing) == 0 {
		return
	}
	c.stats.IslandsFound++
	for _, id := range missing {
		c.markMissed(now, id)
	}
	c.bridge(now, from)
	c.announceAs(plumtree.MessageID{}, membershipEvent{Entry: c.self, Missed: missing})
}

// markMissed records a broadcast of another island as acted on, for as long
// as probes may still carry it.
func (c *Core) markMissed(now time.Time, id plumtree.MessageID) {
	if len(c.missed) >= maxMissed {
		for k, until := range c.missed {
			if !now.Before(until) {
				delete(c.missed, k)
			}
		}
		if len(c.missed) >= maxMissed {
			return
		}
	}
	c.missed[id] = now.Add(c.maxRecentAge() + recentMinAge)
}

// bridge joins again through to, at most once per ProbeInterval: to takes
// this node into its active view and walks the join through its island, so
// that the new links join to's island to this node's.
func (c *Core) bridge(now time.Time, to peer.Info) {
	if now.Before(c.nextBridge) {
		return
	}
	c.nextBridge = now.Add(max(c.cfg.ProbeInterval, minSyncInterval))
	c.stats.Bridges++
	c.outputs = append(c.outputs, overlay.Send{To: to, Msg: &hyparview.JoinMsg{}})
}

// maybeBeacon sends, with probability one in the number of members, a beacon
// when this node has delivered no broadcast for a ProbeInterval: one of the
// quiet nodes does about every ProbeInterval. The beacon re-announces this
// node's own entry, which changes nothing where it arrives, under a fresh ID.
func (c *Core) maybeBeacon(now time.Time) {
	if c.self.State != StateAlive {
		return
	}
	if last := c.lastSample(); !last.IsZero() && now.Sub(last) < c.cfg.ProbeInterval {
		return
	}
	if c.rand.IntN(c.members.alive+1) != 0 {
		return
	}
	var id plumtree.MessageID
	binary.LittleEndian.PutUint64(id[:8], c.rand.Uint64())
	binary.LittleEndian.PutUint64(id[8:], c.rand.Uint64())
	if id.IsZero() {
		id[0] = 1
	}
	c.stats.Beacons++
	c.recordSample(now, id)
	c.announceAs(id, membershipEvent{Entry: c.self})
}
