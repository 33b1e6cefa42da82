package tcp

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2p-go/p2p/internal/testutil"
	"github.com/p2p-go/p2p/transport"
)

// BenchmarkTreeRelayFloor is the floor under the Broadcaster's loopback
// benchmark (BenchmarkLoopback20Nodes1000PerSecond in the root package):
// 20 transports in one process, joined in a tree of degree 4 (the eager
// links Plumtree settles on), carry 1,000 messages a second from random
// origins, each node forwarding what it receives to its other tree links
// and handing it to a consumer goroutine, as a node hands a delivery to its
// reactor. No protocol runs: no member list, no IHAVE, no cache, no
// decoding; what is left per delivery is the transport (framing,
// ChaCha20-Poly1305, one write and the reads per hop) and the goroutine
// hand-offs. It reports the process CPU per delivery like the root
// package's benchmark; "inline" consumes each delivery on the reader's
// goroutine instead (one hand-off less per hop).
func BenchmarkTreeRelayFloor(b *testing.B) {
	for _, mode := range []struct {
		name   string
		inline bool
	}{{"handoff", false}, {"inline", true}} {
		b.Run(mode.name, func(b *testing.B) {
			for range b.N {
				runTreeRelayFloor(b, 20, 1000, 5*time.Second, 330, mode.inline)
			}
		})
	}
}

func runTreeRelayFloor(b *testing.B, nodes, rate int, period time.Duration, size int, inline bool) {
	b.Helper()
	type link struct {
		conn transport.Conn
		to   int
	}
	trs := make([]*Transport, nodes)
	for i := range trs {
		trs[i] = newTransport(b, nil)
	}
	links := make([][]link, nodes)
	for child := 1; child < nodes; child++ {
		parent := (child - 1) / 3
		atParent, atChild := connect(b, trs[parent], trs[child])
		links[parent] = append(links[parent], link{atParent, child})
		links[child] = append(links[child], link{atChild, parent})
	}
	var delivered atomic.Int64
	consumers := make([]chan []byte, nodes)
	var wg, readers sync.WaitGroup
	for i := range consumers {
		consumers[i] = make(chan []byte, 1024)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range consumers[i] {
				delivered.Add(1)
			}
		}()
	}
	forward := func(node, from int, msg []byte) {
		for _, l := range links[node] {
			if l.to == from {
				continue
			}
			ds := l.conn.(transport.DeferredSender)
			if err := ds.TrySendDeferred(msg); err != nil {
				continue
			}
			ds.Flush()
		}
	}
	for node := range links {
		for _, l := range links[node] {
			readers.Add(1)
			go func() {
				defer readers.Done()
				for {
					msg, err := l.conn.Recv()
					if err != nil {
						return
					}
					forward(node, l.to, msg)
					if inline {
						delivered.Add(1)
					} else {
						consumers[node] <- msg
					}
				}
			}()
		}
	}
	payload := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	messages := int(period.Seconds() * float64(rate))
	b.ResetTimer()
	cpu0, start := testutil.ProcessCPU(), time.Now()
	ticker := time.NewTicker(time.Second / time.Duration(rate))
	var originMu sync.Mutex // one origin at a time, as a node's loop sends
	for range messages {
		<-ticker.C
		origin := rng.IntN(nodes)
		originMu.Lock()
		forward(origin, -1, payload)
		originMu.Unlock()
	}
	ticker.Stop()
	want := int64(messages * (nodes - 1))
	deadline := time.Now().Add(30 * time.Second)
	for delivered.Load() < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cpu, elapsed := testutil.ProcessCPU()-cpu0, time.Since(start)
	b.StopTimer()
	if got := delivered.Load(); got < want {
		b.Fatalf("%d of %d deliveries", got, want)
	}
	var writes, reads, framesOut uint64
	for _, tr := range trs {
		st := tr.Stats()
		writes += st.Writes
		reads += st.Reads
		framesOut += st.FramesOut
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(want), "cpu-µs/delivery")
	b.ReportMetric(float64(framesOut)/float64(max(writes, 1)), "frames/write")
	b.ReportMetric(float64(reads)/float64(want), "reads/delivery")
	b.ReportMetric(elapsed.Seconds(), "s")
	for _, tr := range trs {
		tr.Close()
	}
	readers.Wait()
	for i := range consumers {
		close(consumers[i])
	}
	wg.Wait()
}
