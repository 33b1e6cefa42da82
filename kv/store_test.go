package kv

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

func TestConfigDefaultsAndValidation(t *testing.T) {
	for _, tc := range []struct {
		name      string
		configure func(*Config)
		field     string // "" when valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"no key", func(c *Config) { c.Key = nil }, "Key"},
		{"self not the key's", func(c *Config) { c.Self = testID(2) }, "Self"},
		{"no backend", func(c *Config) { c.Backend = nil }, "Backend"},
		{"negative interval", func(c *Config) { c.AntiEntropyInterval = -time.Second }, "AntiEntropyInterval"},
		{"negative retention", func(c *Config) { c.TombstoneRetention = -1 }, "TombstoneRetention"},
		{"negative offset", func(c *Config) { c.MaxClockOffset = -1 }, "MaxClockOffset"},
		{"negative max keys", func(c *Config) { c.MaxKeys = -1 }, "MaxKeys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Key: testKey(1), Backend: NewMemory()}
			tc.configure(&cfg)
			s, err := New(cfg)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if s.cfg.AntiEntropyInterval != DefaultAntiEntropyInterval || s.cfg.TombstoneRetention != DefaultTombstoneRetention ||
					s.cfg.MaxKeys != DefaultMaxKeys || s.cfg.MaxClockOffset != DefaultMaxClockOffset || s.cfg.Seed == 0 {
					t.Errorf("defaults not applied: %+v", s.cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "Config."+tc.field) {
				t.Fatalf("New = %v, want an error naming Config.%s", err, tc.field)
			}
		})
	}
}

func TestLimitsProduceSentinelErrors(t *testing.T) {
	s := newTestStore(t, 1, nil, func(c *Config) { c.MaxKeys = 2 })
	now := epoch
	for _, key := range []string{"a", "b"} {
		if r := stepResult(t, s, now, Put{Key: key, Value: []byte("v")}); r.Err != nil {
			t.Fatalf("Put %q: %v", key, r.Err)
		}
	}
	for _, tc := range []struct {
		name  string
		input any
		want  error
	}{
		{"empty key", Put{Key: ""}, ErrInvalidKey},
		{"key too long", Put{Key: strings.Repeat("k", MaxKeyLen+1)}, ErrKeyTooLong},
		{"invalid UTF-8", Put{Key: "bad\xff"}, ErrInvalidKey},
		{"NUL in key", Put{Key: "a\x00b"}, ErrInvalidKey},
		{"value too large", Put{Key: "a", Value: make([]byte, MaxValueLen+1)}, ErrValueTooLarge},
		{"third key", Put{Key: "c", Value: []byte("v")}, ErrTooManyKeys},
		{"delete unknown key", Delete{Key: "zzz"}, ErrNotFound},
		{"delete invalid key", Delete{Key: "\x00"}, ErrInvalidKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := stepResult(t, s, now, tc.input)
			if !errors.Is(r.Err, tc.want) {
				t.Fatalf("Err = %v, want %v", r.Err, tc.want)
			}
		})
	}
	// Limits at their bound are accepted: a key of MaxKeyLen bytes and a
	// value of MaxValueLen bytes replacing an existing key.
	if r := stepResult(t, s, now, Put{Key: "a", Value: make([]byte, MaxValueLen)}); r.Err != nil {
		t.Fatalf("value of MaxValueLen: %v", r.Err)
	}
	if r := stepResult(t, s, now, Delete{Key: "b"}); r.Err != nil {
		t.Fatalf("Delete b: %v", r.Err)
	}
	if r := stepResult(t, s, now, Put{Key: strings.Repeat("é", MaxKeyLen/2)}); r.Err != nil {
		t.Fatalf("key of MaxKeyLen bytes after a delete freed a slot: %v", r.Err)
	}
	checkInvariants(t, s)
}

func TestPutPersistsThenBroadcastsAndReports(t *testing.T) {
	backend := NewMemory()
	s := newTestStore(t, 1, backend, nil)
	s.Step(epoch, Put{ReqID: 7, Key: "app/port", Value: []byte("8080")})
	var (
		result    *Result
		changed   *Changed
		broadcast *Broadcast
		persisted bool
	)
	// Nothing reaches the backend before the runtime carries out the
	// Persist output.
	if _, found, _ := backend.Get("app/port"); found {
		t.Fatal("the core wrote its backend")
	}
	for _, out := range drain(s) {
		switch o := out.(type) {
		case Result:
			result = &o
		case Changed:
			changed = &o
		case Broadcast:
			broadcast = &o
		case Persist:
			if result != nil || changed != nil || broadcast != nil || !o.Durable || len(o.Put) != 1 || o.Put[0].Key != "app/port" {
				t.Errorf("Persist %+v is not a durable write of the key before its dependents", o)
			}
			persisted = true
		default:
			t.Errorf("unexpected output %T", out)
		}
	}
	if !persisted {
		t.Fatal("no Persist")
	}
	if result == nil || result.ReqID != 7 || result.Err != nil || string(result.Record.Value) != "8080" {
		t.Fatalf("Result = %+v", result)
	}
	if result.Record.Version.Writer != testID(1) || result.Record.Version.Time.Wall != epoch.UnixNano() {
		t.Errorf("version = %v", result.Record.Version)
	}
	if changed == nil || !changed.Local || changed.Record.Key != "app/port" {
		t.Errorf("Changed = %+v", changed)
	}
	stored, found, _ := backend.Get("app/port")
	if !found || !bytes.Equal(stored.Value, []byte("8080")) {
		t.Errorf("backend holds %+v, %v", stored, found)
	}
	if broadcast == nil {
		t.Fatal("no Broadcast")
	}
	update, err := decodePayload(broadcast.Payload)
	if err != nil || len(update.Records) != 1 || update.Records[0].Version != result.Record.Version {
		t.Fatalf("payload = %+v, %v", update, err)
	}
	t.Logf("broadcast payload for a 8-byte key and 4-byte value: %d bytes", len(broadcast.Payload))

	// Get, List, Len and delete.
	if rec, ok := s.Get("app/port"); !ok || string(rec.Value) != "8080" {
		t.Errorf("Get = %+v, %v", rec, ok)
	}
	stepResult(t, s, epoch, Put{Key: "app/host", Value: []byte("h")})
	stepResult(t, s, epoch, Put{Key: "db/url", Value: []byte("u")})
	if got := s.List("app/"); len(got) != 2 || got[0].Key != "app/host" || got[1].Key != "app/port" {
		t.Errorf("List(app/) = %+v", got)
	}
	r := stepResult(t, s, epoch, Delete{Key: "app/host"})
	if r.Err != nil || !r.Record.Deleted {
		t.Fatalf("Delete = %+v", r)
	}
	if _, ok := s.Get("app/host"); ok {
		t.Error("deleted key still found")
	}
	if s.Len() != 2 || len(s.List("")) != 2 || s.Stats().Tombstones != 1 {
		t.Errorf("Len %d, List %d, tombstones %d", s.Len(), len(s.List("")), s.Stats().Tombstones)
	}
	checkInvariants(t, s)
}

// Writes issued within one nanosecond of physical time, or with a clock
// that went backwards, still get increasing versions, so the later write of
// a node always wins.
func TestLocalWritesAreOrderedEvenWhenTheClockStalls(t *testing.T) {
	s := newTestStore(t, 1, nil, nil)
	var last Version
	for i, now := range []time.Time{epoch, epoch, epoch.Add(-time.Hour), epoch.Add(time.Millisecond)} {
		r := stepResult(t, s, now, Put{Key: "k", Value: []byte{byte(i)}})
		if r.Err != nil || r.Record.Version.Compare(last) <= 0 {
			t.Fatalf("write %d: version %v not after %v (err %v)", i, r.Record.Version, last, r.Err)
		}
		last = r.Record.Version
	}
	if rec, _ := s.Get("k"); rec.Value[0] != 3 {
		t.Errorf("value %v, want the last write", rec.Value)
	}
}

func TestRemoteRecordsAreValidated(t *testing.T) {
	s := newTestStore(t, 1, nil, nil)
	now := epoch
	good := signed(Record{Key: "k", Value: []byte("v"), Version: Version{Time: HLC{Wall: now.UnixNano()}, Writer: testID(2)}})
	for _, tc := range []struct {
		name   string
		mutate func(*Record)
	}{
		{"zero writer", func(r *Record) { r.Version.Writer = peer.ID{} }},
		{"zero time", func(r *Record) { r.Version.Time = HLC{} }},
		{"negative time", func(r *Record) { r.Version.Time.Wall = -5 }},
		{"tombstone with value", func(r *Record) { r.Deleted = true }},
		{"bad key", func(r *Record) { r.Key = "\xff" }},
		{"long key", func(r *Record) { r.Key = strings.Repeat("x", MaxKeyLen+1) }},
		{"large value", func(r *Record) { r.Value = make([]byte, MaxValueLen+1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := good
			tc.mutate(&rec)
			before := s.Stats().RecordsRejected
			s.Step(now, overlay.Received{From: testInfo(2), Msg: &SyncRecords{Records: []Record{rec}}})
			drain(s)
			if s.Stats().RecordsRejected != before+1 || s.Len() != 0 {
				t.Fatalf("record not rejected: stats %+v", s.Stats())
			}
		})
	}
	s.Step(now, overlay.Received{From: testInfo(2), Msg: &SyncRecords{Records: []Record{good}}})
	if _, ok := s.Get("k"); !ok {
		t.Fatal("valid record not applied")
	}
}

// A record stamped further ahead than MaxClockOffset is deferred: it neither
// enters the store nor moves the clock, and is applied once local time has
// caught up.
func TestHLCFutureRecordsAreDeferred(t *testing.T) {
	s := newTestStore(t, 1, nil, func(c *Config) { c.MaxClockOffset = time.Minute })
	future := signed(Record{Key: "k", Value: []byte("v"), Version: Version{Time: HLC{Wall: epoch.Add(time.Hour).UnixNano()}, Writer: testID(2)}})
	payload, err := wire.Marshal(&Update{Records: []Record{future}})
	if err != nil {
		t.Fatal(err)
	}
	s.Step(epoch, FromBroadcast{From: testInfo(2), Payload: payload})
	if s.Len() != 0 || s.Stats().RecordsDeferred != 1 || s.Clock().Wall > epoch.UnixNano() {
		t.Fatalf("future record applied: len %d, stats %+v, clock %v", s.Len(), s.Stats(), s.Clock())
	}
	s.Step(epoch.Add(59*time.Minute+time.Second), FromBroadcast{From: testInfo(2), Payload: payload})
	if s.Len() != 1 {
		t.Fatal("record not applied once within the offset")
	}
}

// Tombstones are purged after the retention; an expired tombstone arriving
// later is not stored again, but one that supersedes a live value still
// deletes it.
func TestTombstonesArePurgedAfterRetention(t *testing.T) {
	retention := time.Hour
	s := newTestStore(t, 1, nil, func(c *Config) { c.TombstoneRetention = retention; c.AntiEntropyInterval = time.Minute })
	stepResult(t, s, epoch, Put{Key: "gone", Value: []byte("v")})
	del := stepResult(t, s, epoch, Delete{Key: "gone"})
	s.Step(epoch.Add(retention/2), overlay.Tick{})
	if s.Stats().Tombstones != 1 {
		t.Fatal("tombstone purged before its retention")
	}
	later := epoch.Add(retention + 2*time.Minute)
	s.Step(later, overlay.Tick{})
	if st := s.Stats(); st.Tombstones != 0 || st.TombstonesPurged != 1 || len(s.index) != 0 || s.Digest() != ([32]byte{}) {
		t.Fatalf("tombstone not purged: %+v", st)
	}
	checkInvariants(t, s)

	// The old tombstone comes back from a peer that has not purged yet.
	s.Step(later, overlay.Received{From: testInfo(2), Msg: &SyncRecords{Records: []Record{del.Record}}})
	if len(s.index) != 0 {
		t.Fatal("expired tombstone stored again")
	}
	// An old live value is deleted by an expired tombstone that wins.
	old := signed(Record{Key: "old", Value: []byte("x"), Version: Version{Time: HLC{Wall: epoch.Add(-time.Hour).UnixNano()}, Writer: testID(3)}})
	s.Step(later, overlay.Received{From: testInfo(3), Msg: &SyncRecords{Records: []Record{old}}})
	tomb := signed(Record{Key: "old", Version: Version{Time: HLC{Wall: epoch.UnixNano()}, Writer: testID(3)}, Deleted: true})
	s.Step(later, overlay.Received{From: testInfo(3), Msg: &SyncRecords{Records: []Record{tomb}}})
	if _, ok := s.Get("old"); ok {
		t.Fatal("winning expired tombstone did not delete the value")
	}
	s.Step(later.Add(2*time.Minute), overlay.Tick{})
	if len(s.index) != 0 {
		t.Fatal("expired tombstone not purged at the next tick")
	}
	checkInvariants(t, s)
}

func TestUnknownAndMalformedInputsDoNotPanic(t *testing.T) {
	s := newTestStore(t, 1, nil, nil)
	for _, input := range []any{
		nil, 42, "text", (*Put)(nil),
		overlay.Received{From: testInfo(2), Msg: nil},
		overlay.Received{From: testInfo(2), Msg: (*SyncRoot)(nil)},
		overlay.Received{From: testInfo(2), Msg: (*SyncNodes)(nil)},
		overlay.Received{From: testInfo(2), Msg: (*SyncRecords)(nil)},
		overlay.Received{From: testInfo(2), Msg: (*Update)(nil)},
		overlay.Received{From: testInfo(2), Msg: &SyncNodes{Level: 9}},
		overlay.Received{From: testInfo(2), Msg: &SyncNodes{Level: 1, Parents: []uint32{0}, Hashes: []byte{1}}},
		overlay.Received{From: testInfo(2), Msg: &SyncNodes{Level: 2, Parents: []uint32{16}, Hashes: make([]byte, 128)}},
		overlay.Received{From: testInfo(2), Msg: &SyncNodes{Level: 3, Parents: []uint32{3, 3}, Hashes: make([]byte, 256)}},
		overlay.Received{From: testInfo(2), Msg: &SyncRecords{WantKeys: []byte{1, 2, 3}}},
		overlay.Received{From: testInfo(2), Msg: &SyncSummary{Level: 5, Nodes: []uint32{0}}},
		overlay.Received{From: testInfo(2), Msg: &SyncSummary{Level: 4, Nodes: []uint32{leafCount}}},
		overlay.Received{From: testInfo(2), Msg: &SyncSummary{Level: 1, Nodes: []uint32{1}, Entries: make([]byte, 31)}},
		overlay.Received{From: testInfo(2), Msg: &SyncSummary{Level: 1}},
		overlay.Received{From: testInfo(2), Msg: (*SyncSummary)(nil)},
		overlay.Received{From: testInfo(2), Msg: &SyncRecords{Records: make([]Record, MaxSyncRecords+1)}},
		FromBroadcast{From: testInfo(2), Payload: []byte{0xff, 0x00}},
		FromBroadcast{From: testInfo(2), Payload: mustMarshal(t, &SyncRoot{})},
		overlay.LinkDown{Peer: testID(2)},
		NeighborUp{Peer: peer.Info{ID: testID(1)}},
		NeighborDown{Peer: testID(9)},
	} {
		s.Step(epoch, input)
	}
	if st := s.Stats(); st.BadMessages != 13 {
		t.Errorf("BadMessages = %d, want 13", st.BadMessages)
	}
	for _, out := range drain(s) {
		t.Errorf("unexpected output %#v", out)
	}
}

func mustMarshal(t tester, msg any) []byte {
	t.Helper()
	data, err := wire.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestJSONHelpers(t *testing.T) {
	type limits struct {
		Connections int      `json:"connections"`
		Hosts       []string `json:"hosts"`
	}
	s := newTestStore(t, 1, nil, nil)
	put, err := PutJSON(1, "svc/limits", limits{Connections: 10, Hosts: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if r := stepResult(t, s, epoch, put); r.Err != nil {
		t.Fatal(r.Err)
	}
	var got limits
	if found, err := GetJSON(s, "svc/limits", &got); !found || err != nil || got.Connections != 10 || len(got.Hosts) != 2 {
		t.Fatalf("GetJSON = %v, %v, %+v", found, err, got)
	}
	if found, err := GetJSON(s, "missing", &got); found || err != nil {
		t.Fatalf("GetJSON(missing) = %v, %v", found, err)
	}
	if _, err := PutJSON(2, "bad", func() {}); err == nil {
		t.Fatal("PutJSON of a func succeeded")
	}
}
