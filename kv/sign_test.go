package kv

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/wire"
)

// A record claiming a writer who did not sign it is refused by every path a
// peer can send it on (broadcast payload, direct update, anti-entropy) and
// counted; the genuine record is applied.
func TestForgedWritersAreRefusedAndCounted(t *testing.T) {
	now := epoch
	genuine := remoteWrite(2, "config/db", []byte("postgres://db1"), now.UnixNano())
	claim := Record{Key: "config/db", Value: []byte("postgres://evil"), Version: Version{Time: HLC{Wall: now.UnixNano() + 1}, Writer: testID(2)}}
	insiderSigned := claim.Sign(testKey(3)) // its own key and signature, node 2's ID
	victimKeyOwnSig := insiderSigned
	victimKeyOwnSig.PublicKey = genuine.PublicKey
	altered := signed(claim)
	altered.Value = []byte("postgres://evil2")
	stolenSig := claim
	stolenSig.PublicKey, stolenSig.Signature = genuine.PublicKey, genuine.Signature
	unsigned := claim
	tombstone := signed(Record{Key: "config/db", Version: claim.Version, Deleted: true})
	tombstone.Deleted = false // a signed delete turned into a write

	forgeries := map[string]Record{
		"insider's key":          insiderSigned,
		"victim's key":           victimKeyOwnSig,
		"value altered":          altered,
		"signature of another":   stolenSig,
		"unsigned":               unsigned,
		"tombstone flag flipped": tombstone,
	}
	for name, forged := range forgeries {
		t.Run(name, func(t *testing.T) {
			for _, path := range []string{"broadcast", "update", "sync"} {
				s := newTestStore(t, 1, nil, nil)
				fill(t, s, []Record{genuine})
				var input any
				switch path {
				case "broadcast":
					input = FromBroadcast{From: testInfo(3), Payload: mustMarshal(t, &Update{Records: []Record{forged}})}
				case "update":
					input = overlay.Received{From: testInfo(3), Msg: &Update{Records: []Record{forged}}}
				default:
					input = overlay.Received{From: testInfo(3), Msg: &SyncRecords{Records: []Record{forged}}}
				}
				s.Step(now, input)
				for _, out := range drain(s) {
					if _, ok := out.(Changed); ok {
						t.Fatalf("%s: forged record applied", path)
					}
				}
				if rec, _ := s.Get("config/db"); string(rec.Value) != "postgres://db1" {
					t.Fatalf("%s: value %q", path, rec.Value)
				}
				if st := s.Stats(); st.RecordsForged != 1 {
					t.Fatalf("%s: RecordsForged = %d, want 1", path, st.RecordsForged)
				}
			}
		})
	}
}

// Local writes are signed, so that a peer applies them; the signature
// survives the wire and the backend.
func TestLocalWritesAreSignedByTheirWriter(t *testing.T) {
	a := newTestStore(t, 1, nil, nil)
	res := stepResult(t, a, epoch, Put{Key: "k", Value: []byte("v")})
	if err := res.Record.Verify(); err != nil {
		t.Fatalf("local write: %v", err)
	}
	stored, _ := a.Get("k")
	if err := stored.Verify(); err != nil {
		t.Fatalf("stored record: %v", err)
	}
	var decoded Record
	data, err := wire.MarshalValue(stored)
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.UnmarshalValue(data, &decoded); err != nil || decoded.Verify() != nil {
		t.Fatalf("decoded record: %v, %v", err, decoded.Verify())
	}
}

// A stale record (one that loses to what the store holds) costs no
// signature verification: it is dropped before, and not counted as forged.
func TestStaleRecordsAreNotVerified(t *testing.T) {
	s := newTestStore(t, 1, nil, nil)
	fill(t, s, []Record{remoteWrite(2, "k", []byte("new"), epoch.UnixNano())})
	stale := Record{Key: "k", Value: []byte("old"), Version: Version{Time: HLC{Wall: epoch.UnixNano() - 1}, Writer: testID(2)}}
	s.Step(epoch, overlay.Received{From: testInfo(3), Msg: &SyncRecords{Records: []Record{stale}}})
	if st := s.Stats(); st.RecordsForged != 0 || st.RecordsRejected != 0 {
		t.Fatalf("stale record counted: %+v", st)
	}
}

// Row 9 of issue 10: records dated far in the future are held back and
// counted (the counter is exposed as records_rejected_total{reason="future"}).
func TestFutureRecordsAreCounted(t *testing.T) {
	s := newTestStore(t, 1, nil, nil)
	future := remoteWrite(2, "k", []byte("v"), epoch.Add(time.Hour).UnixNano())
	s.Step(epoch, overlay.Received{From: testInfo(3), Msg: &SyncRecords{Records: []Record{future}}})
	if st := s.Stats(); st.RecordsDeferred != 1 || s.Len() != 0 {
		t.Fatalf("future record: %+v", st)
	}
}

// Refused records are logged at most once per interval of the store's time,
// however many arrive: a peer cannot fill the log.
func TestRefusalLogsAreRateLimited(t *testing.T) {
	var lines int
	logger := slog.New(countingHandler{&lines})
	s := newTestStore(t, 1, nil, func(c *Config) { c.Logger = logger })
	forged := Record{Key: "k", Value: []byte("v"), Version: Version{Time: HLC{Wall: epoch.UnixNano()}, Writer: testID(2)}}
	for i := range 1000 {
		forged.Version.Time.Logical = uint32(i)
		s.Step(epoch.Add(time.Duration(i)*time.Millisecond), overlay.Received{From: testInfo(3), Msg: &SyncRecords{Records: []Record{forged}}})
	}
	if st := s.Stats(); st.RecordsForged != 1000 || lines != 1 {
		t.Fatalf("1,000 forged records in 1 s: %d counted, %d log lines", st.RecordsForged, lines)
	}
	s.Step(epoch.Add(11*time.Second), overlay.Received{From: testInfo(3), Msg: &SyncRecords{Records: []Record{forged.Sign(testKey(3))}}})
	if lines != 2 {
		t.Fatalf("%d log lines after the interval, want 2", lines)
	}
}

// countingHandler counts the log records it handles.
type countingHandler struct{ n *int }

func (h countingHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (h countingHandler) Handle(context.Context, slog.Record) error { *h.n++; return nil }
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler        { return h }
func (h countingHandler) WithGroup(string) slog.Handler             { return h }
