package plumtree

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/wire"
)

// Every structure fed by peers is bounded: the seen IDs, the cached
// payloads and the missing messages, by size and by age.
func TestSeenCacheIsBounded(t *testing.T) {
	const seenLimit, payloadLimit, missingLimit = 64, 16, 32
	c := newTestCore(t, func(cfg *Config) {
		cfg.SeenCacheSize, cfg.PayloadCacheSize, cfg.MaxMissing = seenLimit, payloadLimit, missingLimit
		cfg.SeenTTL, cfg.PayloadTTL = time.Minute, 10*time.Second
	}, peerA, peerB)
	now := simEpoch
	for i := range 5000 {
		now = now.Add(time.Millisecond)
		id := MessageID{byte(i), byte(i >> 8), 1}
		c.Step(now, overlay.Received{From: peerA, Msg: gossipFrom(id, 1, "x")})
		missingID := MessageID{byte(i), byte(i >> 8), 2}
		c.Step(now, overlay.Received{From: peerB, Msg: &IHave{Announcements: []Announcement{{ID: missingID, Round: 1}}}})
		c.Drain(nil)
		if c.seen.len() > seenLimit || c.payloads.len() > payloadLimit || c.missing.len() > missingLimit {
			t.Fatalf("after %d messages: %d seen, %d payloads, %d missing; limits %d, %d, %d",
				i+1, c.seen.len(), c.payloads.len(), c.missing.len(), seenLimit, payloadLimit, missingLimit)
		}
		if len(c.seen.queue) > 2*seenLimit+64 || len(c.payloads.queue) > 2*payloadLimit+64 {
			t.Fatalf("eviction queues grew to %d and %d", len(c.seen.queue), len(c.payloads.queue))
		}
	}
	if c.Stats().Delivered != 5000 || c.Stats().AnnouncementsDropped == 0 {
		t.Fatalf("stats %+v: want 5000 deliveries and announcements dropped at the missing limit", c.Stats())
	}
	// The oldest IDs were evicted; the newest are still recognised.
	last := 4999
	newest := MessageID{byte(last), byte(last >> 8), 1}
	c.Step(now, overlay.Received{From: peerA, Msg: gossipFrom(newest, 1, "x")})
	if len(delivered(c.Drain(nil))) != 0 {
		t.Errorf("recent message delivered twice")
	}
	// Everything expires with its TTL.
	c.Step(now.Add(time.Minute), overlay.Tick{})
	c.Drain(nil)
	if c.seen.len() != 0 || c.payloads.len() != 0 {
		t.Errorf("after the TTLs: %d seen and %d payloads left", c.seen.len(), c.payloads.len())
	}
}

// Nothing a peer sends may panic or change the core's state when it is
// invalid: wrong ID lengths, out-of-range numbers, oversize payloads and
// lists, nil messages.
func TestMalformedMessagesAreIgnored(t *testing.T) {
	encode := func(t *testing.T, code wire.Type, body any) []byte {
		t.Helper()
		data, err := wire.MarshalValue([]any{uint16(code), body})
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	origin := []any{make([]byte, 32), "o:1"}
	id := bytes.Repeat([]byte{7}, MessageIDLen)
	manyAnnouncements := make([]Announcement, MaxIDsPerMessage+1)
	for i := range manyAnnouncements {
		manyAnnouncements[i] = Announcement{ID: MessageID{byte(i), byte(i >> 8), 1}, Round: 1}
	}
	manyIDs := make([]MessageID, MaxIDsPerMessage+1)
	for i := range manyIDs {
		manyIDs[i] = MessageID{byte(i), byte(i >> 8), 1}
	}
	validOrigin := peer.Info{ID: peerC.ID, Addr: "o:1"}
	for _, tc := range []struct {
		name string
		// raw bytes that must fail to decode, or a decoded message that
		// must be refused.
		raw []byte
		msg any
	}{
		{name: "short message ID", raw: encode(t, TypeGossip, []any{id[:15], 1, origin, []byte("x"), 0})},
		{name: "long message ID", raw: encode(t, TypeGossip, []any{append(id, 0), 1, origin, []byte("x"), 0})},
		{name: "message ID as text", raw: encode(t, TypeGossip, []any{string(id), 1, origin, []byte("x"), 0})},
		{name: "message ID as number", raw: encode(t, TypeIHave, []any{[]any{[]any{7, 1}}})},
		{name: "round over 16 bits", raw: encode(t, TypeGossip, []any{id, 70000, origin, []byte("x"), 0})},
		{name: "negative round", raw: encode(t, TypeIHave, []any{[]any{[]any{id, -1}}})},
		{name: "missing field", raw: encode(t, TypeGossip, []any{id, 1, origin, []byte("x")})},
		{name: "SUMMARY send time as text", raw: encode(t, TypeSummary, []any{[]any{[]any{id, "now"}}})},
		{name: "extra field", raw: encode(t, TypeGraft, []any{[]any{id}, 1})},
		{name: "GOSSIP zero ID", msg: &Gossip{Round: 1, Origin: validOrigin, Payload: []byte("x")}},
		{name: "GOSSIP round 0", msg: &Gossip{ID: testID, Origin: validOrigin}},
		{name: "GOSSIP zero origin", msg: &Gossip{ID: testID, Round: 1}},
		{name: "GOSSIP long origin address", msg: &Gossip{ID: testID, Round: 1, Origin: peer.Info{ID: peerC.ID, Addr: strings.Repeat("a", MaxAddrLen+1)}}},
		{name: "GOSSIP short public key", msg: &Gossip{ID: testID, Round: 1, Origin: validOrigin, SentAt: simEpoch.UnixMilli(), PublicKey: make([]byte, 31), Signature: make([]byte, 64)}},
		{name: "GOSSIP signature without key", msg: &Gossip{ID: testID, Round: 1, Origin: validOrigin, SentAt: simEpoch.UnixMilli(), Signature: make([]byte, 64)}},
		{name: "GOSSIP long signature", msg: &Gossip{ID: testID, Round: 1, Origin: validOrigin, SentAt: simEpoch.UnixMilli(), PublicKey: make([]byte, 32), Signature: make([]byte, 65)}},
		{name: "GOSSIP payload too large", msg: &Gossip{ID: testID, Round: 1, Origin: validOrigin, Payload: make([]byte, 1025)}},
		{name: "IHAVE empty", msg: &IHave{}},
		{name: "IHAVE too many", msg: &IHave{Announcements: manyAnnouncements}},
		{name: "IHAVE zero ID", msg: &IHave{Announcements: []Announcement{{Round: 1}}}},
		{name: "IHAVE round 0", msg: &IHave{Announcements: []Announcement{{ID: testID}}}},
		{name: "GRAFT too many", msg: &Graft{IDs: manyIDs}},
		{name: "GRAFT zero ID", msg: &Graft{IDs: []MessageID{{}}}},
		{name: "SUMMARY empty", msg: &Summary{}},
		{name: "SUMMARY too many", msg: &Summary{Entries: make([]SummaryEntry, MaxIDsPerMessage+1)}},
		{name: "SUMMARY zero ID", msg: &Summary{Entries: []SummaryEntry{{SentAt: simEpoch.UnixMilli()}}}},
		{name: "nil SUMMARY", msg: (*Summary)(nil)},
		{name: "nil GOSSIP", msg: (*Gossip)(nil)},
		{name: "nil IHAVE", msg: (*IHave)(nil)},
		{name: "nil GRAFT", msg: (*Graft)(nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCore(t, func(cfg *Config) { cfg.MaxPayload = 1024 }, peerA, peerB)
			c.Step(simEpoch, overlay.Received{From: peerB, Msg: &Prune{}})
			msg := tc.msg
			if tc.raw != nil {
				decoded, err := wire.Unmarshal(tc.raw)
				if err == nil {
					t.Fatalf("decoded %+v, want an error", decoded)
				}
				if !errors.Is(err, wire.ErrMalformed) {
					t.Fatalf("error %v, want wire.ErrMalformed", err)
				}
				return
			}
			// Through the codec too, when it can be encoded: the result
			// must decode or be refused, never panic.
			if data, err := wire.Marshal(msg); err == nil {
				if _, err := wire.Unmarshal(data); err != nil {
					t.Logf("codec refuses it: %v", err)
				}
			}
			c.Step(simEpoch, overlay.Received{From: peerA, Msg: msg})
			c.Step(simEpoch.Add(time.Hour), overlay.Tick{})
			if outs := c.Drain(nil); len(outs) != 0 {
				t.Errorf("outputs %v for an invalid message", outs)
			}
			wantPeers(t, "EagerPeers", c.EagerPeers(), peerA)
			wantPeers(t, "LazyPeers", c.LazyPeers(), peerB)
			if c.missing.len() != 0 || c.seen.len() != 0 {
				t.Errorf("state changed: %d missing, %d seen", c.missing.len(), c.seen.len())
			}
			if c.Stats().Refused != 1 {
				t.Errorf("Refused = %d, want 1", c.Stats().Refused)
			}
		})
	}
}

// Message IDs travel as 16-byte byte strings and every message survives the
// codec unchanged.
func TestMessagesRoundTripThroughWire(t *testing.T) {
	for _, msg := range []any{
		&Gossip{ID: testID, Round: 300, Origin: origin, Payload: []byte("payload"), SentAt: simEpoch.UnixMilli()},
		&Summary{Entries: []SummaryEntry{{ID: testID, SentAt: simEpoch.UnixMilli()}, {ID: MessageID{2}, SentAt: -1}}},
		&IHave{Announcements: []Announcement{{ID: testID, Round: 1}, {ID: MessageID{2}, Round: 65535}}},
		&Graft{IDs: []MessageID{testID, {3}}},
		&Graft{},
		&Prune{},
	} {
		data, err := wire.Marshal(msg)
		if err != nil {
			t.Fatalf("%T: %v", msg, err)
		}
		got, err := wire.Unmarshal(data)
		if err != nil {
			t.Fatalf("%T: %v", msg, err)
		}
		again, err := wire.Marshal(got)
		if err != nil || !bytes.Equal(again, data) {
			t.Errorf("%T changed through the codec: %x, then %x (%v)", msg, data, again, err)
		}
	}
	data, _ := wire.Marshal(&Graft{IDs: []MessageID{testID}})
	if !bytes.Contains(data, append([]byte{0x50}, testID[:]...)) {
		t.Errorf("message ID not encoded as a 16-byte byte string: %x", data)
	}
}

// Configuration: zero fields take the defaults, invalid fields are named.
func TestConfigDefaultsAndValidation(t *testing.T) {
	cfg, err := Config{Self: selfInfo}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.IHaveTimeout != DefaultIHaveTimeout || cfg.GraftTimeout != DefaultGraftTimeout ||
		cfg.SeenCacheSize != DefaultSeenCacheSize || cfg.SeenTTL != DefaultSeenTTL ||
		cfg.PayloadCacheSize != DefaultPayloadCacheSize || cfg.PayloadTTL != DefaultPayloadTTL ||
		cfg.PayloadCacheBytes != DefaultPayloadCacheBytes || cfg.MaxClockSkew != DefaultMaxClockSkew ||
		cfg.LazyBatchInterval != DefaultLazyBatchInterval || cfg.MaxLazyBatchInterval != DefaultMaxLazyBatchInterval ||
		cfg.MaxPayload != DefaultMaxPayload ||
		cfg.MaxMissing != DefaultMaxMissing || cfg.OptimizationThreshold != 0 || cfg.Logger == nil {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	if cfg, _ := (Config{Self: selfInfo, IHaveTimeout: 20 * time.Millisecond}).withDefaults(); cfg.GraftTimeout != 20*time.Millisecond {
		t.Errorf("GraftTimeout default %v with a 20 ms IHaveTimeout, want 20 ms", cfg.GraftTimeout)
	}
	if cfg, _ := (Config{Self: selfInfo, SeenTTL: 20 * time.Second}).withDefaults(); cfg.PayloadTTL != 10*time.Second {
		t.Errorf("PayloadTTL default %v with a 20 s SeenTTL, want 10 s", cfg.PayloadTTL)
	}
	if cfg, _ := (Config{Self: selfInfo, SeenTTL: 20 * time.Second}).withDefaults(); cfg.MaxClockSkew != 5*time.Second {
		t.Errorf("MaxClockSkew default %v with a 20 s SeenTTL, want 5 s", cfg.MaxClockSkew)
	}
	for _, tc := range []struct {
		field string
		cfg   Config
	}{
		{"Self.ID", Config{}},
		{"Self.Addr", Config{Self: peer.Info{ID: selfInfo.ID, Addr: strings.Repeat("a", MaxAddrLen+1)}}},
		{"IHaveTimeout", Config{Self: selfInfo, IHaveTimeout: -1}},
		{"GraftTimeout", Config{Self: selfInfo, GraftTimeout: -1}},
		{"GraftTimeout", Config{Self: selfInfo, IHaveTimeout: time.Millisecond, GraftTimeout: time.Second}},
		{"SeenCacheSize", Config{Self: selfInfo, SeenCacheSize: -1}},
		{"SeenTTL", Config{Self: selfInfo, SeenTTL: -1}},
		{"PayloadCacheSize", Config{Self: selfInfo, PayloadCacheSize: -1}},
		{"PayloadTTL", Config{Self: selfInfo, PayloadTTL: -1}},
		{"PayloadTTL", Config{Self: selfInfo, SeenTTL: time.Minute, PayloadTTL: 2 * time.Minute}},
		{"PayloadCacheBytes", Config{Self: selfInfo, PayloadCacheBytes: -1}},
		{"MaxClockSkew", Config{Self: selfInfo, MaxClockSkew: -1}},
		{"MaxClockSkew", Config{Self: selfInfo, SeenTTL: time.Minute, MaxClockSkew: time.Minute}},
		{"PayloadTTL", Config{Self: selfInfo, SeenTTL: time.Minute, MaxClockSkew: 40 * time.Second, PayloadTTL: 30 * time.Second}},
		{"PayloadCacheSize", Config{Self: selfInfo, SeenCacheSize: 10, PayloadCacheSize: 20}},
		{"LazyBatchInterval", Config{Self: selfInfo, LazyBatchInterval: -1}},
		{"MaxLazyBatchInterval", Config{Self: selfInfo, MaxLazyBatchInterval: -1}},
		{"MaxLazyBatchInterval", Config{Self: selfInfo, LazyBatchInterval: 20 * time.Millisecond, MaxLazyBatchInterval: 10 * time.Millisecond}},
		{"OptimizationThreshold", Config{Self: selfInfo, OptimizationThreshold: -1}},
		{"MaxPayload", Config{Self: selfInfo, MaxPayload: -1}},
		{"MaxMissing", Config{Self: selfInfo, MaxMissing: -1}},
	} {
		_, err := New(tc.cfg)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("New with bad %s: error %v, want ErrConfig naming the field", tc.field, err)
		}
	}
}

// A broadcast over MaxPayload is refused, and CheckBroadcast says so first.
func TestOversizeBroadcastIsRefused(t *testing.T) {
	c := newTestCore(t, func(cfg *Config) { cfg.MaxPayload = 8 }, peerA)
	b := Broadcast{Payload: make([]byte, 9)}
	if err := c.CheckBroadcast(b); !errors.Is(err, ErrPayloadTooLarge) {
		t.Fatalf("CheckBroadcast = %v, want ErrPayloadTooLarge", err)
	}
	c.Step(simEpoch, b)
	if outs := c.Drain(nil); len(outs) != 0 || c.Stats().BroadcastsDropped != 1 {
		t.Fatalf("oversize broadcast sent %v, stats %+v", outs, c.Stats())
	}
	if err := c.CheckBroadcast(Broadcast{Payload: make([]byte, 8)}); err != nil {
		t.Fatalf("CheckBroadcast of the largest payload: %v", err)
	}
}
