package plumtree

import (
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
)

// Tests of Config.RelayToRoot: the origin of a broadcast also sends it
// straight to the rooted tree's root, which pushes it down the tree.

func relayed(_ int, cfg *Config) { cfg.RootedTree, cfg.RelayToRoot = true, true }

// The origin relays its own broadcast to the root it knows, by ID (the host
// finds the address), unless it is the root or the root is one of its tree
// links; a root that is a lazy neighbour gets the payload over that link.
// Payloads it forwards are never relayed.
func TestRelayToRootGoesFromTheOriginToTheRootOnly(t *testing.T) {
	var root peer.ID
	root[len(root)-1] = 1
	relays := func(outs []any) []RelayToRoot {
		var found []RelayToRoot
		for _, out := range outs {
			if r, ok := out.(RelayToRoot); ok {
				found = append(found, r)
			}
		}
		return found
	}
	c := newTestCore(t, func(cfg *Config) { relayed(0, cfg) }, peerA, peerB)
	c.Step(simEpoch, overlay.Received{From: peerA, Msg: &Tree{Root: root, Distance: 2}})
	c.Step(simEpoch, overlay.Received{From: peerB, Msg: &Tree{Root: root, Distance: 4}})
	c.Drain(nil)
	c.Step(simEpoch, Broadcast{Payload: []byte("x")})
	outs := c.Drain(nil)
	got := relays(outs)
	if len(got) != 1 || got[0].Root != root || got[0].Msg.Round != 1 || got[0].Msg.Origin.ID != selfInfo.ID {
		t.Fatalf("relays of a broadcast: %+v, want one first-hop payload to the root", got)
	}
	if len(sentTo[*Gossip](outs, peerA)) != 1 {
		t.Fatalf("the broadcast did not go down the tree link as well")
	}
	c.Step(simEpoch, overlay.Received{From: peerA, Msg: gossipFrom(testID, 3, "forwarded")})
	if got := relays(c.Drain(nil)); len(got) != 0 {
		t.Fatalf("a forwarded payload was relayed: %+v", got)
	}
	if st := c.Stats(); st.RelaysSent != 1 {
		t.Fatalf("RelaysSent %d, want 1", st.RelaysSent)
	}

	// The root as a lazy neighbour: over the link, no RelayToRoot.
	rootInfo := peer.Info{ID: root, Addr: "root:1"}
	c = newTestCore(t, func(cfg *Config) { relayed(0, cfg) }, peerA, rootInfo)
	c.Step(simEpoch, overlay.Received{From: peerA, Msg: &Tree{Root: root, Distance: 0}})
	c.Step(simEpoch, overlay.Received{From: rootInfo, Msg: &Tree{Root: root, Distance: 0}})
	wantPeers(t, "eager", c.EagerPeers(), peerA)
	c.Drain(nil)
	c.Step(simEpoch, Broadcast{Payload: []byte("y")})
	outs = c.Drain(nil)
	if len(relays(outs)) != 0 || len(sentTo[*Gossip](outs, rootInfo)) != 1 {
		t.Fatalf("a root that is a lazy neighbour: %d relays, %d payloads over the link; want 0 and 1",
			len(relays(outs)), len(sentTo[*Gossip](outs, rootInfo)))
	}

	// The root itself, and a node that knows no root, do not relay.
	c = newTestCore(t, func(cfg *Config) { relayed(0, cfg) }, peerA)
	c.Drain(nil)
	c.Step(simEpoch, Broadcast{Payload: []byte("z")})
	if got := relays(c.Drain(nil)); len(got) != 0 || c.Stats().RelaysSkipped != 1 {
		t.Fatalf("a node that is its own root relayed %+v (skipped %d)", got, c.Stats().RelaysSkipped)
	}
}

// rootEccentricity returns the largest hop distance from the smallest live
// ID over the live links.
func rootEccentricity(net *simNetwork) int {
	ecc := 0
	for _, d := range hopDistances(net, smallestLive(net)) {
		ecc = max(ecc, d)
	}
	return ecc
}

// runRandomBroadcasts broadcasts count messages from random live nodes, one
// every gap, and returns the largest last hop, the mean RMR and whether
// every message reached every node once.
func runRandomBroadcasts(t *testing.T, net *simNetwork, count int, gap time.Duration) (maxHops int, rmr float64) {
	t.Helper()
	live := net.liveNodes()
	var sent []MessageID
	for range count {
		sent = append(sent, net.broadcast(live[net.rng.IntN(len(live))], MessageID{}, payload256))
		net.run(gap)
	}
	net.settle()
	for _, id := range sent {
		r := net.report(id)
		if r.delivered != r.receivers || r.duplicates != 0 {
			t.Fatalf("delivered to %d of %d, %d duplicate deliveries", r.delivered, r.receivers, r.duplicates)
		}
		maxHops = max(maxHops, r.maxHops)
		rmr += r.rmr / float64(count)
	}
	return maxHops, rmr
}

// With the relay the last node of every broadcast is at most one hop more
// than the root's eccentricity away, where the rooted tree alone reaches
// past it (a broadcast crosses the tree from its origin, up to the tree's
// diameter); the relay costs about one payload per broadcast and the few
// duplicates where the two copies meet.
func TestRelayToRootBoundsLastHopByRootEccentricity(t *testing.T) {
	const nodes = 400
	var hopsRooted int
	for _, mode := range []struct {
		name   string
		config func(int, *Config)
	}{{"rooted", rooted}, {"relay", relayed}} {
		net := newSimNetwork(t, simOptions{nodes: nodes, degree: 5, seed: 13, minLatency: 10 * time.Millisecond, maxLatency: 10 * time.Millisecond, config: mode.config})
		net.settle()
		ecc := rootEccentricity(net)
		maxHops, rmr := runRandomBroadcasts(t, net, 60, 20*time.Millisecond)
		t.Logf("%s: root eccentricity %d, largest hop %d, RMR %.4f", mode.name, ecc, maxHops, rmr)
		if mode.name == "rooted" {
			hopsRooted = maxHops
			if maxHops <= ecc+1 {
				t.Fatalf("rooted tree alone: largest hop %d within eccentricity+1 (%d): the test shows nothing", maxHops, ecc+1)
			}
			continue
		}
		if maxHops > ecc+1 || maxHops >= hopsRooted {
			t.Fatalf("relay: largest hop %d, want at most the root's eccentricity + 1 = %d (rooted alone: %d)", maxHops, ecc+1, hopsRooted)
		}
		if rmr > 0.02 {
			t.Fatalf("relay: RMR %.4f, want at most 0.02", rmr)
		}
	}
}

// A root that drops every payload relayed to it, and pushes nothing down,
// delays broadcasts at most to lazy-repair speed and stops none: the origin
// pushes down its own tree links too, and lazy links announce every message.
func TestRelayToRootThatDropsEverythingStopsNoBroadcast(t *testing.T) {
	const nodes = 200
	var net *simNetwork
	var root int
	net = newSimNetwork(t, simOptions{nodes: nodes, degree: 5, seed: 17, config: relayed,
		drop: func(_ *simNetwork, from, _ int, msg any) bool {
			_, payload := msg.(*Gossip)
			return payload && from == root
		}})
	root = -1
	net.settle()
	root = smallestLive(net)
	if _, _ = runRandomBroadcasts(t, net, 20, 50*time.Millisecond); net.nodes[root].core.Stats().RelaysReceived == 0 {
		t.Fatalf("the root received no relay: the test shows nothing")
	}
}

// When the root fails, relays to it are lost until the tree has a new root;
// broadcasts cross the tree from their origins meanwhile and reach everyone.
func TestRelayToRootFailedRootStopsNoBroadcast(t *testing.T) {
	const nodes = 200
	net := newSimNetwork(t, simOptions{nodes: nodes, degree: 5, seed: 19, config: relayed})
	net.settle()
	root := smallestLive(net)
	net.sim.Kill(root) // crashed, its links not yet reported down
	runRandomBroadcasts(t, net, 10, 20*time.Millisecond)
	for _, j := range net.adj[root] {
		net.step(j, NeighborDown{Peer: net.nodes[root].info.ID})
	}
	net.settle()
	maxHops, _ := runRandomBroadcasts(t, net, 10, 20*time.Millisecond)
	if ecc := rootEccentricity(net); maxHops > ecc+1 {
		t.Fatalf("after the new root took over: largest hop %d, want at most %d", maxHops, ecc+1)
	}
}
