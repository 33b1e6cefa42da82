package kademlia

import (
	"bytes"
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/wire"
)

// fuzzSeeds returns one valid encoding of every message type.
func fuzzSeeds(tb testing.TB) [][]byte {
	writer := keyN(tb, 300)
	mutable := NewMutableRecord(writer, []byte("name"), []byte("value"), 3).toWire(time.Hour)
	immutable := NewImmutableRecord([]byte("content")).toWire(time.Minute)
	contacts := []peer.Info{infoOf(keyN(tb, 301), 301), infoOf(keyN(tb, 302), 302)}
	var out [][]byte
	for _, msg := range []any{
		&Ping{RPC: 1},
		&Pong{RPC: 1},
		&FindNode{RPC: 2, Target: peer.ID{1, 2, 3}},
		&FindNodeReply{RPC: 2, Contacts: contacts},
		&FindValue{RPC: 3, Key: mutable.Key},
		&FindValueReply{RPC: 3, Record: &mutable},
		&FindValueReply{RPC: 3, Contacts: contacts},
		&Store{RPC: 4, Record: mutable},
		&Store{RPC: 4, Record: immutable},
		&StoreReply{RPC: 4, Code: StoreStale},
		&BroadcastMessage{ID: 5, Origin: contacts[0].ID, Depth: 3, Hops: 2, Payload: []byte("hello")},
		&DirectMessage{Payload: []byte("hi")},
	} {
		data, err := wire.Marshal(msg)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// FuzzDecodeAndStep feeds arbitrary bytes through the wire decoder into a
// core that has lookups, a Get and a Put in flight. A decoded reply is
// pointed at one of the pending requests (chosen by pick), from the peer it
// was sent to, so that the reply paths are explored too. Nothing may panic,
// and the core must keep answering afterwards.
func FuzzDecodeAndStep(f *testing.F) {
	for i, seed := range fuzzSeeds(f) {
		f.Add(seed, uint8(i))
	}
	f.Fuzz(func(t *testing.T, data []byte, pick uint8) {
		msg, err := wire.Unmarshal(data)
		if err != nil {
			return
		}
		c := newTestCore(t, 1, Config{K: 4, Alpha: 2})
		for i := range 6 {
			c.Step(simEpoch, overlay.Received{From: infoOf(keyN(t, 400+i), 400+i), Msg: &Ping{RPC: 9}})
		}
		c.Step(simEpoch, Lookup{ReqID: 1, Target: peer.ID{0xaa}})
		c.Step(simEpoch, Get{ReqID: 2, Key: peer.ID{0x55}})
		c.Step(simEpoch, Put{ReqID: 3, Record: Record{Value: []byte("v")}})
		c.Step(simEpoch, Broadcast{Payload: []byte("b")})
		type pending struct {
			rpc uint64
			to  peer.Info
		}
		var requests []pending
		for _, out := range c.Drain(nil) {
			if s, ok := out.(overlay.Send); ok {
				switch m := s.Msg.(type) {
				case *FindNode:
					requests = append(requests, pending{m.RPC, s.To})
				case *FindValue:
					requests = append(requests, pending{m.RPC, s.To})
				}
			}
		}
		from := infoOf(keyN(t, 500), 500)
		if len(requests) > 0 && int(pick) < 2*len(requests) {
			p := requests[int(pick)%len(requests)]
			from = p.to
			switch m := msg.(type) {
			case *FindNodeReply:
				m.RPC = p.rpc
			case *FindValueReply:
				m.RPC = p.rpc
			case *StoreReply:
				m.RPC = p.rpc
			case *Pong:
				m.RPC = p.rpc
			}
		}
		c.Step(simEpoch.Add(time.Millisecond), overlay.Received{From: from, Msg: msg})
		c.Step(simEpoch.Add(2*time.Second), overlay.Tick{})
		c.Drain(nil)
		// Still alive: it answers a PING.
		c.Step(simEpoch.Add(3*time.Second), overlay.Received{From: from, Msg: &Ping{RPC: 77}})
		if pongs, _ := sends[*Pong](c.Drain(nil)); len(pongs) != 1 || pongs[0].RPC != 77 {
			t.Fatalf("core no longer answers PING after %T", msg)
		}
	})
}

// FuzzRecord decodes arbitrary bytes as a wire record and validates it: no
// panic, and whatever validates must survive a round trip unchanged.
func FuzzRecord(f *testing.F) {
	writer := keyN(f, 310)
	for _, rec := range []Record{
		NewMutableRecord(writer, []byte("n"), []byte("v"), 1),
		NewImmutableRecord([]byte("content")),
		{Key: peer.ID{1}, Value: []byte("bad hash")},
	} {
		data, err := wire.MarshalValue(rec.toWire(time.Hour))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	store := newRecordStore(&Config{MaxValueSize: DefaultMaxValueSize, MaxNameSize: DefaultMaxNameSize})
	f.Fuzz(func(t *testing.T, data []byte) {
		var w WireRecord
		if err := wire.UnmarshalValue(data, &w); err != nil {
			return
		}
		rec := fromWire(&w, simEpoch, DefaultRecordTTL)
		if err := store.validate(&rec); err != nil {
			if codeOf(err) == StoreOK {
				t.Fatalf("error %v maps to StoreOK", err)
			}
			return
		}
		again, err := wire.MarshalValue(rec.toWire(rec.Expires.Sub(simEpoch)))
		if err != nil {
			t.Fatal(err)
		}
		var back WireRecord
		if err := wire.UnmarshalValue(again, &back); err != nil {
			t.Fatal(err)
		}
		round := fromWire(&back, simEpoch, DefaultRecordTTL)
		if round.Key != rec.Key || !bytes.Equal(round.Value, rec.Value) || round.Seq != rec.Seq || round.Verify() != nil {
			t.Fatal("valid record changed in a round trip")
		}
	})
}

// FuzzDecodeRecord: DecodeRecord (the record a user passes in, for example
// on the command line) never panics, and what it accepts encodes back to
// the same record, authentic or not.
func FuzzDecodeRecord(f *testing.F) {
	writer := keyN(f, 320)
	for _, rec := range []Record{
		NewMutableRecord(writer, []byte("config"), []byte(`{"v":1}`), 7),
		NewImmutableRecord([]byte("content")),
	} {
		data, err := EncodeRecord(rec, time.Hour)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := DecodeRecord(data, simEpoch, DefaultRecordTTL)
		if err != nil {
			return
		}
		if !rec.Expires.After(simEpoch) || rec.Expires.After(simEpoch.Add(DefaultRecordTTL)) {
			t.Fatalf("expiry %v outside (now, now+TTL]", rec.Expires.Sub(simEpoch))
		}
		again, err := EncodeRecord(rec, rec.Expires.Sub(simEpoch))
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeRecord(again, simEpoch, DefaultRecordTTL)
		if err != nil {
			t.Fatal(err)
		}
		if back.Key != rec.Key || !bytes.Equal(back.Name, rec.Name) || !bytes.Equal(back.Value, rec.Value) ||
			!bytes.Equal(back.Writer, rec.Writer) || back.Seq != rec.Seq || !bytes.Equal(back.Sig, rec.Sig) || !back.Expires.Equal(rec.Expires) {
			t.Fatalf("record changed in a round trip: %+v then %+v", rec, back)
		}
	})
}
