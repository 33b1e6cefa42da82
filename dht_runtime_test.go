package p2p

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/p2p-go/p2p/kademlia"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport"
	"github.com/p2p-go/p2p/transport/memnet"
	"github.com/p2p-go/p2p/transport/tcp"
	"github.com/p2p-go/p2p/wire"
)

// Tests of the DHT's runtime: the Kademlia core driven by node.Runtime over
// real transports. They moved here from package kademlia with the runtime
// (issue 12) and keep their names.

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

// kadKey returns the n-th key of package kademlia's tests, so that the
// benchmarks that moved here run with the same node IDs.
func kadKey(t testing.TB, n int) *peer.Key {
	t.Helper()
	seed := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("kademlia test key"), uint64(n)))
	key, err := peer.KeyFromSeed(seed[:])
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// idSeed is the seed package kademlia derives from a node's ID when none is
// given: the runtime's tests ran with it before they moved here.
func idSeed(id peer.ID) uint64 {
	return binary.BigEndian.Uint64(id[:8])
}

// closeAll closes every DHT.
func closeAll(t *testing.T, dhts []*DHT) {
	for _, d := range dhts {
		if err := d.Close(); err != nil {
			t.Errorf("close %s: %v", d.ID().Short(), err)
		}
	}
}

// inboxOf collects the messages a node's reactors receive.
func inboxOf(d *DHT) chan *Message {
	ch := make(chan *Message, 64)
	d.React(func(m *Message) {
		select {
		case ch <- m:
		default:
		}
	})
	return ch
}

// startDHTs starts n DHT nodes and joins each to the first; the caller
// closes them with closeAll.
func startDHTs(t *testing.T, ctx context.Context, n int, newTransport func(*testing.T, *peer.Key) transport.Transport) ([]*DHT, []chan *Message) {
	t.Helper()
	var dhts []*DHT
	var inboxes []chan *Message
	defer func() {
		if t.Failed() {
			closeAll(t, dhts)
		}
	}()
	for i := range n {
		key := testKey(t, i)
		d, err := NewDHT(DHTConfig{Key: key, Transport: newTransport(t, key), DataDir: t.TempDir(), Seed: idSeed(key.ID())})
		if err != nil {
			t.Fatal(err)
		}
		dhts = append(dhts, d)
		inboxes = append(inboxes, inboxOf(d))
		if err := d.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			if _, err := d.Bootstrap(ctx, []string{dhts[0].Addr()}); err != nil {
				t.Fatalf("node %d bootstrap: %v", i, err)
			}
		}
	}
	return dhts, inboxes
}

// rawStore sends a STORE from a throwaway identity straight over the
// transport and returns the answer's code.
func rawStore(t *testing.T, ctx context.Context, newTransport func(*testing.T, *peer.Key) transport.Transport, to string, rec kademlia.WireRecord) kademlia.StoreCode {
	t.Helper()
	key := testKey(t, 200)
	tr := newTransport(t, key)
	defer tr.Close()
	conn, err := tr.Dial(ctx, to)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	data, err := wire.Marshal(&kademlia.Store{RPC: 42, Record: rec})
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
		if reply, ok := msg.(*kademlia.StoreReply); ok && reply.RPC == 42 {
			return reply.Code
		}
	}
}

// wireRecord returns the wire form of rec with an hour to live.
func wireRecord(rec kademlia.Record) kademlia.WireRecord {
	return kademlia.WireRecord{Key: rec.Key, Name: rec.Name, Value: rec.Value, Writer: rec.Writer, Seq: rec.Seq, Sig: rec.Sig, TTL: 3600}
}

func TestDHTOverMemnet(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	network, newTransport := memTransports(t)
	defer network.Close()
	start := time.Now()
	dhts, inboxes := startDHTs(t, ctx, 20, newTransport)
	defer closeAll(t, dhts)
	t.Logf("20 nodes joined in %v", time.Since(start))

	writer, reader := dhts[3], dhts[17]
	key, err := writer.Put(ctx, "config", "v1")
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	got, err := reader.Get(ctx, key)
	if err != nil || string(got.Value) != `"v1"` {
		t.Fatalf("get: %v, %v", got, err)
	}
	rec := got.Record
	if _, err := writer.Put(ctx, "config", "v2"); err != nil {
		t.Fatalf("update: %v", err)
	}

	t.Run("ForgedUpdateRejected", func(t *testing.T) {
		forged := wireRecord(rec)
		forged.Value = []byte(`"evil"`)
		forged.Seq = rec.Seq + 1000
		if code := rawStore(t, ctx, newTransport, dhts[10].Addr(), forged); code != kademlia.StoreForged {
			t.Fatalf("forged STORE answered %v (%v), want StoreForged", code, code.Err())
		}
		stale := wireRecord(rec) // the genuine v1, older than v2
		if code := rawStore(t, ctx, newTransport, dhts[11].Addr(), stale); code != kademlia.StoreStale {
			t.Fatalf("replayed old version answered %v (%v), want StoreStale", code, code.Err())
		}
		for _, d := range []*DHT{dhts[10], dhts[11], dhts[0]} {
			var held kademlia.Record
			var ok bool
			if err := d.do(ctx, func(time.Time) { held, ok = d.core.StoredRecord(key) }); err != nil {
				t.Fatal(err)
			}
			if !ok || string(held.Value) != `"v2"` {
				t.Fatalf("node %s holds %q (%v), want v2", d.ID().Short(), held.Value, ok)
			}
		}
	})

	t.Run("ImmutableValue", func(t *testing.T) {
		key, err := dhts[5].PutImmutable(ctx, "blob")
		if err != nil || key != kademlia.ImmutableKey([]byte(`"blob"`)) {
			t.Fatalf("put immutable: %s, %v", key.Short(), err)
		}
		got, err := dhts[12].Get(ctx, key)
		if err != nil || string(got.Value) != `"blob"` {
			t.Fatalf("get immutable: %v, %v", got, err)
		}
		if _, err := dhts[12].Get(ctx, kademlia.ImmutableKey([]byte("absent"))); !errors.Is(err, kademlia.ErrNotFound) {
			t.Fatalf("get of an absent key: %v, want ErrNotFound", err)
		}
	})

	t.Run("BroadcastReachesEveryNode", func(t *testing.T) {
		if err := dhts[7].Send(ctx, "to all"); err != nil {
			t.Fatal(err)
		}
		for i := range dhts {
			if i == 7 {
				continue
			}
			select {
			case got := <-inboxes[i]:
				if got.Direct || string(got.Data) != `"to all"` || got.From != dhts[7].ID() {
					t.Fatalf("node %d got %+v", i, got)
				}
			case <-ctx.Done():
				t.Fatalf("node %d: no broadcast delivered", i)
			}
		}
	})

	t.Run("DirectByIDOnly", func(t *testing.T) {
		if err := dhts[1].SendTo(ctx, Member{ID: dhts[19].ID()}, "psst"); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-inboxes[19]:
			if !got.Direct || string(got.Data) != `"psst"` || got.From != dhts[1].ID() {
				t.Fatalf("got %+v", got)
			}
		case <-ctx.Done():
			t.Fatal("no direct message delivered")
		}
	})

	t.Run("LookupFindsTheClosest", func(t *testing.T) {
		target := kademlia.ImmutableKey([]byte("somewhere"))
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
			network.Kill(dhts[i].Addr())
			crashed[dhts[i].ID()] = true
		}
		closest, err := dhts[15].Lookup(ctx, kademlia.ImmutableKey([]byte("elsewhere")))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range closest {
			if crashed[m.ID] {
				t.Fatalf("crashed node %s in the lookup result", m.ID.Short())
			}
		}
		if len(closest) != 15 {
			t.Fatalf("lookup returned %d nodes, want the 15 live others", len(closest))
		}
		got, err := dhts[2].Get(ctx, key)
		if err != nil || string(got.Value) != `"v2"` {
			t.Fatalf("get after crashes: %v, %v", got, err)
		}
	})
}

// The runtime's half of TestDHTOverTCP (package kademlia's test of that name
// ran 4 nodes over TCP: put, then get from another node) is the start of the
// root package's TestDHTOverTCP, which runs 6 and adds a broadcast and a
// node with the wrong secret.

func TestDHTCloseIsIdempotentAndUnblocksCalls(t *testing.T) {
	defer goleak.VerifyNone(t)
	key := testKey(t, 50)
	d, err := NewDHT(DHTConfig{Key: key, Transport: newTCPTransport(t, key), DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
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
	if _, err := d.Get(ctx, peer.ID{1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("get after close: %v, want ErrClosed", err)
	}
	if err := d.Start(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("start after close: %v, want ErrClosed", err)
	}
}

func TestNewDHTValidatesConfig(t *testing.T) {
	key := testKey(t, 60)
	for _, tc := range []struct {
		name string
		cfg  DHTConfig
		want string
	}{
		{"negative queue", DHTConfig{Key: key, Transport: fakeAddrTransport{}, ReactorQueueLen: -1}, "ReactorQueueLen"},
		{"short secret", DHTConfig{Key: key, Transport: fakeAddrTransport{}, Secret: []byte("short")}, "Secret"},
		{"bad core", DHTConfig{Key: key, Transport: fakeAddrTransport{}, Kademlia: kademlia.Config{Alpha: 30}}, "Alpha"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewDHT(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
}

// fakeAddrTransport only answers LocalAddr and Close: NewDHT reads nothing
// else before the core accepts its configuration.
type fakeAddrTransport struct{ transport.Transport }

func (fakeAddrTransport) LocalAddr() string { return "fake:1" }
func (fakeAddrTransport) Close() error      { return nil }

// TestDHTJoinedAndInvalidJSON: Joined closes for a node that started a new
// network once another node joined it, and for the newcomer once its
// bootstrap ended; a payload that is not JSON is counted and never reaches
// a reactor, as on a Broadcaster.
func TestDHTJoinedAndInvalidJSON(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	network, newTransport := memTransports(t)
	defer network.Close()
	var dhts []*DHT
	var inboxes []chan *Message
	defer func() { closeAll(t, dhts) }()
	for i := range 2 {
		key := testKey(t, 70+i)
		cfg := DHTConfig{Key: key, Transport: newTransport(t, key), DataDir: t.TempDir(), Seed: uint64(i + 1)}
		if i > 0 {
			cfg.Bootstrap = []string{dhts[0].Addr()}
		}
		d, err := NewDHT(cfg)
		if err != nil {
			t.Fatal(err)
		}
		dhts = append(dhts, d)
		inboxes = append(inboxes, inboxOf(d))
		if err := d.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i, d := range dhts {
		select {
		case <-d.Joined():
		case <-ctx.Done():
			t.Fatalf("node %d never joined", i)
		}
	}
	if err := dhts[0].broadcast(ctx, []byte("not json")); err != nil {
		t.Fatal(err)
	}
	if err := dhts[0].Send(ctx, "json"); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-inboxes[1]:
		if string(got.Data) != `"json"` {
			t.Fatalf("reactor got %s, want the JSON message only", got.Data)
		}
	case <-ctx.Done():
		t.Fatal("no message delivered")
	}
	if n := dhts[1].Stats().InvalidJSON; n != 1 {
		t.Fatalf("InvalidJSON = %d, want 1", n)
	}
}
