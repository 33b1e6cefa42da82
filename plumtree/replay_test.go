package plumtree

import (
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
)

// Issue 10: a broadcast replayed after the seen cache forgot it is refused by
// its send time, not delivered again; send times too far ahead are refused;
// hop counts from the wire are clamped.

// A message delivered once and replayed after SeenTTL (the seen cache has
// forgotten its ID) is refused as stale and counted.
func TestReplayOlderThanTheSeenCacheIsRefusedBySendTime(t *testing.T) {
	c := newTestCore(t, nil, peerA, peerB)
	g := gossipFrom(testID, 2, "once")
	c.Step(simEpoch, overlay.Received{From: peerA, Msg: g})
	if len(delivered(c.Drain(nil))) != 1 {
		t.Fatal("first copy not delivered")
	}
	later := simEpoch.Add(DefaultSeenTTL + time.Second)
	if c.Seen(later, testID) {
		t.Fatal("the seen cache still holds the ID: the test does not replay beyond it")
	}
	c.Step(later, overlay.Received{From: peerB, Msg: g})
	outs := c.Drain(nil)
	if len(delivered(outs)) != 0 || len(sentTo[*Gossip](outs, peerA)) != 0 {
		t.Fatalf("replay delivered or relayed: %v", outs)
	}
	if st := c.Stats(); st.RefusedStale != 1 || st.Delivered != 1 {
		t.Fatalf("stats %+v: want 1 stale refusal and 1 delivery", st)
	}
}

// The age limit is SeenTTL − MaxClockSkew: a message just younger is
// delivered, one at the limit is refused; and a message never seen but sent
// long ago (held back by an attacker) is refused too.
func TestSendTimeBoundsAreSeenTTLMinusSkewAndSkew(t *testing.T) {
	const seenTTL, skew = time.Minute, 10 * time.Second
	adjust := func(cfg *Config) { cfg.SeenTTL, cfg.MaxClockSkew = seenTTL, skew }
	now := simEpoch.Add(time.Hour)
	for _, tc := range []struct {
		name    string
		sentAt  time.Time
		deliver bool
	}{
		{"just under the age limit", now.Add(-(seenTTL - skew) + time.Millisecond), true},
		{"at the age limit", now.Add(-(seenTTL - skew)), false},
		{"an hour old", now.Add(-time.Hour), false},
		{"ahead by the skew", now.Add(skew), true},
		{"ahead beyond the skew", now.Add(skew + time.Millisecond), false},
		{"zero send time", time.UnixMilli(0), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCore(t, adjust, peerA)
			g := gossipFrom(testID, 1, "x")
			g.SentAt = tc.sentAt.UnixMilli()
			c.Step(now, overlay.Received{From: peerA, Msg: g})
			got := len(delivered(c.Drain(nil))) == 1
			if got != tc.deliver {
				t.Fatalf("delivered = %v, want %v (stats %+v)", got, tc.deliver, c.Stats())
			}
			st := c.Stats()
			if refused := st.RefusedStale + st.RefusedFuture; refused != map[bool]uint64{true: 0, false: 1}[tc.deliver] {
				t.Fatalf("refusals counted %d (stats %+v)", refused, st)
			}
			if !tc.deliver && c.Seen(now, testID) {
				t.Fatal("a refused message was marked seen")
			}
		})
	}
}

// Whatever its send time within the accepted bounds, a message accepted once
// is refused when replayed at any later time: by the seen cache while it
// remembers the ID, by the send time after.
func TestAcceptedMessageIsNeverDeliveredTwiceWhateverTheReplayTime(t *testing.T) {
	for _, offset := range []time.Duration{DefaultMaxClockSkew, 0, -(DefaultSeenTTL - DefaultMaxClockSkew) + time.Millisecond} {
		c := newTestCore(t, nil, peerA)
		g := gossipFrom(testID, 1, "x")
		g.SentAt = simEpoch.Add(offset).UnixMilli()
		c.Step(simEpoch, overlay.Received{From: peerA, Msg: g})
		for replay := time.Duration(0); replay <= 2*DefaultSeenTTL; replay += 250 * time.Millisecond {
			c.Step(simEpoch.Add(replay), overlay.Received{From: peerA, Msg: g})
		}
		if st := c.Stats(); st.Delivered != 1 {
			t.Errorf("send time %v from the first arrival: delivered %d times", offset, st.Delivered)
		}
	}
}

// A hop count over MaxHops, in a GOSSIP or an IHAVE, is clamped to MaxHops
// and counted: the delivery reports MaxHops and the copy passed on carries
// MaxHops too.
func TestHopCountOverMaxHopsIsClamped(t *testing.T) {
	c := newTestCore(t, nil, peerA, peerB)
	c.Step(simEpoch, overlay.Received{From: peerA, Msg: gossipFrom(testID, 65535, "x")})
	outs := c.Drain(nil)
	d := delivered(outs)
	if len(d) != 1 || d[0].Hops != MaxHops {
		t.Fatalf("deliveries %+v, want one with %d hops", d, MaxHops)
	}
	if fw := sentTo[*Gossip](outs, peerB); len(fw) != 1 || fw[0].Round != MaxHops {
		t.Fatalf("forwarded %+v, want round %d", fw, MaxHops)
	}
	c.Step(simEpoch, overlay.Received{From: peerB, Msg: &IHave{Announcements: []Announcement{{ID: MessageID{9}, Round: 60000}}}})
	if st := c.Stats(); st.HopsClamped != 2 {
		t.Fatalf("HopsClamped = %d, want 2", st.HopsClamped)
	}
	c.Step(simEpoch, overlay.Received{From: peerA, Msg: gossipFrom(MessageID{10}, MaxHops, "x")})
	if st := c.Stats(); st.HopsClamped != 2 {
		t.Fatalf("a hop count of exactly MaxHops was counted as clamped")
	}
}
