package agent

import (
	"encoding/json"

	"github.com/p2p-go/p2p"
)

// InternalPrefix starts the store keys the agent keeps for itself. The
// API's listing and watch, `p2p kv ls` and kv handlers leave them out unless
// asked (?internal=true, --all, a handler PREFIX under InternalPrefix).
const InternalPrefix = "_agent/"

// NodesPrefix is the store prefix under which every agent publishes its
// NodeInfo, as JSON, at NodesPrefix + its node ID.
const NodesPrefix = "_agent/nodes/"

// NodeInfo is what an agent publishes about itself in the store.
type NodeInfo struct {
	ID   string            `json:"id"`
	Name string            `json:"name"`
	Addr string            `json:"addr"`
	Tags map[string]string `json:"tags,omitempty"`
}

// Member is one entry of GET /v1/members: a live member and what it
// published about itself (Name and Tags are empty until its NodeInfo has
// reached this agent).
type Member struct {
	ID   string            `json:"id"`
	Addr string            `json:"addr"`
	Name string            `json:"name,omitempty"`
	Tags map[string]string `json:"tags,omitempty"`
	// Self marks this agent's own node; Neighbor the members it has an
	// open overlay link to.
	Self     bool `json:"self,omitempty"`
	Neighbor bool `json:"neighbor,omitempty"`
}

// MembersResponse is the body of GET /v1/members.
type MembersResponse struct {
	Members []Member `json:"members"`
}

// Info is the body of GET /v1/info.
type Info struct {
	ID   string            `json:"id"`
	Name string            `json:"name"`
	Addr string            `json:"addr"`
	API  string            `json:"api"`
	Tags map[string]string `json:"tags,omitempty"`
	// Joined is true once the node is linked to the network (see
	// p2p.Broadcaster.Joined); a node that started a network is joined
	// once another node has joined it.
	Joined bool `json:"joined"`
	// Status says where the node stands, in words that hold for every
	// node: StatusLinked, StatusAlone (it started a network that no other
	// node has joined yet: "joined" is false, and nothing is wrong),
	// StatusJoining or StatusIsolated.
	Status        string    `json:"status"`
	Members       int       `json:"members"`
	Neighbors     []string  `json:"neighbors"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	Store         StoreInfo `json:"store"`
	Stats         StatsInfo `json:"stats"`
}

// Values of Info.Status.
const (
	// StatusLinked: the node has open links to other members.
	StatusLinked = "linked"
	// StatusAlone: the node started a new network (no --join) and is its
	// only member so far; it is linked as soon as another node joins.
	StatusAlone = "alone"
	// StatusJoining: the node was given --join addresses and none has
	// answered yet; the overlay retries every second.
	StatusJoining = "joining"
	// StatusIsolated: the node was linked but has no open link now; the
	// overlay is repairing (or every other member is gone).
	StatusIsolated = "isolated"
)

// StoreInfo describes the replicated store in Info.
type StoreInfo struct {
	Keys              int    `json:"keys"`
	Tombstones        int    `json:"tombstones"`
	Digest            string `json:"digest"`
	AntiEntropyRounds uint64 `json:"anti_entropy_rounds"`
}

// StatsInfo holds the node's counters in Info.
type StatsInfo struct {
	MessagesIn        uint64 `json:"messages_in"`
	MessagesOut       uint64 `json:"messages_out"`
	BytesIn           uint64 `json:"bytes_in"`
	BytesOut          uint64 `json:"bytes_out"`
	HandshakesRefused uint64 `json:"handshakes_refused"`
	ReactorDrops      uint64 `json:"reactor_drops"`
}

// Record is a key of the store as the API shows it. Value is the raw value,
// base64 in JSON (as encoding/json writes []byte).
type Record struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
	// Version is the hybrid logical clock timestamp of the write
	// ("RFC3339.logical"), Writer the ID of the node that made it.
	Version string `json:"version"`
	Writer  string `json:"writer"`
	Deleted bool   `json:"deleted,omitempty"`
}

// ListResponse is the body of GET /v1/kv?prefix=.
type ListResponse struct {
	Records []Record `json:"records"`
}

func recordOf(r p2p.Record) Record {
	return Record{Key: r.Key, Value: r.Value, Version: r.Version.Time.String(), Writer: r.Version.Writer.String(), Deleted: r.Deleted}
}

// Event is one item of the GET /v1/events stream. Type "message" carries a
// received message (From, FromAddr, Direct, Hops, Data); type "member" a
// membership change (Kind join, leave or fail; ID, Addr); type "error" ends
// the stream (Error says why, e.g. the client fell too far behind). Name
// is the name that the node (From, or ID) published, when this agent has
// it.
type Event struct {
	Type     string          `json:"type"`
	From     string          `json:"from,omitempty"`
	Name     string          `json:"name,omitempty"`
	FromAddr string          `json:"from_addr,omitempty"`
	Direct   bool            `json:"direct,omitempty"`
	Hops     int             `json:"hops,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
	Kind     string          `json:"kind,omitempty"`
	ID       string          `json:"id,omitempty"`
	Addr     string          `json:"addr,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// WatchEvent is one item of the GET /v1/kv-watch stream: "put" and
// "delete" carry a Record (Initial for the records present when the watch
// started), "synced" follows the initial records, "error" ends the stream.
type WatchEvent struct {
	Type    string  `json:"type"`
	Initial bool    `json:"initial,omitempty"`
	Record  *Record `json:"record,omitempty"`
	Error   string  `json:"error,omitempty"`
}

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is a stable code and a human message.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes of the API; they are stable.
const (
	CodeBadRequest       = "bad_request"
	CodeInvalidJSON      = "invalid_json"
	CodeNotFound         = "not_found"
	CodeTooLarge         = "too_large"
	CodeUnauthorized     = "unauthorized"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeUnavailable      = "unavailable"
	CodeInternal         = "internal"
	// CodeRequestTimeout: the request's body did not arrive in time.
	CodeRequestTimeout = "request_timeout"
	// CodeForbidden: the request's Host or Origin is not this agent's (see
	// docs/api.md, "Browsers").
	CodeForbidden = "forbidden"
	// CodeUnsupportedMediaType: a JSON body sent without Content-Type:
	// application/json (status 403, a browser protection).
	CodeUnsupportedMediaType = "unsupported_media_type"
)
