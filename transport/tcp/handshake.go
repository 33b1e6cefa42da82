package tcp

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/flynn/noise"

	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/wire"
)

// Handshake constants.
const (
	// maxHandshakeMsg bounds one handshake message on the wire. The largest,
	// message 2, is 32 (e) + 48 (s) + payload + 16 bytes; the payload is at
	// most ~ 32 + 64 + maxAddrLen + CBOR headers.
	maxHandshakeMsg = 1024
	// maxAddrLen bounds an advertised address.
	maxAddrLen = 255
)

var (
	// cipherSuite is Noise's DH25519 + ChaChaPoly + SHA256.
	cipherSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashSHA256)
	// prologue binds the handshake to this protocol and version: peers
	// speaking anything else fail at the first authenticated message.
	prologue = []byte("p2p-go/p2p tcp transport v1")
	// identityDomain prefixes what an identity key signs, so the signature
	// cannot be replayed in any other context.
	identityDomain = []byte("p2p-go/p2p noise static key v1\x00")
)

// handshakeError is a failed handshake with its classified reason.
type handshakeError struct {
	reason refuseReason
	err    error
}

func (e *handshakeError) Error() string { return e.reason.String() + ": " + e.err.Error() }
func (e *handshakeError) Unwrap() error { return e.err }

func refuse(reason refuseReason, format string, args ...any) *handshakeError {
	return &handshakeError{reason: reason, err: fmt.Errorf(format, args...)}
}

// identityProof is the handshake payload by which each side proves its
// ed25519 identity: its public key, its signature over its Noise static
// public key (prefixed with identityDomain), and its advertised address.
// The payload travels encrypted and bound to the handshake transcript.
type identityProof struct {
	_         struct{} `cbor:",toarray"`
	PublicKey []byte
	Signature []byte
	Addr      string
}

// newIdentityPayload encodes this node's proof for the static key.
func newIdentityPayload(key *peer.Key, static []byte, addr string) ([]byte, error) {
	signed := append(append([]byte(nil), identityDomain...), static...)
	return wire.MarshalValue(identityProof{PublicKey: key.Public(), Signature: key.Sign(signed), Addr: addr})
}

// verifyIdentity decodes and checks a peer's proof against the Noise static
// key it used in the handshake, and returns the peer's authenticated info.
func verifyIdentity(payload, peerStatic []byte) (peer.Info, error) {
	var proof identityProof
	if len(payload) > maxHandshakeMsg {
		return peer.Info{}, fmt.Errorf("identity payload is %d bytes, limit %d", len(payload), maxHandshakeMsg)
	}
	if err := wire.UnmarshalValue(payload, &proof); err != nil {
		return peer.Info{}, fmt.Errorf("decode identity: %w", err)
	}
	if len(proof.PublicKey) != ed25519.PublicKeySize {
		return peer.Info{}, fmt.Errorf("identity public key is %d bytes, want %d", len(proof.PublicKey), ed25519.PublicKeySize)
	}
	if len(proof.Signature) != ed25519.SignatureSize {
		return peer.Info{}, fmt.Errorf("identity signature is %d bytes, want %d", len(proof.Signature), ed25519.SignatureSize)
	}
	if err := checkAddr(proof.Addr); err != nil {
		return peer.Info{}, fmt.Errorf("advertised address: %w", err)
	}
	if len(peerStatic) != cipherSuite.DHLen() {
		return peer.Info{}, fmt.Errorf("noise static key is %d bytes, want %d", len(peerStatic), cipherSuite.DHLen())
	}
	signed := append(append([]byte(nil), identityDomain...), peerStatic...)
	if !peer.Verify(proof.PublicKey, signed, proof.Signature) {
		return peer.Info{}, errors.New("identity signature does not match the noise static key")
	}
	return peer.Info{ID: peer.IDFromPublicKey(proof.PublicKey), Addr: proof.Addr}, nil
}

// checkAddr checks that addr is a plausible host:port of bounded length.
func checkAddr(addr string) error {
	if addr == "" || len(addr) > maxAddrLen {
		return fmt.Errorf("%d bytes, want 1 to %d", len(addr), maxAddrLen)
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if port == "" {
		return fmt.Errorf("%q has no port", addr)
	}
	return nil
}

// sessionKeys is the outcome of a completed handshake.
type sessionKeys struct {
	remote peer.Info
	send   *noise.CipherState
	recv   *noise.CipherState
}

// handshaker runs Noise XX (XXpsk0 with a cluster secret) over a connection.
// Message 1 (initiator): e, with an empty payload. With psk0 that payload is
// authenticated by the secret, so a responder refuses a peer without it
// before revealing anything. Message 2 (responder): e, ee, s, es and the
// responder's identity proof. Message 3 (initiator): s, se and the
// initiator's identity proof.
//
// The secret comes from a keyring: the initiator uses the primary key; the
// responder tries every installed key on message 1 (a fresh handshake state
// per key: message 1 carries no DH, so a try costs one AEAD check) and goes
// on with the first that authenticates it.
type handshaker struct {
	static  noise.DHKey
	keyring *Keyring // empty: an open network
	payload []byte   // this node's encoded identity proof
}

// state returns a handshake state using secret (nil: no pre-shared key).
func (h *handshaker) state(initiator bool, secret []byte) (*noise.HandshakeState, error) {
	cfg := noise.Config{
		CipherSuite:   cipherSuite,
		Pattern:       noise.HandshakeXX,
		Initiator:     initiator,
		Prologue:      prologue,
		StaticKeypair: h.static,
	}
	if secret != nil {
		cfg.PresharedKey = secret
		cfg.PresharedKeyPlacement = 0
	}
	return noise.NewHandshakeState(cfg)
}

// run performs the handshake on rw; the caller sets deadlines.
func (h *handshaker) run(rw io.ReadWriter, initiator bool) (*sessionKeys, error) {
	if initiator {
		hs, err := h.state(true, h.keyring.Primary())
		if err != nil {
			return nil, refuse(reasonProtocol, "noise setup: %w", err)
		}
		return h.runInitiator(rw, hs)
	}
	return h.runResponder(rw)
}

// readMessage1 reads message 1 with each installed key in turn and returns
// the handshake state of the key that authenticates it.
func (h *handshaker) readMessage1(msg1 []byte) (*noise.HandshakeState, []byte, error) {
	keys := h.keyring.Keys()
	if len(keys) == 0 {
		keys = [][]byte{nil}
	}
	var lastErr error
	for _, key := range keys {
		hs, err := h.state(false, key)
		if err != nil {
			return nil, nil, refuse(reasonProtocol, "noise setup: %w", err)
		}
		payload, _, _, err := hs.ReadMessage(nil, msg1)
		if err == nil {
			return hs, payload, nil
		}
		lastErr = err
	}
	if keys[0] != nil {
		return nil, nil, refuse(reasonBadSecret, "message 1 fails authentication with every installed cluster secret (%d): %w", len(keys), lastErr)
	}
	return nil, nil, refuse(reasonProtocol, "message 1: %w", lastErr)
}

func (h *handshaker) runInitiator(rw io.ReadWriter, hs *noise.HandshakeState) (*sessionKeys, error) {
	msg1, _, _, err := hs.WriteMessage(nil, nil)
	if err != nil {
		return nil, refuse(reasonProtocol, "write message 1: %w", err)
	}
	if err := writeHandshakeMsg(rw, msg1); err != nil {
		return nil, classifyIO("write message 1", err)
	}
	msg2, err := readHandshakeMsg(rw)
	if err != nil {
		if isClosed(err) && !isConnReset(err) {
			// The responder hangs up after message 1 when it does not
			// share our cluster secret (or is overloaded). A reset is
			// what a crashed or killed peer's kernel sends instead, and
			// classifyIO reports it as such.
			return nil, refuse(reasonClosedByPeer, "%w: peer closed the connection after message 1 (a different cluster secret, or the peer is overloaded): %w", errPeerHungUp, err)
		}
		return nil, classifyIO("read message 2", err)
	}
	payload, _, _, err := hs.ReadMessage(nil, msg2)
	if err != nil {
		return nil, refuse(reasonBadSecret, "decrypt message 2: %w", err)
	}
	remote, err := verifyIdentity(payload, hs.PeerStatic())
	if err != nil {
		return nil, &handshakeError{reason: reasonBadIdentity, err: err}
	}
	msg3, send, recv, err := hs.WriteMessage(nil, h.payload)
	if err != nil {
		return nil, refuse(reasonProtocol, "write message 3: %w", err)
	}
	if err := writeHandshakeMsg(rw, msg3); err != nil {
		return nil, classifyIO("write message 3", err)
	}
	return &sessionKeys{remote: remote, send: send, recv: recv}, nil
}

func (h *handshaker) runResponder(rw io.ReadWriter) (*sessionKeys, error) {
	msg1, err := readHandshakeMsg(rw)
	if err != nil {
		return nil, classifyIO("read message 1", err)
	}
	hs, payload, err := h.readMessage1(msg1)
	if err != nil {
		return nil, err
	}
	if len(payload) != 0 {
		// Without a secret, an initiator using one sends a 16-byte tag
		// that we read as a non-empty payload.
		return nil, refuse(reasonBadSecret, "message 1 carries %d unexpected bytes (peer uses a cluster secret?)", len(payload))
	}
	if s, ok := rw.(firstMessageSignal); ok {
		if err := s.firstMessageRead(msg1); err != nil {
			return nil, err
		}
	}
	msg2, _, _, err := hs.WriteMessage(nil, h.payload)
	if err != nil {
		return nil, refuse(reasonProtocol, "write message 2: %w", err)
	}
	if err := writeHandshakeMsg(rw, msg2); err != nil {
		return nil, classifyIO("write message 2", err)
	}
	msg3, err := readHandshakeMsg(rw)
	if err != nil {
		return nil, classifyIO("read message 3", err)
	}
	payload, recv, send, err := hs.ReadMessage(nil, msg3)
	if err != nil {
		return nil, refuse(reasonBadSecret, "decrypt message 3: %w", err)
	}
	remote, err := verifyIdentity(payload, hs.PeerStatic())
	if err != nil {
		return nil, &handshakeError{reason: reasonBadIdentity, err: err}
	}
	return &sessionKeys{remote: remote, send: send, recv: recv}, nil
}

// writeHandshakeMsg writes one length-prefixed handshake message.
func writeHandshakeMsg(w io.Writer, msg []byte) error {
	return wire.WriteFrame(w, msg, maxHandshakeMsg)
}

// readHandshakeMsg reads one length-prefixed handshake message.
func readHandshakeMsg(r io.Reader) ([]byte, error) {
	return wire.ReadFrame(r, maxHandshakeMsg)
}

// classifyIO turns an I/O error during the handshake into a refusal reason.
func classifyIO(step string, err error) *handshakeError {
	var netErr net.Error
	switch {
	case errors.As(err, &netErr) && netErr.Timeout():
		return refuse(reasonTimeout, "%s: %w", step, err)
	case isConnReset(err):
		return refuse(reasonClosedByPeer, "%s: connection reset by peer: %w", step, err)
	case isClosed(err):
		return refuse(reasonClosedByPeer, "%s: peer closed the connection: %w", step, err)
	default:
		return refuse(reasonProtocol, "%s: %w", step, err)
	}
}

// isClosed reports whether err means the peer closed or reset the connection.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		isConnReset(err)
}

// isConnReset reports whether err is a connection reset or a broken pipe.
func isConnReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
