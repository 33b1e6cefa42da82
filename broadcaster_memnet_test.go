package p2p_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/p2p-go/p2p"
	"github.com/p2p-go/p2p/internal/testutil"
	"github.com/p2p-go/p2p/kv"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport/memnet"
)

// memCluster is n Broadcasters over the in-memory network.
type memCluster struct {
	t     *testing.T
	net   *memnet.Network
	nodes []*p2p.Broadcaster
	addrs []string
	dead  map[int]bool

	mu   sync.Mutex
	seen []map[int]int // per node: message index -> deliveries

	lastReason string // why the last overlayConnected was false
}

func startMemCluster(t *testing.T, n int, seed uint64) *memCluster {
	t.Helper()
	c := newMemCluster(t, n, seed)
	c.waitFor(2*time.Minute, "complete member lists", func() bool {
		for _, b := range c.nodes {
			members, err := b.Members(context.Background())
			if err != nil || len(members) != n {
				return false
			}
		}
		return true
	})
	return c
}

func newMemCluster(t *testing.T, n int, seed uint64) *memCluster {
	t.Helper()
	c := &memCluster{
		t:    t,
		net:  memnet.New(memnet.Config{Seed: seed, Latency: time.Millisecond, Jitter: time.Millisecond}),
		dead: map[int]bool{},
		seen: make([]map[int]int, n),
	}
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, b := range c.nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b.Close()
			}()
		}
		wg.Wait()
		c.net.Close()
	})
	rng := rand.New(rand.NewPCG(seed, 99))
	for i := range n {
		key, err := peer.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		addr := fmt.Sprintf("node-%d", i)
		tr, err := c.net.Listen(key, addr)
		if err != nil {
			t.Fatal(err)
		}
		var bootstrap []string
		if i > 0 {
			bootstrap = []string{c.addrs[rng.IntN(i)]}
		}
		b, err := p2p.NewBroadcaster(p2p.Config{
			Bootstrap: bootstrap, Key: key, Transport: tr, StoreBackend: kv.NewMemory(),
			Seed: rng.Uint64() | 1, Logger: testLogger(t),
		})
		if err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, b)
		c.addrs = append(c.addrs, addr)
		c.seen[i] = map[int]int{}
		b.React(func(m *p2p.Message) {
			var body struct{ Index int }
			if m.Decode(&body) != nil || m.Direct {
				return
			}
			c.mu.Lock()
			c.seen[i][body.Index]++
			c.mu.Unlock()
		})
		if err := b.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// overlayConnected reports whether the live nodes' neighbour links contain
// only live nodes and connect them all; when not, it logs why (the last
// reason shows in a failed test).
func (c *memCluster) overlayConnected() bool {
	isLive := map[string]bool{}
	for _, i := range c.live() {
		isLive[c.nodes[i].ID().String()] = true
	}
	adjacency := map[string][]string{}
	lonely, withDead := 0, 0
	for _, i := range c.live() {
		neighbors, err := c.nodes[i].Neighbors(context.Background())
		if err != nil || len(neighbors) == 0 {
			lonely++
			continue
		}
		id := c.nodes[i].ID().String()
		for _, n := range neighbors {
			if !isLive[n.ID.String()] {
				withDead++
				break
			}
			adjacency[id] = append(adjacency[id], n.ID.String())
		}
	}
	reached := reachable(adjacency)
	ok := lonely == 0 && withDead == 0 && reached == len(isLive)
	if !ok {
		c.lastReason = fmt.Sprintf("%d live nodes without neighbours, %d with a dead neighbour, %d of %d live nodes reached from one along neighbour links",
			lonely, withDead, reached, len(isLive))
	}
	return ok
}

// reachable returns how many nodes one node reaches along neighbour links.
func reachable(adjacency map[string][]string) int {
	for start := range adjacency {
		seen := map[string]bool{start: true}
		queue := []string{start}
		for len(queue) > 0 {
			cur := queue[0]
			queue = queue[1:]
			for _, n := range adjacency[cur] {
				if !seen[n] {
					seen[n] = true
					queue = append(queue, n)
				}
			}
		}
		return len(seen)
	}
	return 0
}

// waitFor polls cond (which may query nodes) until it holds.
func (c *memCluster) waitFor(max time.Duration, what string, cond func() bool) time.Duration {
	c.t.Helper()
	return testutil.EventuallyWhy(c.t, max, what, func() (bool, string) { return cond(), "last state " + c.lastReason })
}

func (c *memCluster) live() []int {
	var out []int
	for i := range c.nodes {
		if !c.dead[i] {
			out = append(out, i)
		}
	}
	return out
}

// broadcast sends message index from node i.
func (c *memCluster) broadcast(i, index int) {
	c.t.Helper()
	if err := c.nodes[i].Send(context.Background(), map[string]int{"index": index}); err != nil {
		c.t.Fatalf("node %d: send: %v", i, err)
	}
}

// deliveredEverywhere reports whether every live node but the sender has
// delivered message index at least once.
func (c *memCluster) deliveredEverywhere(index, sender int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, i := range c.live() {
		if i != sender && c.seen[i][index] == 0 {
			return false
		}
	}
	return true
}
