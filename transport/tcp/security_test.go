package tcp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/p2p-go/p2p/internal/testutil"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport"
	"github.com/p2p-go/p2p/wire"
)

func secret(fill byte) []byte { return bytes.Repeat([]byte{fill}, SecretLen) }

// assertNothingAccepted checks that no connection reaches Accept.
func assertNothingAccepted(t *testing.T, tr *Transport) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if conn, err := tr.Accept(ctx); err == nil {
		t.Fatalf("a refused peer was accepted: %v", conn.Remote())
	}
	if s := tr.Stats(); s.FramesIn != 0 || s.HandshakesAccepted != 0 {
		t.Fatalf("refused peer got through: %+v", s)
	}
}

func TestClusterSecretRefusesOutsidersOnBothSides(t *testing.T) {
	for _, tc := range []struct {
		name                       string
		dialerSecret, serverSecret []byte
	}{
		{"different secrets", secret(1), secret(2)},
		{"dialer without secret", nil, secret(2)},
		{"server without secret", secret(1), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dialer := newTransport(t, func(cfg *Config) { cfg.Secret = tc.dialerSecret })
			server := newTransport(t, func(cfg *Config) { cfg.Secret = tc.serverSecret })
			conn, err := dialer.Dial(testContext(t), server.ListenAddr().String())
			if !errors.Is(err, transport.ErrRefused) {
				if conn != nil {
					conn.Close()
				}
				t.Fatalf("Dial: %v, want ErrRefused", err)
			}
			testutil.Eventually(t, 10*time.Second, "the server to count the refusal", func() bool { return server.Stats().RefusedBadSecret == 1 })
			if got := dialer.Stats().HandshakesRefused; got != 1 {
				t.Fatalf("dialer counted %d refusals, want 1", got)
			}
			assertNothingAccepted(t, server)
			if s := server.Stats(); s.HandshakesRefused != 1 {
				t.Fatalf("server stats %+v, want exactly one refusal", s)
			}
		})
	}
}

func TestSameClusterSecretConnects(t *testing.T) {
	a := newTransport(t, func(cfg *Config) { cfg.Secret = secret(7) })
	b := newTransport(t, func(cfg *Config) { cfg.Secret = secret(7) })
	atA, atB := connect(t, a, b)
	if err := atA.Send(testContext(t), []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if got, err := atB.Recv(); err != nil || string(got) != "hello" {
		t.Fatalf("Recv = %q, %v", got, err)
	}
}

// expectDisconnected waits until the server closes raw.
func expectDisconnected(t *testing.T, raw net.Conn) {
	t.Helper()
	raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, raw)
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		t.Fatal("the server did not close the connection")
	}
}

// expectGoodPeerServed checks that the server still accepts a proper peer.
func expectGoodPeerServed(t *testing.T, server *Transport, mutate func(*Config)) {
	t.Helper()
	good := newTransport(t, mutate)
	atGood, atServer := connect(t, good, server)
	if err := atGood.Send(testContext(t), []byte("after the attack")); err != nil {
		t.Fatal(err)
	}
	if got, err := atServer.Recv(); err != nil || string(got) != "after the attack" {
		t.Fatalf("good peer after the attack: %q, %v", got, err)
	}
}

func TestRawClientGarbageDuringHandshakeIsDisconnected(t *testing.T) {
	random := rand.New(rand.NewPCG(1, 2))
	randomBytes := make([]byte, 64<<10)
	for i := range randomBytes {
		randomBytes[i] = byte(random.Uint32())
	}
	frame := func(length uint32, body []byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, length), body...)
	}
	for _, tc := range []struct {
		name   string
		secret []byte
		send   []byte
		reason string
	}{
		{"text garbage", nil, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "protocol"},
		{"oversized length", nil, frame(1<<31, nil), "protocol"},
		{"truncated frame", nil, frame(48, make([]byte, 10)), "closed"},
		{"short message 1", nil, frame(8, make([]byte, 8)), "protocol"},
		{"random bytes", nil, randomBytes, "protocol"},
		{"random message 1 with secret", secret(3), frame(48, randomBytes[:48]), "secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server := newTransport(t, func(cfg *Config) { cfg.Secret = tc.secret })
			raw, err := net.Dial("tcp", server.ListenAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			raw.Write(tc.send)
			raw.(*net.TCPConn).CloseWrite()
			expectDisconnected(t, raw)
			testutil.Eventually(t, 10*time.Second, "the refusal to be counted", func() bool { return server.Stats().HandshakesRefused == 1 })
			s := server.Stats()
			if tc.reason == "secret" && s.RefusedBadSecret != 1 || tc.reason == "protocol" && s.RefusedProtocol != 1 ||
				tc.reason == "closed" && s.RefusedClosedByPeer != 1 {
				t.Fatalf("refusal counted under the wrong reason: %+v", s)
			}
			assertNothingAccepted(t, server)
			expectGoodPeerServed(t, server, func(cfg *Config) { cfg.Secret = tc.secret })
		})
	}
}

func TestSilentPeerTimesOutWithoutBlockingAccept(t *testing.T) {
	server := newTransport(t, func(cfg *Config) { cfg.HandshakeTimeout = 300 * time.Millisecond })
	silent, err := net.Dial("tcp", server.ListenAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// While the silent peer holds its handshake, a good peer gets through.
	expectGoodPeerServed(t, server, nil)
	expectDisconnected(t, silent)
	testutil.Eventually(t, 10*time.Second, "the timeout to be counted", func() bool { return server.Stats().RefusedTimeout == 1 })
}

func TestDialHonoursContext(t *testing.T) {
	client := newTransport(t, nil)
	listener, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = client.Dial(ctx, listener.Addr().String())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial to a mute server: %v, want context.DeadlineExceeded", err)
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Fatalf("Dial took %v despite a 100 ms context", elapsed)
	}
}

// handshakenRawConn completes a real handshake with server over a raw
// socket and returns it with the session keys, so a test can then send
// arbitrary bytes as an authenticated peer.
func handshakenRawConn(t *testing.T, server *Transport) (net.Conn, *sessionKeys, net.Conn) {
	t.Helper()
	client := newTransport(t, nil)
	raw, err := net.Dial("tcp", server.ListenAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	keys, err := client.hs.run(raw, true)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	accepted, err := server.Accept(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { accepted.Close() })
	return raw, keys, accepted.(*Conn).raw
}

func TestMalformedFramesAfterHandshakeCloseOnlyThatConnection(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bytes func(keys *sessionKeys) []byte
		want  string
	}{
		{"announced length over the limit", func(*sessionKeys) []byte {
			return binary.BigEndian.AppendUint32(nil, wire.DefaultMaxFrameSize+1)
		}, "over the limit"},
		{"bad MAC", func(keys *sessionKeys) []byte {
			frame, _ := appendMessage(nil, keys.send, []byte("hello, tampered"))
			frame[lengthLen+3] ^= 0x40
			return frame
		}, "authentication"},
		{"tampered length", func(keys *sessionKeys) []byte {
			frame, _ := appendMessage(nil, keys.send, []byte("hello, tampered"))
			frame[3]--
			return frame
		}, "authentication"},
		{"unencrypted message", func(*sessionKeys) []byte {
			plain := []byte("plain text in the clear")
			frame := binary.BigEndian.AppendUint32(nil, uint32(len(plain)))
			return append(append(frame, plain...), make([]byte, tagLen)...) // a forged tag
		}, "authentication"},
		{"truncated frame", func(keys *sessionKeys) []byte {
			frame, _ := appendMessage(nil, keys.send, make([]byte, 1000))
			return frame[:500]
		}, "truncated"},
		{"truncated length", func(*sessionKeys) []byte { return []byte{0, 0} }, "truncated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server := newTransport(t, nil)
			raw, keys, _ := handshakenRawConn(t, server)
			accepted := server.conns
			var atServer *Conn
			server.mu.Lock()
			for c := range accepted {
				atServer = c
			}
			server.mu.Unlock()
			good, _ := appendMessage(nil, keys.send, []byte("first, a good message"))
			raw.Write(append(good, tc.bytes(keys)...))
			raw.(*net.TCPConn).CloseWrite()
			if got, err := atServer.Recv(); err != nil || string(got) != "first, a good message" {
				t.Fatalf("first Recv = %q, %v", got, err)
			}
			_, err := atServer.Recv()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Recv of a bad frame: %v, want an error about %q", err, tc.want)
			}
			if _, again := atServer.Recv(); again == nil {
				t.Fatal("Recv succeeded after a malformed frame")
			}
			expectDisconnected(t, raw)
			if got := server.Stats().MalformedFrames; got != 1 {
				t.Fatalf("MalformedFrames = %d, want 1", got)
			}
			expectGoodPeerServed(t, server, nil)
		})
	}
}

func TestIdentityProofIsVerified(t *testing.T) {
	key := newKey(t)
	static, err := cipherSuite.GenerateKeypair(nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := cipherSuite.GenerateKeypair(nil)
	if err != nil {
		t.Fatal(err)
	}
	good, err := newIdentityPayload(key, static.Public, "10.0.0.1:6966")
	if err != nil {
		t.Fatal(err)
	}
	encode := func(proof identityProof) []byte {
		b, err := wire.MarshalValue(proof)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	signed := append(append([]byte(nil), identityDomain...), static.Public...)
	signature := key.Sign(signed)
	otherKey := newKey(t)
	for _, tc := range []struct {
		name    string
		payload []byte
		static  []byte
		wantErr string
	}{
		{"valid proof", good, static.Public, ""},
		{"proof for another noise key", good, other.Public, "does not match"},
		{"signature by another identity", encode(identityProof{PublicKey: otherKey.Public(), Signature: signature, Addr: "a:1"}), static.Public, "does not match"},
		{"signature without the domain prefix", encode(identityProof{PublicKey: key.Public(), Signature: key.Sign(static.Public), Addr: "a:1"}), static.Public, "does not match"},
		{"short public key", encode(identityProof{PublicKey: key.Public()[:31], Signature: signature, Addr: "a:1"}), static.Public, "public key"},
		{"long signature", encode(identityProof{PublicKey: key.Public(), Signature: append(signature, 0), Addr: "a:1"}), static.Public, "signature is"},
		{"empty address", encode(identityProof{PublicKey: key.Public(), Signature: signature}), static.Public, "address"},
		{"address without port", encode(identityProof{PublicKey: key.Public(), Signature: signature, Addr: "host"}), static.Public, "address"},
		{"overlong address", encode(identityProof{PublicKey: key.Public(), Signature: signature, Addr: strings.Repeat("a", 300) + ":1"}), static.Public, "address"},
		{"not CBOR", []byte{0xff, 0x00}, static.Public, "decode"},
		{"extra field", mustAppendField(t, good), static.Public, "decode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := verifyIdentity(tc.payload, tc.static)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("valid proof refused: %v", err)
				}
				if info != (peer.Info{ID: key.ID(), Addr: "10.0.0.1:6966"}) {
					t.Fatalf("verified %v, want %s@10.0.0.1:6966", info, key.ID().Short())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want an error about %q", err, tc.wantErr)
			}
		})
	}
}

// mustAppendField re-encodes a proof as a 4-element array.
func mustAppendField(t *testing.T, payload []byte) []byte {
	t.Helper()
	var fields []any
	if err := wire.UnmarshalValue(payload, &fields); err != nil {
		t.Fatal(err)
	}
	out, err := wire.MarshalValue(append(fields, "extra"))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestForgedIdentityProofIsRefused(t *testing.T) {
	server := newTransport(t, nil)
	static, err := cipherSuite.GenerateKeypair(nil)
	if err != nil {
		t.Fatal(err)
	}
	stolen, err := cipherSuite.GenerateKeypair(nil)
	if err != nil {
		t.Fatal(err)
	}
	// A proof valid for another Noise key, replayed with our own.
	payload, err := newIdentityPayload(newKey(t), stolen.Public, "127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	forger := handshaker{static: static, payload: payload}
	raw, err := net.Dial("tcp", server.ListenAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := forger.run(raw, true); err != nil {
		t.Fatalf("the forger's side of the handshake: %v", err)
	}
	expectDisconnected(t, raw)
	testutil.Eventually(t, 10*time.Second, "the bad identity to be counted", func() bool { return server.Stats().RefusedBadIdentity == 1 })
	assertNothingAccepted(t, server)
}
