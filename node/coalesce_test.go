package node

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/p2p-go/p2p/internal/testutil"
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport/tcp"
)

// burstRequest asks burstCore to send every text to one peer in one step.
type burstRequest struct {
	to    peer.Info
	texts []string
}

// burstCore is echoCore that can also send many messages in one step: what
// a Plumtree node does when it forwards a GOSSIP.
type burstCore struct{ echoCore }

func (c *burstCore) Step(now time.Time, input any) {
	if in, ok := input.(burstRequest); ok {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, text := range in.texts {
			c.outputs = append(c.outputs, overlay.Send{To: in.to, Msg: &ping{Text: text}})
		}
		return
	}
	c.echoCore.Step(now, input)
}

// startTCPNode starts a runtime driving core over the real transport on
// loopback.
func startTCPNode(t *testing.T, core overlay.Core, mutate func(*Config)) (*Runtime, *tcp.Transport, peer.Info) {
	t.Helper()
	key, err := peer.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := tcp.Listen(tcp.Config{ListenAddr: "127.0.0.1:0", Key: key, Secret: []byte("node tests: coalescing secret 32")})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Core: core, Transport: tr}
	if mutate != nil {
		mutate(&cfg)
	}
	rt, err := Start(cfg)
	if err != nil {
		tr.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt, tr, peer.Info{ID: key.ID(), Addr: rt.LocalAddr()}
}

func numbered(from, n int) []string {
	texts := make([]string, n)
	for i := range texts {
		texts[i] = fmt.Sprint("message ", from+i)
	}
	return texts
}

func checkNumbered(t *testing.T, got []string, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%d messages, want %d", len(got), n)
	}
	for i, text := range got {
		if want := fmt.Sprint("message ", i); text != want {
			t.Fatalf("message %d is %q, want %q", i, text, want)
		}
	}
}

// Messages that one step sends to a peer leave together, in fewer writes
// than messages, keep their order with those of other steps, and leave
// without any further input (the loop flushes when it runs out of input).
func TestMessagesOfAStepLeaveTogetherInOrder(t *testing.T) {
	a, trA, _ := startTCPNode(t, &burstCore{}, nil)
	coreB := &burstCore{}
	_, _, infoB := startTCPNode(t, coreB, nil)
	ctx := context.Background()
	// A first message opens the connection.
	if err := a.Step(ctx, sendRequest{to: infoB, text: "message 0"}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the first message", func() bool { got, _ := coreB.snapshot(); return len(got) == 1 })
	writesBefore := trA.Stats().Writes
	const bursts, perBurst = 10, 50
	for i := range bursts {
		if err := a.Step(ctx, burstRequest{to: infoB, texts: numbered(1+i*perBurst, perBurst)}); err != nil {
			t.Fatal(err)
		}
	}
	total := 1 + bursts*perBurst
	testutil.Eventually(t, 10*time.Second, "every message", func() bool { got, _ := coreB.snapshot(); return len(got) == total })
	got, _ := coreB.snapshot()
	checkNumbered(t, got, total)
	if writes := trA.Stats().Writes - writesBefore; writes > bursts*perBurst/4 {
		t.Fatalf("%d messages took %d writes", bursts*perBurst, writes)
	}
	if st := a.Stats(); st.MessagesOut != uint64(total) || st.Dropped != 0 {
		t.Fatalf("stats %+v, want %d messages out and none dropped", st, total)
	}
}

// Readers hand the loop every message that one read brought in, in one
// batch, and the batches count against MaxQueuedBytes while they wait:
// with the loop stalled, what is queued stays under the limit, and every
// message arrives in order once it resumes.
func TestBatchedReadsStayWithinTheQueuedBytes(t *testing.T) {
	const limit = 64 << 10
	slowCore := &echoCore{}
	slow, _, infoSlow := startTCPNode(t, slowCore, func(cfg *Config) { cfg.MaxQueuedBytes = limit })
	gate := make(chan struct{})
	openGate := sync.OnceFunc(func() { close(gate) })
	defer openGate() // before Close, should the test fail with the loop at the gate
	sender, _, _ := startTCPNode(t, &burstCore{}, nil)
	// A first message opens the connection; then the loop is kept busy.
	if err := sender.Step(context.Background(), sendRequest{to: infoSlow, text: "first"}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the first message", func() bool { got, _ := slowCore.snapshot(); return len(got) == 1 })
	holdTurn(slow, gate)
	pad := string(make([]byte, 1000))
	const count = 1000 // 1 MB in all, 16 times the limit
	texts := numbered(0, count)
	for i := range texts {
		texts[i] += pad
	}
	for i := 0; i < count; i += 100 {
		if err := sender.Step(context.Background(), burstRequest{to: infoSlow, texts: texts[i : i+100]}); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, "the queue to fill", func() bool { return int(slow.queued.InUse()) > limit-2<<10 })
	used := int(slow.queued.InUse())
	if used > limit {
		t.Fatalf("%d bytes queued, limit %d", used, limit)
	}
	// The sender wrote the messages of a step together, so the reader
	// found many in each read: far fewer batches wait than messages.
	if batches, messages := len(slow.inbound), used/1000; batches > messages/2 {
		t.Fatalf("%d batches hold about %d messages", batches, messages)
	}
	openGate()
	testutil.Eventually(t, 20*time.Second, "every message", func() bool { got, _ := slowCore.snapshot(); return len(got) == 1+count })
	got, _ := slowCore.snapshot()
	got = got[1:]
	for i := range got {
		got[i] = got[i][:len(got[i])-len(pad)]
	}
	checkNumbered(t, got, count)
	if used := slow.queued.InUse(); used != 0 {
		t.Fatalf("%d bytes still counted as queued", used)
	}
}

// Close sends what the loop queued for a peer and had not flushed yet.
func TestCloseSendsWhatWasQueued(t *testing.T) {
	coreB := &burstCore{}
	_, _, infoB := startTCPNode(t, coreB, nil)
	a, _, _ := startTCPNode(t, &burstCore{}, nil)
	ctx := context.Background()
	if err := a.Step(ctx, sendRequest{to: infoB, text: "message 0"}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the first message", func() bool { got, _ := coreB.snapshot(); return len(got) == 1 })
	// Queue the burst and close the links as the loop does when the
	// runtime closes, in the same loop turn: before any flush.
	if err := a.Do(ctx, func(now time.Time) {
		a.step(burstRequest{to: infoB, texts: numbered(1, 20)})
		if len(a.unflushed) == 0 {
			t.Error("the burst was flushed before the end of the loop turn")
		}
		a.shutdownLinks()
	}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "every message", func() bool { got, _ := coreB.snapshot(); return len(got) == 21 })
	got, _ := coreB.snapshot()
	checkNumbered(t, got, 21)
}
