package engine

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/wire"
)

func sendTo(s *Sim, to int, seq int) overlay.Send {
	return overlay.Send{To: s.Info(to), Msg: &testMsg{Seq: seq}}
}

func TestPerLinkFIFOUnderRandomLatency(t *testing.T) {
	s, cores := newScriptSim(t, Config{Seed: 7, Latency: UniformLatency(time.Millisecond, 100*time.Millisecond)}, 3)
	const perBurst, bursts = 200, 5
	seq := 0
	for b := range bursts {
		var outs0, outs2 []any
		for range perBurst {
			outs0 = append(outs0, sendTo(s, 1, seq))
			outs2 = append(outs2, sendTo(s, 1, 100000+seq))
			seq++
		}
		s.Step(0, emit{outs0})
		s.Step(2, emit{outs2})
		s.RunFor(time.Duration(b+1) * 7 * time.Millisecond) // bursts overlap in flight
	}
	s.RunFor(time.Second)
	got := cores[1].received()
	if len(got) != 2*perBurst*bursts {
		t.Fatalf("received %d messages, want %d", len(got), 2*perBurst*bursts)
	}
	var from0, from2 []int
	for _, v := range got {
		if v >= 100000 {
			from2 = append(from2, v)
		} else {
			from0 = append(from0, v)
		}
	}
	if !slices.IsSorted(from0) || !slices.IsSorted(from2) {
		t.Fatal("a message overtook an earlier one on the same directed link")
	}
	if slices.IsSorted(got) {
		t.Fatal("messages of two links never interleaved: latency draws look constant")
	}
}

func TestLossDropsTheConfiguredShare(t *testing.T) {
	const n, rate = 20000, 0.25
	s, cores := newScriptSim(t, Config{Seed: 3, Loss: rate}, 2)
	outs := make([]any, n)
	for i := range outs {
		outs[i] = sendTo(s, 1, i)
	}
	s.Step(0, emit{outs})
	s.RunFor(time.Second)
	received := len(cores[1].received())
	if int64(received)+s.Lost() != n {
		t.Fatalf("received %d + lost %d != sent %d", received, s.Lost(), n)
	}
	share := float64(s.Lost()) / n
	if share < rate-0.02 || share > rate+0.02 {
		t.Fatalf("lost share %.3f, want %.2f ± 0.02", share, rate)
	}
	if st := s.NodeStats(0); st.MessagesSent != n {
		t.Fatalf("node 0 sent %d, want %d", st.MessagesSent, n)
	}
	if !slices.IsSorted(cores[1].received()) {
		t.Fatal("loss broke FIFO order")
	}
}

func TestSendDeliversAfterLatencyWithSenderIdentity(t *testing.T) {
	s, cores := newScriptSim(t, Config{Seed: 1, Latency: FixedLatency(30 * time.Millisecond)}, 2)
	start := s.Now()
	// A Send with a zero ID resolves by address, as the first JOIN to a
	// bootstrap contact does.
	s.Step(0, emit{[]any{overlay.Send{To: peer.Info{Addr: Addr(1)}, Msg: &testMsg{Seq: 9}}}})
	s.RunFor(time.Second)
	if len(cores[1].steps) != 1 {
		t.Fatalf("node 1 got %d inputs, want 1", len(cores[1].steps))
	}
	step := cores[1].steps[0]
	if got := step.at.Sub(start); got != 30*time.Millisecond {
		t.Fatalf("delivered after %v, want 30ms", got)
	}
	r := step.input.(overlay.Received)
	if r.From != s.Info(0) {
		t.Fatalf("From = %v, want %v", r.From, s.Info(0))
	}
}

func TestSendToDeadOrUnknownPeerYieldsLinkDownAfterOneRoundTrip(t *testing.T) {
	s, cores := newScriptSim(t, Config{Seed: 1, Latency: FixedLatency(10 * time.Millisecond)}, 3)
	s.Kill(1)
	start := s.Now()
	unknown := peer.Info{ID: peer.ID{1}, Addr: "nowhere"}
	s.Step(0, emit{[]any{sendTo(s, 1, 0), overlay.Send{To: unknown, Msg: &testMsg{}}, overlay.Send{To: peer.Info{Addr: "nowhere"}, Msg: &testMsg{}}}})
	s.RunFor(time.Second)
	downs := cores[0].linkDowns()
	if len(downs) != 3 {
		t.Fatalf("got %d LinkDowns, want 3", len(downs))
	}
	wantPeers := []peer.ID{s.Info(1).ID, unknown.ID, {}}
	for k, d := range downs {
		if d.at.Sub(start) != 20*time.Millisecond {
			t.Errorf("LinkDown %d after %v, want one round trip (20ms)", k, d.at.Sub(start))
		}
		ld := d.input.(overlay.LinkDown)
		if ld.Peer != wantPeers[k] || !errors.Is(ld.Err, ErrUnreachable) {
			t.Errorf("LinkDown %d = %+v, want peer %v and ErrUnreachable", k, ld, wantPeers[k])
		}
	}
	if ld := downs[2].input.(overlay.LinkDown); ld.Addr != "nowhere" {
		t.Errorf("LinkDown for an address carries Addr %q", ld.Addr)
	}
	if s.NodeStats(0).MessagesSent != 0 {
		t.Error("undeliverable sends were counted as sent")
	}
}

func TestDeadSilentSendsToDeadNodesVanishButUnknownOnesFail(t *testing.T) {
	s, cores := newScriptSim(t, Config{Seed: 1, Latency: FixedLatency(10 * time.Millisecond), DeadSilent: true}, 3)
	s.Kill(1)
	unknown := peer.Info{ID: peer.ID{1}, Addr: "nowhere"}
	s.Step(0, emit{[]any{sendTo(s, 1, 0), overlay.Connect{Peer: s.Info(1)}, overlay.Send{To: unknown, Msg: &testMsg{}}}})
	s.RunFor(time.Second)
	downs := cores[0].linkDowns()
	if len(downs) != 1 || downs[0].input.(overlay.LinkDown).Peer != unknown.ID {
		t.Fatalf("LinkDowns %+v, want only the unknown peer's", downs)
	}
	if got := s.NodeStats(0).MessagesSent; got != 1 {
		t.Fatalf("MessagesSent = %d, want the send into the void counted (1)", got)
	}
}

func TestDecodeDeliversADecodedCopy(t *testing.T) {
	s, cores := newScriptSim(t, Config{Seed: 1, CountBytes: true, Decode: true}, 2)
	sent := &testMsg{Seq: 5, Payload: []byte("abc")}
	s.Step(0, emit{[]any{overlay.Send{To: s.Info(1), Msg: sent}}})
	s.RunFor(time.Second)
	if len(cores[1].steps) != 1 {
		t.Fatalf("node 1 got %d inputs, want 1", len(cores[1].steps))
	}
	got, ok := cores[1].steps[0].input.(overlay.Received).Msg.(*testMsg)
	if !ok || got == sent || got.Seq != 5 || string(got.Payload) != "abc" {
		t.Fatalf("received %+v (same pointer: %v), want an equal decoded copy", got, got == sent)
	}
	if s.CodecErrors() != 0 {
		t.Fatalf("CodecErrors = %d", s.CodecErrors())
	}
	// A message wire does not know is not sent, and is counted.
	s.Step(0, emit{[]any{overlay.Send{To: s.Info(1), Msg: struct{}{}}}})
	s.RunFor(time.Second)
	if s.CodecErrors() != 1 || len(cores[1].steps) != 1 {
		t.Fatalf("CodecErrors = %d, node 1 inputs %d; want 1 and 1", s.CodecErrors(), len(cores[1].steps))
	}
}

func TestKillTellsKeepersAfterDetectDelayAndDropsInFlight(t *testing.T) {
	s, cores := newScriptSim(t, Config{Seed: 1, Latency: FixedLatency(10 * time.Millisecond), DetectDelay: 250 * time.Millisecond}, 4)
	s.Step(1, emit{[]any{overlay.Connect{Peer: s.Info(0)}}})
	s.Step(0, emit{[]any{overlay.Connect{Peer: s.Info(3)}}}) // the dead end's own links just vanish
	s.Step(2, emit{[]any{sendTo(s, 0, 1)}})                  // in flight when 0 dies
	s.RunFor(5 * time.Millisecond)
	killedAt := s.Now()
	s.Kill(0)
	s.RunFor(time.Second)
	if got := cores[0].received(); len(got) != 0 {
		t.Fatalf("dead node received %v", got)
	}
	if s.Dropped() != 1 {
		t.Fatalf("dropped %d, want the 1 message in flight", s.Dropped())
	}
	downs := cores[1].linkDowns()
	if len(downs) != 1 || downs[0].at.Sub(killedAt) != 250*time.Millisecond {
		t.Fatalf("keeper got %v, want one LinkDown 250ms after the kill", downs)
	}
	if ld := downs[0].input.(overlay.LinkDown); ld.Peer != s.Info(0).ID {
		t.Fatalf("LinkDown names %v", ld.Peer)
	}
	if len(cores[2].linkDowns()) != 0 || len(cores[3].linkDowns()) != 0 {
		t.Fatal("nodes that kept no link to the dead node were told")
	}
	if len(s.Links(1)) != 0 || s.LiveCount() != 3 {
		t.Fatalf("links %v, live %d after the kill", s.Links(1), s.LiveCount())
	}
}

func TestPartitionCutsLinksAndMessagesUntilHealed(t *testing.T) {
	s, cores := newScriptSim(t, Config{Seed: 1, Latency: FixedLatency(10 * time.Millisecond)}, 4)
	s.Step(0, emit{[]any{overlay.Connect{Peer: s.Info(1)}, overlay.Connect{Peer: s.Info(2)}}})
	s.Step(2, emit{[]any{overlay.Connect{Peer: s.Info(0)}}})
	s.Step(3, emit{[]any{sendTo(s, 0, 1)}}) // crosses the partition while in flight
	s.RunFor(5 * time.Millisecond)
	cutAt := s.Now()
	s.Partition([]int{0, 1}, []int{2, 3})
	s.Step(0, emit{[]any{sendTo(s, 3, 2), sendTo(s, 1, 3)}})
	s.RunFor(time.Second)
	if !slices.Equal(cores[1].received(), []int{3}) || len(cores[3].received()) != 0 || len(cores[0].received()) != 0 {
		t.Fatalf("received: 0 %v, 1 %v, 3 %v", cores[0].received(), cores[1].received(), cores[3].received())
	}
	// Node 0 loses its link to 2 (detect delay: one round trip) and its send
	// to 3 (one round trip); node 2 loses its link to 0.
	if got := len(cores[0].linkDowns()); got != 2 {
		t.Fatalf("node 0 got %d LinkDowns, want 2", got)
	}
	for _, d := range append(cores[0].linkDowns(), cores[2].linkDowns()...) {
		if d.at.Sub(cutAt) != 20*time.Millisecond {
			t.Errorf("LinkDown %v after %v, want 20ms", d.input, d.at.Sub(cutAt))
		}
	}
	if len(cores[2].linkDowns()) != 1 || len(cores[1].linkDowns()) != 0 {
		t.Fatal("wrong nodes told of the cut")
	}
	if !s.Reachable(0, 1) || s.Reachable(0, 3) {
		t.Fatal("Reachable disagrees with the partition")
	}
	s.Heal()
	s.Step(0, emit{[]any{sendTo(s, 3, 4)}})
	s.RunFor(time.Second)
	if !slices.Equal(cores[3].received(), []int{4}) {
		t.Fatalf("after Heal node 3 received %v", cores[3].received())
	}
}

// With SilentFailures, a kill and a partition tell no one: what is sent
// over a kept link to a lost node vanishes, and only sends and dials
// without a kept link fail, after DialTimeout; a healed link carries
// messages again.
func TestSilentFailuresTellNoOneAndDialsTimeOut(t *testing.T) {
	s, cores := newScriptSim(t, Config{Seed: 1, Latency: FixedLatency(10 * time.Millisecond), SilentFailures: true, DialTimeout: 500 * time.Millisecond}, 4)
	s.Step(0, emit{[]any{overlay.Connect{Peer: s.Info(1)}, overlay.Connect{Peer: s.Info(2)}}})
	s.RunFor(time.Millisecond)
	s.Kill(1)
	s.Partition([]int{2})
	start := s.Now()
	s.Step(0, emit{[]any{sendTo(s, 1, 1), sendTo(s, 2, 2), sendTo(s, 3, 3)}})
	s.Step(3, emit{[]any{sendTo(s, 2, 4), overlay.Connect{Peer: s.Info(1)}}})
	s.RunFor(time.Second)
	if downs := cores[0].linkDowns(); len(downs) != 0 {
		t.Fatalf("node 0 was told %v, want nothing: its links were kept", downs)
	}
	if len(cores[2].received()) != 0 || !slices.Equal(cores[3].received(), []int{3}) {
		t.Fatalf("received: 2 %v, 3 %v", cores[2].received(), cores[3].received())
	}
	downs := cores[3].linkDowns()
	if len(downs) != 2 {
		t.Fatalf("node 3 got %d LinkDowns, want 2 (a send and a dial without a kept link)", len(downs))
	}
	for _, d := range downs {
		if d.at.Sub(start) != 500*time.Millisecond {
			t.Errorf("LinkDown %v after %v, want DialTimeout (500ms)", d.input, d.at.Sub(start))
		}
	}
	s.Heal()
	s.Step(0, emit{[]any{sendTo(s, 2, 5)}})
	s.RunFor(time.Second)
	if !slices.Equal(cores[2].received(), []int{5}) {
		t.Fatalf("after Heal node 2 received %v", cores[2].received())
	}
}

func TestTickFollowsNextDeadline(t *testing.T) {
	s, cores := newScriptSim(t, Config{Seed: 1}, 1)
	start := s.Now()
	s.Step(0, setDeadline{start.Add(5 * time.Second)})
	s.RunFor(time.Second)
	s.Step(0, setDeadline{start.Add(2 * time.Second)}) // replaces the 5 s tick
	cores[0].onTick = func(c *scriptCore, now time.Time) {
		if now.Sub(start) < 3*time.Second {
			c.deadline = now.Add(3 * time.Second)
		} else {
			c.deadline = time.Time{} // no timer: no more ticks
		}
	}
	s.RunFor(time.Minute)
	got := cores[0].ticks()
	want := []time.Time{start.Add(2 * time.Second), start.Add(5 * time.Second)}
	if !slices.EqualFunc(got, want, time.Time.Equal) {
		t.Fatalf("ticks at %v, want %v", got, want)
	}
	// A deadline already past ticks at once; one still past after the tick
	// ticks a nanosecond later, so time always advances.
	count := 0
	cores[0].onTick = func(c *scriptCore, now time.Time) {
		count++
		if count < 3 {
			c.deadline = now.Add(-time.Hour)
		} else {
			c.deadline = time.Time{}
		}
	}
	now := s.Now()
	s.Step(0, setDeadline{now.Add(-time.Second)})
	s.RunFor(time.Millisecond)
	got = cores[0].ticks()[2:]
	want = []time.Time{now, now.Add(1), now.Add(2)}
	if !slices.EqualFunc(got, want, time.Time.Equal) {
		t.Fatalf("past-deadline ticks at %v, want %v", got, want)
	}
}

func TestSimultaneousEventsRunInScheduleOrder(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	var order []int
	at := s.Now().Add(time.Second)
	for i := range 100 {
		s.At(at, func() { order = append(order, i) })
	}
	s.RunFor(2 * time.Second)
	if len(order) != 100 || !slices.IsSorted(order) {
		t.Fatalf("order %v", order)
	}
}

func TestByteAccountingCountsFrameAndTag(t *testing.T) {
	s, _ := newScriptSim(t, Config{Seed: 1, CountBytes: true}, 2)
	msg := &testMsg{Seq: 5, Payload: make([]byte, 256)}
	data, err := wire.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	s.Step(0, emit{[]any{overlay.Send{To: s.Info(1), Msg: msg}}})
	s.RunFor(time.Second)
	want := int64(len(data) + 4 + 16)
	if got := s.NodeStats(0).BytesSent; got != want {
		t.Fatalf("bytes sent %d, want %d", got, want)
	}
	if got := s.NodeStats(1).BytesReceived; got != want {
		t.Fatalf("bytes received %d, want %d", got, want)
	}
	types := s.TypeStats()
	if len(types) != 1 || types[0].Bytes != want || types[0].Type != "*engine.testMsg" {
		t.Fatalf("type stats %+v", types)
	}
}

func TestObserverSeesCoreSpecificOutputs(t *testing.T) {
	type note struct{ text string }
	var seen []string
	cfg := Config{Seed: 1, Observer: func(now time.Time, node int, out any) {
		if n, ok := out.(note); ok {
			seen = append(seen, n.text)
		}
	}}
	s, _ := newScriptSim(t, cfg, 2)
	s.Step(1, emit{[]any{note{"a"}, sendTo(s, 0, 1), note{"b"}}})
	if !slices.Equal(seen, []string{"a", "b"}) {
		t.Fatalf("observer saw %v", seen)
	}
}

func TestChurnKillsAndJoinsAtTheConfiguredRates(t *testing.T) {
	s, _ := newScriptSim(t, Config{Seed: 5}, 200)
	handle, err := s.StartChurn(Churn{
		KillRate: 2, JoinRate: 1,
		Join: func() error {
			_, err := s.AddNode(func(Identity) (overlay.Core, error) { return &scriptCore{}, nil })
			return err
		},
		Protected: func(node int) bool { return node == 0 },
	})
	if err != nil {
		t.Fatal(err)
	}
	s.RunFor(50 * time.Second)
	if err := handle.Stop(); err != nil {
		t.Fatal(err)
	}
	// Poisson: 100 kills and 50 joins expected; allow four standard deviations.
	if handle.Kills < 60 || handle.Kills > 140 || handle.Joins < 22 || handle.Joins > 78 {
		t.Fatalf("%d kills and %d joins in 50 s", handle.Kills, handle.Joins)
	}
	if !s.Alive(0) {
		t.Fatal("churn killed a protected node")
	}
	if s.LiveCount() != 200-handle.Kills+handle.Joins {
		t.Fatalf("live %d", s.LiveCount())
	}
	kills := handle.Kills
	s.RunFor(10 * time.Second)
	if handle.Kills != kills {
		t.Fatal("churn went on after Stop")
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Loss: 1}, "Config.Loss"},
		{Config{Loss: -0.1}, "Config.Loss"},
		{Config{DetectDelay: -1}, "Config.DetectDelay"},
		{Config{DialTimeout: -1}, "Config.DialTimeout"},
		{Config{Latency: UniformLatency(5, 1)}, "Latency.Max"},
		{Config{Latency: NormalLatency(5, -1)}, "Latency.Stddev"},
	} {
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
}

func TestParseLatency(t *testing.T) {
	for _, tc := range []struct {
		text string
		want Latency
		bad  bool
	}{
		{text: "fixed:20ms", want: FixedLatency(20 * time.Millisecond)},
		{text: "15ms", want: FixedLatency(15 * time.Millisecond)},
		{text: "uniform:5ms,50ms", want: UniformLatency(5*time.Millisecond, 50*time.Millisecond)},
		{text: "normal:20ms, 5ms", want: NormalLatency(20*time.Millisecond, 5*time.Millisecond)},
		{text: "uniform:50ms,5ms", bad: true},
		{text: "normal:20ms", bad: true},
		{text: "pareto:1ms", bad: true},
		{text: "fixed:soon", bad: true},
		{text: "fixed:-1ms", bad: true},
	} {
		got, err := ParseLatency(tc.text)
		if tc.bad {
			if !errors.Is(err, ErrBadLatency) {
				t.Errorf("ParseLatency(%q) = %v, %v; want ErrBadLatency", tc.text, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseLatency(%q) = %v, %v; want %v", tc.text, got, err, tc.want)
		}
		if back, err := ParseLatency(got.String()); err != nil || back != got {
			t.Errorf("ParseLatency(%q.String()) = %v, %v", tc.text, back, err)
		}
	}
}

func TestLatencySamplesStayInRange(t *testing.T) {
	s, _ := New(Config{Seed: 9})
	uniform := UniformLatency(5*time.Millisecond, 50*time.Millisecond)
	normal := NormalLatency(2*time.Millisecond, 5*time.Millisecond)
	var sum time.Duration
	for range 10000 {
		u := uniform.Sample(s.network)
		if u < 5*time.Millisecond || u > 50*time.Millisecond {
			t.Fatalf("uniform sample %v out of range", u)
		}
		n := normal.Sample(s.network)
		if n < 0 {
			t.Fatalf("normal sample %v below zero", n)
		}
		sum += u
	}
	if mean := sum / 10000; mean < 26*time.Millisecond || mean > 29*time.Millisecond {
		t.Fatalf("uniform mean %v, want about 27.5ms", mean)
	}
}
