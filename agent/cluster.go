package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/p2p-go/p2p"
	"github.com/p2p-go/p2p/peer"
)

// The cluster view (GET /v1/cluster, the page at /) shows what every member
// holds: its overlay links, its store digest and its counters. No member
// can read another's memory, so the agent asks: it sends each live member a
// direct message {"_p2p_agent": {"op": "state?", "req": ID}} through the
// overlay, and each agent answers with Message.Reply, {"_p2p_agent": {"op":
// "state", "req": ID, "state": {...}}}. The agent consumes these messages
// itself: they never reach the event stream, handlers or reactors of an
// agent. (A program that embeds the library and is a member receives the
// question as an ordinary direct message, and may ignore it.)
//
// Everything is bounded: one gathering at a time, its result reused for
// clusterCacheFor; at most clusterMaxAsked members asked, each answer
// awaited at most clusterTimeout; answers are accepted only for a pending
// question and from the member asked, and clamped; questions from others
// are answered at most stateAnswerRate per second (refusals counted).

// agentMessageKey is the JSON key that marks the agent's own messages.
const agentMessageKey = "_p2p_agent"

const (
	// clusterTimeout bounds the wait for the members' answers.
	clusterTimeout = 2 * time.Second
	// clusterCacheFor is how long one gathering serves later requests.
	clusterCacheFor = time.Second
	// clusterMaxAsked bounds the members asked by one gathering.
	clusterMaxAsked = 128
	// clusterMaxNeighbors bounds the neighbours kept from one answer.
	clusterMaxNeighbors = 64
	// stateAnswerRate and stateAnswerBurst bound the questions answered.
	stateAnswerRate  = 20
	stateAnswerBurst = 40
	// maxMemberStates bounds the members remembered after they failed or
	// left.
	maxMemberStates = 1024
)

// Member states in ClusterMember.State.
const (
	StateAlive  = "alive"
	StateFailed = "failed"
	StateLeft   = "left"
)

type agentMessage struct {
	Op    string     `json:"op"`
	Req   string     `json:"req"`
	State *NodeState `json:"state,omitempty"`
}

type agentEnvelope struct {
	Agent *agentMessage `json:"_p2p_agent"`
}

// NodeState is what one member reports about itself to the cluster view.
type NodeState struct {
	ID         string   `json:"id"`
	Neighbors  []string `json:"neighbors"`
	Digest     string   `json:"digest"`
	Keys       int      `json:"keys"`
	Tombstones int      `json:"tombstones"`
	Counters   Counters `json:"counters"`
	// Error is set by the gathering agent when the member did not answer.
	Error string `json:"error,omitempty"`
}

// Counters are the counters of one member that an operator watches.
type Counters struct {
	// Delivered counts broadcasts handed to the application.
	Delivered   uint64 `json:"delivered"`
	MessagesIn  uint64 `json:"messages_in"`
	MessagesOut uint64 `json:"messages_out"`
	// Drops: reactor queues, send queues, handler queue, slow API streams.
	Drops uint64 `json:"drops"`
	// Refusals: handshakes, malformed frames, invalid records, state
	// questions over the rate.
	Refusals uint64 `json:"refusals"`
}

// ClusterMember is a member in the cluster view: a live one, or one that
// this agent saw fail or leave.
type ClusterMember struct {
	Member
	// State is alive, failed or left.
	State string `json:"state"`
}

// ClusterView is the body of GET /v1/cluster.
type ClusterView struct {
	Self    string          `json:"self"`
	Members []ClusterMember `json:"members"`
	// Nodes holds each live member's answer, by ID.
	Nodes map[string]NodeState `json:"nodes"`
	// Converged is true when every live member answered with one digest.
	Converged bool   `json:"converged"`
	Time      string `json:"time"`
}

// clusterState is the agent's part of the cluster view.
type clusterState struct {
	gatherMu sync.Mutex // one gathering at a time; guards cached, cachedAt
	cached   ClusterView
	cachedAt time.Time

	mu        sync.Mutex // guards pending, members, tokens, refilled
	pending   map[string]pendingQuestion
	members   map[string]memberState // last membership event by ID
	tokens    float64
	refilled  time.Time
	refusedNo uint64
}

type pendingQuestion struct {
	to      string
	answers chan<- NodeState
}

type memberState struct {
	kind string
	addr string
}

// handleAgentMessage reports whether m is one of the agent's own messages
// and, if so, handles it (on the reactor goroutine).
func (a *Agent) handleAgentMessage(m *p2p.Message) bool {
	if !m.Direct {
		return false
	}
	msg, ok := decodeAgentMessage(m.Data)
	if !ok {
		return false
	}
	switch msg.Op {
	case "state?":
		if !a.allowStateAnswer() {
			return true
		}
		ctx, cancel := context.WithTimeout(a.ctx, clusterTimeout)
		defer cancel()
		st, err := a.nodeState(ctx)
		if err != nil {
			return true
		}
		_ = m.Reply(ctx, agentEnvelope{Agent: &agentMessage{Op: "state", Req: msg.Req, State: &st}})
	case "state":
		c := &a.cluster
		c.mu.Lock()
		q, ok := c.pending[msg.Req]
		if ok && q.to == m.From.String() && msg.State != nil {
			delete(c.pending, msg.Req)
		} else {
			ok = false
			c.refusedNo++
		}
		c.mu.Unlock()
		if ok {
			q.answers <- clampState(*msg.State, q.to) // buffered for every question
		}
	}
	return true
}

// decodeAgentMessage decodes one of the agent's own messages; ok is false
// for any other message.
func decodeAgentMessage(data []byte) (msg *agentMessage, ok bool) {
	if !bytes.Contains(data, []byte(agentMessageKey)) {
		return nil, false
	}
	var env agentEnvelope
	if json.Unmarshal(data, &env) != nil || env.Agent == nil {
		return nil, false
	}
	return env.Agent, true
}

// clampState keeps of a member's answer what the view can trust to show:
// the ID is the member asked, whatever the answer claims; neighbours are
// valid node IDs, at most clusterMaxNeighbors; the digest is at most 64
// characters; the error is the gatherer's to set.
func clampState(st NodeState, asked string) NodeState {
	st.ID = asked
	st.Error = ""
	neighbors := make([]string, 0, min(len(st.Neighbors), clusterMaxNeighbors))
	for _, n := range st.Neighbors {
		if len(neighbors) == clusterMaxNeighbors {
			break
		}
		if id, err := peer.ParseID(n); err == nil && id.String() == n {
			neighbors = append(neighbors, n)
		}
	}
	st.Neighbors = neighbors
	if len(st.Digest) > 64 {
		st.Digest = st.Digest[:64]
	}
	st.Keys, st.Tombstones = max(st.Keys, 0), max(st.Tombstones, 0)
	return st
}

// allowStateAnswer takes a token of the answer rate limiter.
func (a *Agent) allowStateAnswer() bool {
	c := &a.cluster
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.refilled.IsZero() {
		c.tokens = stateAnswerBurst
	} else {
		c.tokens = min(stateAnswerBurst, c.tokens+now.Sub(c.refilled).Seconds()*stateAnswerRate)
	}
	c.refilled = now
	if c.tokens < 1 {
		c.refusedNo++
		return false
	}
	c.tokens--
	return true
}

// stateRefusals counts the questions and answers refused.
func (a *Agent) stateRefusals() uint64 {
	a.cluster.mu.Lock()
	defer a.cluster.mu.Unlock()
	return a.cluster.refusedNo
}

// noteMember remembers the last membership event of a member.
func (a *Agent) noteMember(kind, id, addr string) {
	c := &a.cluster
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.members == nil {
		c.members = map[string]memberState{}
	}
	if len(c.members) >= maxMemberStates {
		for k, v := range c.members {
			if v.kind != "join" {
				delete(c.members, k)
			}
		}
	}
	c.members[id] = memberState{kind: kind, addr: addr}
}

// nodeState reports this node's part of the cluster view.
func (a *Agent) nodeState(ctx context.Context) (NodeState, error) {
	neighbors, err := a.node.Neighbors(ctx)
	if err != nil {
		return NodeState{}, err
	}
	st, _, err := a.node.Store().Stats(ctx)
	if err != nil {
		return NodeState{}, err
	}
	digest, err := a.node.Store().Digest(ctx)
	if err != nil {
		return NodeState{}, err
	}
	stats := a.node.Stats()
	out := NodeState{
		ID: a.node.ID().String(), Neighbors: make([]string, 0, len(neighbors)),
		Digest: hex.EncodeToString(digest[:]), Keys: st.Keys, Tombstones: st.Tombstones,
	}
	for _, nb := range neighbors {
		out.Neighbors = append(out.Neighbors, nb.ID.String())
	}
	slices.Sort(out.Neighbors)
	out.Counters = Counters{
		Delivered:   stats.Plumtree.Delivered,
		MessagesIn:  stats.Runtime.MessagesIn,
		MessagesOut: stats.Runtime.MessagesOut,
		Drops:       stats.ReactorDrops + stats.Runtime.Dropped + a.handlers.dropped.Load() + a.streamDrops.Load(),
		Refusals:    stats.Runtime.MalformedIn + st.RecordsRejected + a.stateRefusals(),
	}
	if a.tr != nil {
		out.Counters.Refusals += a.tr.Stats().HandshakesRefused
	}
	return out, nil
}

// Cluster gathers the cluster view: the members, live and gone, and every
// live member's answer (see NodeState).
func (a *Agent) Cluster(ctx context.Context) (ClusterView, error) {
	c := &a.cluster
	c.gatherMu.Lock()
	defer c.gatherMu.Unlock()
	if !c.cachedAt.IsZero() && time.Since(c.cachedAt) < clusterCacheFor {
		return c.cached, nil
	}
	members, err := a.Members(ctx)
	if err != nil {
		return ClusterView{}, err
	}
	self, err := a.nodeState(ctx)
	if err != nil {
		return ClusterView{}, err
	}
	view := ClusterView{Self: self.ID, Nodes: map[string]NodeState{self.ID: self}, Time: time.Now().UTC().Format(time.RFC3339)}
	live := map[string]bool{}
	for _, m := range members {
		live[m.ID] = true
		view.Members = append(view.Members, ClusterMember{Member: m, State: StateAlive})
	}
	// Ask the others, all at once.
	answers := make(chan NodeState, len(members))
	asked := map[string]string{} // req -> member ID
	for _, m := range members {
		if m.Self || len(asked) >= clusterMaxAsked {
			continue
		}
		req := newRequestID()
		c.mu.Lock()
		if c.pending == nil {
			c.pending = map[string]pendingQuestion{}
		}
		c.pending[req] = pendingQuestion{to: m.ID, answers: answers}
		c.mu.Unlock()
		asked[req] = m.ID
		id, err := peer.ParseID(m.ID)
		if err == nil {
			err = a.node.SendTo(ctx, p2p.Member{ID: id, Addr: m.Addr}, agentEnvelope{Agent: &agentMessage{Op: "state?", Req: req}})
		}
		if err != nil {
			view.Nodes[m.ID] = NodeState{ID: m.ID, Error: "not asked: " + err.Error()}
		}
	}
	timer := time.NewTimer(clusterTimeout)
	defer timer.Stop()
	for waiting := len(asked); waiting > 0; waiting-- {
		select {
		case st := <-answers:
			view.Nodes[st.ID] = st
			continue
		case <-timer.C:
		case <-ctx.Done():
		}
		break
	}
	c.mu.Lock()
	for req, id := range asked {
		delete(c.pending, req)
		if _, ok := view.Nodes[id]; !ok {
			view.Nodes[id] = NodeState{ID: id, Error: "no answer within " + clusterTimeout.String()}
		}
	}
	gone := make([]ClusterMember, 0)
	for id, ms := range c.members {
		if live[id] || ms.kind == "join" {
			continue
		}
		state := StateFailed
		if ms.kind == "leave" {
			state = StateLeft
		}
		gone = append(gone, ClusterMember{Member: Member{ID: id, Addr: ms.addr, Name: a.nameOf(id)}, State: state})
	}
	c.mu.Unlock()
	slices.SortFunc(gone, func(x, y ClusterMember) int { return strings.Compare(x.Name+x.ID, y.Name+y.ID) })
	view.Members = append(view.Members, gone...)
	digests := map[string]bool{}
	answered := 0
	for _, st := range view.Nodes {
		if st.Error == "" {
			digests[st.Digest] = true
			answered++
		}
	}
	view.Converged = answered == len(members) && len(digests) == 1
	c.cached, c.cachedAt = view, time.Now()
	return view, nil
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (a *Agent) handleCluster(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	view, err := a.Cluster(ctx)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, view)
	return nil
}
