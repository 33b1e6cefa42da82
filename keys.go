package p2p

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2p-go/p2p/gossip"
	"github.com/p2p-go/p2p/internal/ratelog"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport"
	"github.com/p2p-go/p2p/transport/tcp"
)

// Keyring operations applied cluster-wide, as Serf's `keys` command does:
// the requesting node applies the operation, broadcasts it (topicKeys), and
// every node that receives it applies it to its own keyring, saves the
// keyring in its data directory and answers the requester directly. The
// requester waits for an answer from every member it knew when it started,
// or for its context to end, and reports who applied the operation, who
// refused it and who did not answer. Any member may request an operation:
// holding a cluster secret is what makes a node a member.

// DefaultKeyringTimeout bounds the wait for the members' answers to a
// keyring operation whose context has no deadline.
const DefaultKeyringTimeout = 10 * time.Second

// keyQueueLen bounds the keyring requests waiting to be applied; requests
// beyond it are dropped and counted (Stats.KeyringRefused).
const keyQueueLen = 64

// Keyring operations on the wire.
const (
	keyOpList    = "list"
	keyOpInstall = "install"
	keyOpUse     = "use"
	keyOpRemove  = "remove"
	keyOpReply   = "reply"
)

// keyMessage is a keyring request (broadcast) or its answer (direct).
type keyMessage struct {
	Op  string `json:"op"`
	ID  uint64 `json:"id"`
	Key []byte `json:"key,omitempty"`
	// Answers only.
	Error string   `json:"error,omitempty"`
	Keys  [][]byte `json:"keys,omitempty"` // the node's keys, primary first
}

// decodeKeyMessage decodes and checks a keyring message from a peer.
func decodeKeyMessage(data []byte) (keyMessage, error) {
	var m keyMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return keyMessage{}, err
	}
	switch m.Op {
	case keyOpList, keyOpReply:
	case keyOpInstall, keyOpUse, keyOpRemove:
		if len(m.Key) != SecretLen {
			return keyMessage{}, fmt.Errorf("%s: key is %d bytes, want %d", m.Op, len(m.Key), SecretLen)
		}
	default:
		return keyMessage{}, fmt.Errorf("unknown operation %q", m.Op)
	}
	if len(m.Keys) > tcp.MaxKeys || len(m.Error) > 1024 {
		return keyMessage{}, errors.New("answer over the limits")
	}
	for _, k := range m.Keys {
		if len(k) != SecretLen {
			return keyMessage{}, fmt.Errorf("answer holds a key of %d bytes", len(k))
		}
	}
	return m, nil
}

// KeyringResponse is the outcome of a cluster-wide keyring operation.
type KeyringResponse struct {
	// Members is the number of members asked, this node included: the live
	// members it knew when the operation started.
	Members int `json:"members"`
	// Applied lists the members that applied the operation (for a list,
	// that answered), sorted by ID.
	Applied []Member `json:"applied"`
	// Failed lists the members that refused it, with their reason.
	Failed []KeyringFailure `json:"failed"`
	// NoAnswer lists the members asked that did not answer in time.
	NoAnswer []Member `json:"no_answer"`
	// Keys counts, for each key (in its printable form), the members that
	// hold it; Primary those that use it as their primary key. They are
	// filled by every operation, from the answers.
	Keys    map[string]int `json:"keys"`
	Primary map[string]int `json:"primary"`
}

// Complete reports whether every member asked applied the operation.
func (r KeyringResponse) Complete() bool {
	return len(r.Failed) == 0 && len(r.NoAnswer) == 0 && len(r.Applied) >= r.Members
}

// KeyringFailure is a member that refused a keyring operation.
type KeyringFailure struct {
	Member Member `json:"member"`
	Error  string `json:"error"`
}

// keyNetwork is what the keyring operations need of a node: the Broadcaster
// and the DHT each provide it.
type keyNetwork interface {
	self() Member
	// members returns the members to ask, this node included.
	members(ctx context.Context) ([]Member, error)
	// broadcast sends a request to every member.
	broadcast(ctx context.Context, data []byte) error
	// answer sends an answer to the requester.
	answer(ctx context.Context, to peer.Info, data []byte) error
}

// keyRequest is a request from a peer waiting to be applied.
type keyRequest struct {
	from peer.Info
	data []byte
}

// keyService runs the keyring operations of a node.
type keyService struct {
	net     keyNetwork
	ring    *tcp.Keyring // nil: the transport has no keyring
	dataDir string       // where the keyring is saved ("" : not saved)
	logger  *slog.Logger

	requests chan keyRequest // broadcast requests from peers, for worker
	refused  atomic.Uint64   // malformed messages and requests dropped on a full queue

	refusalLog *ratelog.Warner // refusals, at most one line per keyRefusalLogInterval

	mu      sync.Mutex // guards pending and applyMu's users' order
	pending map[uint64]chan keyReply

	applyMu sync.Mutex // one operation applied and saved at a time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// keyReply is one member's answer.
type keyReply struct {
	from Member
	msg  keyMessage
}

func newKeyService(net keyNetwork, tr transport.Transport, dataDir string, logger *slog.Logger) *keyService {
	s := &keyService{net: net, dataDir: dataDir, logger: logger, requests: make(chan keyRequest, keyQueueLen), pending: map[uint64]chan keyReply{},
		refusalLog: ratelog.New(logger, time.Now, keyRefusalLogInterval, "keyring message refused")}
	if keyed, ok := tr.(interface{ Keyring() *tcp.Keyring }); ok {
		s.ring = keyed.Keyring()
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.worker()
	return s
}

// close stops the worker and waits for it.
func (s *keyService) close() {
	s.cancel()
	s.wg.Wait()
}

// keyRefusalLogInterval is the least time between two log lines about
// refused keyring messages, so that a member cannot fill the disk through
// our logs; every refusal is counted.
const keyRefusalLogInterval = 10 * time.Second

// refuse counts a refused message and logs it unless a refusal was logged
// lately.
func (s *keyService) refuse(msg string, from peer.Info, err error) {
	s.refused.Add(1)
	s.refusalLog.Warn("what", msg, "peer", from.ID.Short(), "err", err)
}

// deliver takes a keyring message from a peer: a request when broadcast,
// an answer when direct. It never blocks (the Broadcaster calls it on its
// runtime's loop goroutine).
func (s *keyService) deliver(from peer.Info, direct bool, data []byte) {
	if !direct {
		select {
		case s.requests <- keyRequest{from: from, data: data}:
		default:
			s.refuse("keyring request dropped: queue full", from, nil)
		}
		return
	}
	m, err := decodeKeyMessage(data)
	if err == nil && m.Op != keyOpReply {
		err = fmt.Errorf("a %s request sent directly", m.Op)
	}
	if err != nil {
		s.refuse("keyring answer refused", from, err)
		return
	}
	s.mu.Lock()
	ch := s.pending[m.ID]
	s.mu.Unlock()
	if ch == nil {
		return // an answer after the wait ended
	}
	select {
	case ch <- keyReply{from: Member{ID: from.ID, Addr: from.Addr}, msg: m}:
	default: // more answers than members asked: a duplicate
	}
}

// worker applies the requests of peers and answers them.
func (s *keyService) worker() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case req := <-s.requests:
			m, err := decodeKeyMessage(req.data)
			if err == nil && m.Op == keyOpReply {
				err = errors.New("an answer broadcast")
			}
			if err != nil {
				s.refuse("keyring request refused", req.from, err)
				continue
			}
			answer := s.apply(m)
			data, _ := json.Marshal(answer)
			ctx, cancel := context.WithTimeout(s.ctx, DefaultKeyringTimeout)
			if err := s.net.answer(ctx, req.from, data); err != nil && s.ctx.Err() == nil {
				s.logger.Warn("keyring answer not sent", "peer", req.from.ID.Short(), "err", err)
			}
			cancel()
		}
	}
}

// apply applies one operation to this node's keyring, saves it, and returns
// the answer.
func (s *keyService) apply(m keyMessage) keyMessage {
	answer := keyMessage{Op: keyOpReply, ID: m.ID}
	if s.ring == nil {
		answer.Error = ErrNoKeyring.Error()
		return answer
	}
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	before := s.ring.Keys()
	var err error
	switch m.Op {
	case keyOpInstall:
		err = s.ring.Install(m.Key)
	case keyOpUse:
		err = s.ring.Use(m.Key)
	case keyOpRemove:
		err = s.ring.Remove(m.Key)
	}
	answer.Keys = s.ring.Keys()
	// Save only a change: a repeated request costs no disk write.
	changed := err == nil && !slices.EqualFunc(before, answer.Keys, bytes.Equal)
	if changed && s.dataDir != "" {
		err = saveKeyring(s.dataDir, s.ring)
	}
	switch {
	case err != nil:
		answer.Error = err.Error()
		s.refusalLog.Warn("what", "keyring operation refused", "op", m.Op, "err", err)
	case changed:
		s.logger.Info("keyring changed", "op", m.Op, "keys", len(answer.Keys))
	}
	return answer
}

// run applies an operation here and on every member and gathers the
// answers.
func (s *keyService) run(ctx context.Context, op string, key []byte) (KeyringResponse, error) {
	if s.ring == nil {
		return KeyringResponse{}, ErrNoKeyring
	}
	if op != keyOpList && len(key) != SecretLen {
		return KeyringResponse{}, fmt.Errorf("p2p: key is %d bytes, want %d", len(key), SecretLen)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultKeyringTimeout)
		defer cancel()
	}
	members, err := s.net.members(ctx)
	if err != nil {
		return KeyringResponse{}, err
	}
	req := keyMessage{Op: op, ID: rand.Uint64(), Key: key}
	replies := make(chan keyReply, len(members)+1)
	s.mu.Lock()
	s.pending[req.ID] = replies
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, req.ID)
		s.mu.Unlock()
	}()

	self := s.net.self()
	answers := map[peer.ID]keyReply{self.ID: {from: self, msg: s.apply(req)}}
	data, _ := json.Marshal(req)
	if len(members) > 1 {
		if err := s.net.broadcast(ctx, data); err != nil {
			return KeyringResponse{}, err
		}
	}
	waiting := map[peer.ID]Member{}
	for _, m := range members {
		if m.ID != self.ID {
			waiting[m.ID] = m
		}
	}
wait:
	for len(waiting) > 0 {
		select {
		case r := <-replies:
			answers[r.from.ID] = r
			delete(waiting, r.from.ID)
		case <-ctx.Done():
			break wait
		}
	}
	return summarize(len(members), answers, waiting), nil
}

func summarize(asked int, answers map[peer.ID]keyReply, waiting map[peer.ID]Member) KeyringResponse {
	resp := KeyringResponse{Members: asked, Applied: []Member{}, Failed: []KeyringFailure{}, NoAnswer: []Member{}, Keys: map[string]int{}, Primary: map[string]int{}}
	for _, r := range answers {
		if r.msg.Error != "" {
			resp.Failed = append(resp.Failed, KeyringFailure{Member: r.from, Error: r.msg.Error})
		} else {
			resp.Applied = append(resp.Applied, r.from)
		}
		for i, k := range r.msg.Keys {
			resp.Keys[FormatSecret(k)]++
			if i == 0 {
				resp.Primary[FormatSecret(k)]++
			}
		}
	}
	for _, m := range waiting {
		resp.NoAnswer = append(resp.NoAnswer, m)
	}
	byID := func(x, y Member) int { return x.ID.Compare(y.ID) }
	slices.SortFunc(resp.Applied, byID)
	slices.SortFunc(resp.NoAnswer, byID)
	sort.Slice(resp.Failed, func(i, j int) bool { return resp.Failed[i].Member.ID.Compare(resp.Failed[j].Member.ID) < 0 })
	return resp
}

// broadcasterKeys is the Broadcaster's keyNetwork: requests are broadcast
// under topicKeys, answers sent directly under it.
type broadcasterKeys struct{ b *Broadcaster }

func (n broadcasterKeys) self() Member { return Member{ID: n.b.ID(), Addr: n.b.Addr()} }

func (n broadcasterKeys) members(ctx context.Context) ([]Member, error) { return n.b.Members(ctx) }

func (n broadcasterKeys) broadcast(ctx context.Context, data []byte) error {
	return n.b.step(ctx, gossip.Broadcast{Topic: topicKeys, Payload: data})
}

func (n broadcasterKeys) answer(ctx context.Context, to peer.Info, data []byte) error {
	return n.b.step(ctx, gossip.Direct{To: to, Topic: topicKeys, Payload: data})
}

// dhtKeyMagic prefixes the DHT's keyring messages, which share the
// application's channel: application data is JSON, which never starts with
// a NUL byte, so no message of a reactor can be taken for one.
var dhtKeyMagic = []byte("\x00p2p keyring\x00")

// dhtKeys is the DHT's keyNetwork: requests travel by the DHT's broadcast
// over the routing tables and reach every node; the members asked are the
// ones this node knows (itself and its routing table).
type dhtKeys struct{ d *DHT }

func (n dhtKeys) self() Member { return Member{ID: n.d.ID(), Addr: n.d.Addr()} }

func (n dhtKeys) members(ctx context.Context) ([]Member, error) { return n.d.Members(ctx) }

func (n dhtKeys) broadcast(ctx context.Context, data []byte) error {
	return n.d.broadcast(ctx, append(slices.Clip(dhtKeyMagic), data...))
}

func (n dhtKeys) answer(ctx context.Context, to peer.Info, data []byte) error {
	return n.d.sendDirect(ctx, to, append(slices.Clip(dhtKeyMagic), data...))
}

// ListKeys asks every member for its keys: KeyringResponse.Keys counts the
// members holding each key and Primary those using it for their outgoing
// handshakes. It waits for every member's answer or for ctx to end
// (DefaultKeyringTimeout when ctx has no deadline).
func (b *Broadcaster) ListKeys(ctx context.Context) (KeyringResponse, error) {
	return b.keys.run(ctx, keyOpList, nil)
}

// InstallKey installs a cluster secret on every member: handshakes with it
// are accepted from then on, while the primary key stays in use for
// outgoing handshakes. It is the first step of a rotation: install the new
// key, use it, then remove the old one, checking each step's response
// (KeyringResponse.Complete) before the next.
func (b *Broadcaster) InstallKey(ctx context.Context, key []byte) (KeyringResponse, error) {
	return b.keys.run(ctx, keyOpInstall, key)
}

// UseKey makes an installed key the primary one on every member.
func (b *Broadcaster) UseKey(ctx context.Context, key []byte) (KeyringResponse, error) {
	return b.keys.run(ctx, keyOpUse, key)
}

// RemoveKey removes a key from every member: handshakes with it are refused
// from then on (counted as bad secret); links already open stay. Each
// member refuses to remove its primary key.
func (b *Broadcaster) RemoveKey(ctx context.Context, key []byte) (KeyringResponse, error) {
	return b.keys.run(ctx, keyOpRemove, key)
}

// Keyring returns this node's keyring (nil when its transport has none).
// Changes made through it apply to this node alone and are not saved.
func (b *Broadcaster) Keyring() *tcp.Keyring { return b.keys.ring }

// ListKeys asks every node this node knows (itself and its routing table)
// for its keys; the request reaches every node along the routing tables,
// and answers from nodes beyond the routing table are counted too. See
// Broadcaster.ListKeys.
func (d *DHT) ListKeys(ctx context.Context) (KeyringResponse, error) {
	return d.keys.run(ctx, keyOpList, nil)
}

// InstallKey installs a cluster secret on every node: see
// Broadcaster.InstallKey. The nodes asked are those this node knows.
func (d *DHT) InstallKey(ctx context.Context, key []byte) (KeyringResponse, error) {
	return d.keys.run(ctx, keyOpInstall, key)
}

// UseKey makes an installed key the primary one on every node.
func (d *DHT) UseKey(ctx context.Context, key []byte) (KeyringResponse, error) {
	return d.keys.run(ctx, keyOpUse, key)
}

// RemoveKey removes a key from every node; each refuses to remove its
// primary key.
func (d *DHT) RemoveKey(ctx context.Context, key []byte) (KeyringResponse, error) {
	return d.keys.run(ctx, keyOpRemove, key)
}

// Keyring returns this node's keyring (nil when its transport has none).
// Changes made through it apply to this node alone and are not saved.
func (d *DHT) Keyring() *tcp.Keyring { return d.keys.ring }
