package kademlia

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
)

// keyN returns a deterministic key pair.
func keyN(t testing.TB, n int) *peer.Key {
	t.Helper()
	seed := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("kademlia test key"), uint64(n)))
	key, err := peer.KeyFromSeed(seed[:])
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func infoOf(key *peer.Key, n int) peer.Info {
	return peer.Info{ID: key.ID(), Addr: fmt.Sprintf("node-%d", n)}
}

// newTestCore returns a core for key n with cfg's other fields.
func newTestCore(t testing.TB, n int, cfg Config) *Core {
	t.Helper()
	key := keyN(t, n)
	cfg.Self = infoOf(key, n)
	cfg.Signer = key
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Step(simEpoch, overlay.Tick{})
	return c
}

// storeVia steps c with a STORE of rec from `from` and returns the reply's
// code.
func storeVia(t testing.TB, c *Core, now time.Time, from peer.Info, rec WireRecord) StoreCode {
	t.Helper()
	c.Step(now, overlay.Received{From: from, Msg: &Store{RPC: 7, Record: rec}})
	for _, out := range c.Drain(nil) {
		if send, ok := out.(overlay.Send); ok {
			if reply, ok := send.Msg.(*StoreReply); ok && reply.RPC == 7 && send.To.ID == from.ID {
				return reply.Code
			}
		}
	}
	t.Fatal("no StoreReply")
	return 0
}

func TestRecordsForgedStaleMismatchedOrOversizedAreRefused(t *testing.T) {
	writer := keyN(t, 100)
	other := keyN(t, 101)
	sender := infoOf(keyN(t, 102), 102)
	v1 := NewMutableRecord(writer, []byte("app/config"), []byte("v1"), 5)
	wire := func(r Record) WireRecord { return r.toWire(time.Hour) }

	forgedSig := wire(v1)
	forgedSig.Value = []byte("tampered")

	otherSigned := NewMutableRecord(other, []byte("app/config"), []byte("mine now"), 9)
	hijack := wire(otherSigned)
	hijack.Key = v1.Key // another key's signature over the writer's key
	hijack.Sig = other.Sign(signedBytes(v1.Key, 9, []byte("mine now")))

	wrongHash := wire(NewImmutableRecord([]byte("content")))
	wrongHash.Value = []byte("other content")

	immutableWithSig := wire(NewImmutableRecord([]byte("x")))
	immutableWithSig.Sig = make([]byte, 64)

	shortWriter := wire(v1)
	shortWriter.Writer = shortWriter.Writer[:5]

	big := wire(NewImmutableRecord(make([]byte, DefaultMaxValueSize+1)))
	longName := wire(NewMutableRecord(writer, bytes.Repeat([]byte("n"), DefaultMaxNameSize+1), []byte("v"), 1))
	zeroTTL := wire(NewImmutableRecord([]byte("ttl")))
	zeroTTL.TTL = 0

	for _, tc := range []struct {
		name string
		rec  WireRecord
		want StoreCode
	}{
		{"ValidMutable", wire(v1), StoreOK},
		{"ForgedSignature", forgedSig, StoreForged},
		{"SignedByAnotherKey", hijack, StoreKeyMismatch},
		{"WrongContentHash", wrongHash, StoreHashMismatch},
		{"ImmutableWithSignature", immutableWithSig, StoreMalformed},
		{"ShortWriterKey", shortWriter, StoreMalformed},
		{"OversizedValue", big, StoreTooLarge},
		{"OversizedName", longName, StoreTooLarge},
		{"ZeroTTL", zeroTTL, StoreMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCore(t, 1, Config{})
			if got := storeVia(t, c, simEpoch, sender, tc.rec); got != tc.want {
				t.Fatalf("STORE answered %v (%v), want %v (%v)", got, got.Err(), tc.want, tc.want.Err())
			}
		})
	}

	t.Run("StaleSequenceNumber", func(t *testing.T) {
		c := newTestCore(t, 1, Config{})
		if got := storeVia(t, c, simEpoch, sender, wire(v1)); got != StoreOK {
			t.Fatalf("v1: %v", got)
		}
		v0 := NewMutableRecord(writer, []byte("app/config"), []byte("v0"), 4)
		if got := storeVia(t, c, simEpoch, sender, wire(v0)); got != StoreStale {
			t.Fatalf("lower seq: %v, want StoreStale", got)
		}
		sameSeq := NewMutableRecord(writer, []byte("app/config"), []byte("different"), 5)
		if got := storeVia(t, c, simEpoch, sender, wire(sameSeq)); got != StoreStale {
			t.Fatalf("same seq, other value: %v, want StoreStale", got)
		}
		if got := storeVia(t, c, simEpoch, sender, wire(v1)); got != StoreOK {
			t.Fatalf("same version again (replication): %v, want StoreOK", got)
		}
		v2 := NewMutableRecord(writer, []byte("app/config"), []byte("v2"), 6)
		if got := storeVia(t, c, simEpoch, sender, wire(v2)); got != StoreOK {
			t.Fatalf("higher seq: %v", got)
		}
		if rec, ok := c.StoredRecord(v1.Key); !ok || string(rec.Value) != "v2" {
			t.Fatalf("stored %q, want v2", rec.Value)
		}
	})
}

func TestStoreFloodFromOnePeerIsRateLimited(t *testing.T) {
	c := newTestCore(t, 1, Config{StoreRate: 10, StoreBurst: 50})
	flooder := infoOf(keyN(t, 110), 110)
	honest := infoOf(keyN(t, 111), 111)
	accepted, limited := 0, 0
	for i := range 1000 {
		rec := NewImmutableRecord([]byte(fmt.Sprintf("flood %d", i)))
		switch code := storeVia(t, c, simEpoch, flooder, rec.toWire(time.Hour)); code {
		case StoreOK:
			accepted++
		case StoreRateLimited:
			limited++
		default:
			t.Fatalf("STORE %d: %v", i, code)
		}
	}
	if accepted != 50 || limited != 950 {
		t.Fatalf("flood of 1000 at once: %d accepted, %d limited; want the burst of 50", accepted, limited)
	}
	if got := storeVia(t, c, simEpoch, honest, NewImmutableRecord([]byte("honest")).toWire(time.Hour)); got != StoreOK {
		t.Fatalf("another peer's STORE during the flood: %v", got)
	}
	// Tokens come back at StoreRate per second of the time passed in.
	later := simEpoch.Add(2 * time.Second)
	ok := 0
	for i := range 30 {
		rec := NewImmutableRecord([]byte(fmt.Sprintf("later %d", i)))
		if storeVia(t, c, later, flooder, rec.toWire(time.Hour)) == StoreOK {
			ok++
		}
	}
	if ok != 20 {
		t.Fatalf("after 2 s at 10/s: %d accepted, want 20", ok)
	}
}

func TestStoreQuotas(t *testing.T) {
	writer := keyN(t, 120)
	t.Run("PerWriter", func(t *testing.T) {
		c := newTestCore(t, 1, Config{MaxRecordsPerWriter: 3})
		from := infoOf(keyN(t, 121), 121)
		for i := range 4 {
			rec := NewMutableRecord(writer, []byte(fmt.Sprint(i)), []byte("v"), 1)
			want := StoreOK
			if i == 3 {
				want = StoreFull
			}
			if got := storeVia(t, c, simEpoch, from, rec.toWire(time.Hour)); got != want {
				t.Fatalf("record %d: %v, want %v", i, got, want)
			}
		}
	})
	t.Run("PerPeerAndTotal", func(t *testing.T) {
		c := newTestCore(t, 1, Config{MaxRecordsPerPeer: 2, MaxRecords: 3})
		a, b := infoOf(keyN(t, 122), 122), infoOf(keyN(t, 123), 123)
		codes := []StoreCode{}
		for i, from := range []peer.Info{a, a, a, b, b} {
			rec := NewImmutableRecord([]byte(fmt.Sprint("value ", i)))
			codes = append(codes, storeVia(t, c, simEpoch, from, rec.toWire(time.Hour)))
		}
		want := []StoreCode{StoreOK, StoreOK, StoreFull, StoreOK, StoreFull}
		if fmt.Sprint(codes) != fmt.Sprint(want) {
			t.Fatalf("codes %v, want %v", codes, want)
		}
	})
	t.Run("ExpiryFreesRoom", func(t *testing.T) {
		c := newTestCore(t, 1, Config{MaxRecords: 1})
		from := infoOf(keyN(t, 124), 124)
		if got := storeVia(t, c, simEpoch, from, NewImmutableRecord([]byte("a")).toWire(time.Minute)); got != StoreOK {
			t.Fatal(got)
		}
		if got := storeVia(t, c, simEpoch, from, NewImmutableRecord([]byte("b")).toWire(time.Minute)); got != StoreFull {
			t.Fatalf("second record: %v, want StoreFull", got)
		}
		c.Step(simEpoch.Add(2*time.Minute), overlay.Tick{})
		if got := storeVia(t, c, simEpoch.Add(2*time.Minute), from, NewImmutableRecord([]byte("b")).toWire(time.Minute)); got != StoreOK {
			t.Fatalf("after expiry: %v, want StoreOK", got)
		}
	})
}

func TestLocalPutRefusesBadRecords(t *testing.T) {
	writer := keyN(t, 130)
	forged := NewMutableRecord(writer, []byte("n"), []byte("v"), 1)
	forged.Value = []byte("changed")
	for _, tc := range []struct {
		name string
		cfg  Config
		rec  Record
		want error
	}{
		{"Oversized", Config{MaxValueSize: 10}, Record{Value: make([]byte, 11)}, ErrTooLarge},
		{"ForgedPreSigned", Config{}, forged, ErrForged},
		{"OtherWritersUnsigned", Config{}, Record{Name: []byte("n"), Writer: writer.Public()}, ErrNoSigner},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCore(t, 1, tc.cfg)
			c.Step(simEpoch, Put{ReqID: 1, Record: tc.rec})
			res := findOutput[PutResult](t, c.Drain(nil))
			if !errors.Is(res.Err, tc.want) {
				t.Fatalf("put: %v, want %v", res.Err, tc.want)
			}
		})
	}
	t.Run("NoSigner", func(t *testing.T) {
		c, err := New(Config{Self: peer.Info{ID: peer.ID{1}, Addr: "a"}})
		if err != nil {
			t.Fatal(err)
		}
		c.Step(simEpoch, Put{ReqID: 1, Record: Record{Name: []byte("n"), Value: []byte("v")}})
		if res := findOutput[PutResult](t, c.Drain(nil)); !errors.Is(res.Err, ErrNoSigner) {
			t.Fatalf("put: %v, want ErrNoSigner", res.Err)
		}
	})
}

// findOutput returns the first output of type T.
func findOutput[T any](t testing.TB, outs []any) T {
	t.Helper()
	for _, out := range outs {
		if v, ok := out.(T); ok {
			return v
		}
	}
	var zero T
	t.Fatalf("no %T among %d outputs", zero, len(outs))
	return zero
}

// sends returns the messages of type T sent, with their destinations.
func sends[T any](outs []any) (msgs []T, to []peer.Info) {
	for _, out := range outs {
		if s, ok := out.(overlay.Send); ok {
			if m, ok := s.Msg.(T); ok {
				msgs = append(msgs, m)
				to = append(to, s.To)
			}
		}
	}
	return msgs, to
}

func TestGetRefusesForgedOrMismatchedRecordsAndContinues(t *testing.T) {
	writer := keyN(t, 140)
	genuine := NewMutableRecord(writer, []byte("cfg"), []byte("genuine"), 3)
	forged := genuine.toWire(time.Hour)
	forged.Value = []byte("forged")
	wrongKey := NewImmutableRecord([]byte("unrelated")).toWire(time.Hour)

	c := newTestCore(t, 1, Config{Alpha: 1})
	// With Alpha 1 the lookup asks the closest first: the two liars are
	// the two closest to the key, the honest holder the farthest.
	peers := []peer.Info{infoOf(keyN(t, 141), 141), infoOf(keyN(t, 142), 142), infoOf(keyN(t, 143), 143)}
	slices.SortFunc(peers, func(a, b peer.Info) int { return compareDistance(genuine.Key, a.ID, b.ID) })
	liars, honest := peers[:2], peers[2]
	for _, p := range peers {
		c.Step(simEpoch, overlay.Received{From: p, Msg: &Ping{RPC: 1}})
	}
	c.Drain(nil)
	c.Step(simEpoch, Get{ReqID: 9, Key: genuine.Key})
	answers := map[peer.ID]*WireRecord{liars[0].ID: &forged, liars[1].ID: &wrongKey}
	good := genuine.toWire(time.Hour)
	answers[honest.ID] = &good
	var res GetResult
	for step := 0; step < 10; step++ {
		outs := c.Drain(nil)
		if r, ok := firstOf[GetResult](outs); ok {
			res = r
			break
		}
		reqs, to := sends[*FindValue](outs)
		if len(reqs) != 1 {
			t.Fatalf("step %d: %d FIND_VALUE requests in flight with Alpha 1", step, len(reqs))
		}
		c.Step(simEpoch, overlay.Received{From: to[0], Msg: &FindValueReply{RPC: reqs[0].RPC, Record: answers[to[0].ID]}})
	}
	if res.Err != nil || string(res.Record.Value) != "genuine" {
		t.Fatalf("get: %q, %v; want the genuine record after skipping the liars", res.Record.Value, res.Err)
	}
	if c.Stats().Malformed != 2 {
		t.Fatalf("no bad record counted (stats %+v)", c.Stats())
	}
}

func firstOf[T any](outs []any) (T, bool) {
	for _, out := range outs {
		if v, ok := out.(T); ok {
			return v, true
		}
	}
	var zero T
	return zero, false
}

// TestRecordCodecAndExternalSigning: a record signed over SigningBytes by
// its writer's key verifies and survives EncodeRecord/DecodeRecord; the
// same bytes signed by another key are a forgery (paper section 2.5's
// STORE needs this check when any node may republish).
func TestRecordCodecAndExternalSigning(t *testing.T) {
	writer, other := keyN(t, 330), keyN(t, 331)
	rec := Record{Key: MutableKey(writer.Public(), []byte("n")), Name: []byte("n"), Value: []byte("v"), Writer: writer.Public(), Seq: 4}
	rec.Sig = writer.Sign(rec.SigningBytes())
	if err := rec.Verify(); err != nil {
		t.Fatalf("externally signed record: %v", err)
	}
	data, err := EncodeRecord(rec, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeRecord(data, simEpoch, 10*time.Minute)
	if err != nil || back.Verify() != nil || back.Seq != 4 || !back.Expires.Equal(simEpoch.Add(10*time.Minute)) {
		t.Fatalf("decoded %+v, %v (expiry must be capped by maxTTL)", back, err)
	}
	forged := rec
	forged.Seq = 5
	forged.Sig = other.Sign(forged.SigningBytes())
	if err := forged.Verify(); !errors.Is(err, ErrForged) {
		t.Errorf("record signed by another key: %v, want ErrForged", err)
	}
	for _, bad := range [][]byte{nil, {0xff}, data[:len(data)-1]} {
		if _, err := DecodeRecord(bad, simEpoch, time.Hour); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeRecord(%x): %v, want ErrMalformed", bad, err)
		}
	}
}
