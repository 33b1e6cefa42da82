package kademlia

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport"
	"github.com/p2p-go/p2p/transport/memnet"
	"github.com/p2p-go/p2p/transport/tcp"
	"github.com/p2p-go/p2p/wire"
)

// newTCPTransport returns a real transport for key on the loopback
// interface.
func newTCPTransport(t *testing.T, key *peer.Key) transport.Transport {
	t.Helper()
	tr, err := tcp.Listen(tcp.Config{ListenAddr: "127.0.0.1:0", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// memTransports returns a factory of transports on one in-memory network
// with 1 ms links.
func memTransports(t *testing.T) (*memnet.Network, func(t *testing.T, key *peer.Key) transport.Transport) {
	network := memnet.New(memnet.Config{Seed: 1, Latency: time.Millisecond})
	count := 0
	return network, func(t *testing.T, key *peer.Key) transport.Transport {
		t.Helper()
		count++
		tr, err := network.Listen(key, fmt.Sprintf("node-%d", count))
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
}

func testKey(t *testing.T, i int) *peer.Key {
	t.Helper()
	seed := bytes.Repeat([]byte{byte(i + 1)}, 32)
	key, err := peer.KeyFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// closeAll closes every DHT.
func closeAll(t *testing.T, dhts []*DHT) {
	for _, d := range dhts {
		if err := d.Close(); err != nil {
			t.Errorf("close %s: %v", d.Self(), err)
		}
	}
}

// startDHTs starts n DHT nodes and joins each to the first; the caller
// closes them with closeAll.
func startDHTs(t *testing.T, ctx context.Context, n int, newTransport func(*testing.T, *peer.Key) transport.Transport) []*DHT {
	t.Helper()
	var dhts []*DHT
	defer func() {
		if t.Failed() {
			closeAll(t, dhts)
		}
	}()
	for i := range n {
		key := testKey(t, i)
		d, err := NewDHT(DHTConfig{Key: key, Transport: newTransport(t, key)})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Start(); err != nil {
			t.Fatal(err)
		}
		dhts = append(dhts, d)
		if i > 0 {
			if _, err := d.Bootstrap(ctx, []string{dhts[0].Self().Addr}); err != nil {
				t.Fatalf("node %d bootstrap: %v", i, err)
			}
		}
	}
	return dhts
}

// rawStore sends a STORE from a throwaway identity straight over the
// transport and returns the answer's code.
func rawStore(t *testing.T, ctx context.Context, newTransport func(*testing.T, *peer.Key) transport.Transport, to string, rec WireRecord) StoreCode {
	t.Helper()
	key := testKey(t, 200)
	tr := newTransport(t, key)
	defer tr.Close()
	conn, err := tr.Dial(ctx, to)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	data, err := wire.Marshal(&Store{RPC: 42, Record: rec})
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Send(ctx, data); err != nil {
		t.Fatal(err)
	}
	for {
		data, err := conn.Recv()
		if err != nil {
			t.Fatal(err)
		}
		msg, err := wire.Unmarshal(data)
		if err != nil {
			t.Fatal(err)
		}
		if reply, ok := msg.(*StoreReply); ok && reply.RPC == 42 {
			return reply.Code
		}
	}
}

func TestDHTOverMemnet(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	network, newTransport := memTransports(t)
	defer network.Close()
	start := time.Now()
	dhts := startDHTs(t, ctx, 20, newTransport)
	defer closeAll(t, dhts)
	t.Logf("20 nodes joined in %v", time.Since(start))

	writer, reader := dhts[3], dhts[17]
	key, err := writer.Put(ctx, []byte("config"), []byte("v1"))
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	value, rec, err := reader.Get(ctx, key)
	if err != nil || string(value) != "v1" {
		t.Fatalf("get: %q, %v", value, err)
	}
	if _, err := writer.Put(ctx, []byte("config"), []byte("v2")); err != nil {
		t.Fatalf("update: %v", err)
	}

	t.Run("ForgedUpdateRejected", func(t *testing.T) {
		forged := rec.toWire(time.Hour)
		forged.Value = []byte("evil")
		forged.Seq = rec.Seq + 1000
		if code := rawStore(t, ctx, newTransport, dhts[10].Self().Addr, forged); code != StoreForged {
			t.Fatalf("forged STORE answered %v (%v), want StoreForged", code, code.Err())
		}
		stale := rec.toWire(time.Hour) // the genuine v1, older than v2
		if code := rawStore(t, ctx, newTransport, dhts[11].Self().Addr, stale); code != StoreStale {
			t.Fatalf("replayed old version answered %v (%v), want StoreStale", code, code.Err())
		}
		for _, d := range []*DHT{dhts[10], dhts[11], dhts[0]} {
			var held Record
			var ok bool
			if err := d.Do(ctx, func(c *Core) { held, ok = c.StoredRecord(key) }); err != nil {
				t.Fatal(err)
			}
			if !ok || string(held.Value) != "v2" {
				t.Fatalf("node %s holds %q (%v), want v2", d.Self(), held.Value, ok)
			}
		}
	})

	t.Run("ImmutableValue", func(t *testing.T) {
		key, err := dhts[5].PutImmutable(ctx, []byte("blob"))
		if err != nil || key != ImmutableKey([]byte("blob")) {
			t.Fatalf("put immutable: %s, %v", key.Short(), err)
		}
		value, _, err := dhts[12].Get(ctx, key)
		if err != nil || string(value) != "blob" {
			t.Fatalf("get immutable: %q, %v", value, err)
		}
		if _, _, err := dhts[12].Get(ctx, ImmutableKey([]byte("absent"))); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get of an absent key: %v, want ErrNotFound", err)
		}
	})

	t.Run("BroadcastReachesEveryNode", func(t *testing.T) {
		if err := dhts[7].Broadcast(ctx, []byte("to all")); err != nil {
			t.Fatal(err)
		}
		for i, d := range dhts {
			if i == 7 {
				continue
			}
			select {
			case got := <-d.Deliveries():
				if !got.Broadcast || string(got.Payload) != "to all" || got.Origin != dhts[7].Self().ID {
					t.Fatalf("node %d got %+v", i, got)
				}
			case <-ctx.Done():
				t.Fatalf("node %d: no broadcast delivered", i)
			}
		}
	})

	t.Run("DirectByIDOnly", func(t *testing.T) {
		to := dhts[19].Self()
		if err := dhts[1].SendDirect(ctx, peer.Info{ID: to.ID}, []byte("psst")); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-dhts[19].Deliveries():
			if got.Broadcast || string(got.Payload) != "psst" || got.From.ID != dhts[1].Self().ID {
				t.Fatalf("got %+v", got)
			}
		case <-ctx.Done():
			t.Fatal("no direct message delivered")
		}
	})

	t.Run("LookupFindsTheClosest", func(t *testing.T) {
		target := ImmutableKey([]byte("somewhere"))
		closest, err := dhts[2].Lookup(ctx, target)
		if err != nil {
			t.Fatal(err)
		}
		if len(closest) != 19 {
			t.Fatalf("lookup returned %d nodes, want the 19 others", len(closest))
		}
	})

	t.Run("LookupSkipsCrashedNodes", func(t *testing.T) {
		crashed := map[peer.ID]bool{}
		for _, i := range []int{6, 8, 9, 13} {
			network.Kill(dhts[i].Self().Addr)
			crashed[dhts[i].Self().ID] = true
		}
		closest, err := dhts[15].Lookup(ctx, ImmutableKey([]byte("elsewhere")))
		if err != nil {
			t.Fatal(err)
		}
		for _, info := range closest {
			if crashed[info.ID] {
				t.Fatalf("crashed node %s in the lookup result", info)
			}
		}
		if len(closest) != 15 {
			t.Fatalf("lookup returned %d nodes, want the 15 live others", len(closest))
		}
		value, _, err := dhts[2].Get(ctx, key)
		if err != nil || string(value) != "v2" {
			t.Fatalf("get after crashes: %q, %v", value, err)
		}
	})
}

func TestDHTOverTCP(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dhts := startDHTs(t, ctx, 4, newTCPTransport)
	defer closeAll(t, dhts)
	key, err := dhts[1].Put(ctx, []byte("over tcp"), []byte("noise"))
	if err != nil {
		t.Fatal(err)
	}
	if value, _, err := dhts[3].Get(ctx, key); err != nil || string(value) != "noise" {
		t.Fatalf("get: %q, %v", value, err)
	}
}

func TestDHTCloseIsIdempotentAndUnblocksCalls(t *testing.T) {
	defer goleak.VerifyNone(t)
	key := testKey(t, 50)
	d, err := NewDHT(DHTConfig{Key: key, Transport: newTCPTransport(t, key)})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A bootstrap contact that never answers keeps the call waiting.
	errs := make(chan error, 1)
	go func() {
		_, err := d.Bootstrap(ctx, []string{"127.0.0.1:1"})
		errs <- err
	}()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := <-errs; err == nil {
		t.Fatal("bootstrap succeeded on a closed DHT")
	}
	if _, _, err := d.Get(ctx, peer.ID{1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("get after close: %v, want ErrClosed", err)
	}
	if _, ok := <-d.Deliveries(); ok {
		t.Fatal("deliveries channel still open")
	}
}

func TestNewDHTValidatesConfig(t *testing.T) {
	key := testKey(t, 60)
	for _, tc := range []struct {
		name string
		cfg  DHTConfig
		want string
	}{
		{"no key", DHTConfig{}, "Key"},
		{"no transport", DHTConfig{Key: key}, "Transport"},
		{"negative queue", DHTConfig{Key: key, Transport: fakeAddrTransport{}, DeliveryQueue: -1}, "DeliveryQueue"},
		{"bad core", DHTConfig{Key: key, Transport: fakeAddrTransport{}, Core: Config{Alpha: 30}}, "Alpha"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewDHT(tc.cfg)
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
				t.Fatalf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
}

// fakeAddrTransport only answers LocalAddr: NewDHT reads nothing else.
type fakeAddrTransport struct{ transport.Transport }

func (fakeAddrTransport) LocalAddr() string { return "fake:1" }
