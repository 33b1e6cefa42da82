package agent

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/p2p-go/p2p"
	"github.com/p2p-go/p2p/kv"
)

// apiError is an error with its HTTP status and stable code.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status, data = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"encode response"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, ErrorBody{Error: ErrorDetail{Code: e.code, Message: e.message}})
}

// classify maps an error of the library to an API error.
func classify(err error) *apiError {
	var ae *apiError
	var tooBig *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &netErr) && netErr.Timeout():
		return errorf(http.StatusRequestTimeout, CodeRequestTimeout, "request body not received in time: %v", err)
	case errors.As(err, &tooBig):
		return errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body over %d bytes", tooBig.Limit)
	case errors.Is(err, p2p.ErrNotFound):
		return errorf(http.StatusNotFound, CodeNotFound, "%v", err)
	case errors.Is(err, p2p.ErrTooLarge), errors.Is(err, kv.ErrValueTooLarge), errors.Is(err, kv.ErrTooManyKeys):
		return errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "%v", err)
	case errors.Is(err, kv.ErrInvalidKey), errors.Is(err, kv.ErrKeyTooLong), errors.Is(err, kv.ErrReservedKey):
		return errorf(http.StatusBadRequest, CodeBadRequest, "%v", err)
	case errors.Is(err, p2p.ErrNoNeighbors):
		return errorf(http.StatusServiceUnavailable, CodeUnavailable, "%v", err)
	case errors.Is(err, p2p.ErrClosed), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return errorf(http.StatusServiceUnavailable, CodeUnavailable, "%v", err)
	}
	return errorf(http.StatusInternalServerError, CodeInternal, "%v", err)
}

// handlerFunc is an API handler that returns its error.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// apiTimeout bounds the node calls of one non-streaming request.
const apiTimeout = 10 * time.Second

// routes builds the API's handler.
func (a *Agent) routes() http.Handler {
	mux := http.NewServeMux()
	wrap := func(fn handlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if err := fn(w, r); err != nil {
				e := classify(err)
				if e.code == CodeInternal {
					a.logger.Error("api: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
				}
				writeError(w, e)
			}
		}
	}
	// route registers one path with its methods; other methods get a JSON
	// 405 (the method-less pattern is less specific than the others).
	route := func(path string, methods map[string]handlerFunc) {
		allowed := make([]string, 0, len(methods))
		for method, fn := range methods {
			mux.Handle(method+" "+path, wrap(fn))
			allowed = append(allowed, method)
			if method == http.MethodGet {
				allowed = append(allowed, http.MethodHead)
			}
		}
		sort.Strings(allowed)
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeError(w, errorf(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "%s %s: allowed methods are %s", r.Method, r.URL.Path, strings.Join(allowed, ", ")))
		})
	}
	route("/v1/info", map[string]handlerFunc{http.MethodGet: a.handleInfo})
	route("/v1/members", map[string]handlerFunc{http.MethodGet: a.handleMembers})
	route("/v1/cluster", map[string]handlerFunc{http.MethodGet: a.handleCluster})
	route("/v1/send", map[string]handlerFunc{http.MethodPost: a.handleSend(false)})
	route("/v1/send-one", map[string]handlerFunc{http.MethodPost: a.handleSend(true)})
	route("/v1/events", map[string]handlerFunc{http.MethodGet: a.handleEvents})
	route("/v1/kv", map[string]handlerFunc{http.MethodGet: a.handleList})
	route("/v1/kv/{key...}", map[string]handlerFunc{
		http.MethodGet: a.handleGet, http.MethodPut: a.handlePut, http.MethodDelete: a.handleDelete,
	})
	route("/v1/kv-watch", map[string]handlerFunc{http.MethodGet: a.handleWatch})
	route("/v1/revocations", map[string]handlerFunc{http.MethodGet: a.handleRevocations, http.MethodPost: a.handleRevoke})
	route("/v1/keys", map[string]handlerFunc{http.MethodGet: a.handleKeysList})
	route("/v1/keys/install", map[string]handlerFunc{http.MethodPost: a.handleKeyOp((*p2p.Broadcaster).InstallKey)})
	route("/v1/keys/use", map[string]handlerFunc{http.MethodPost: a.handleKeyOp((*p2p.Broadcaster).UseKey)})
	route("/v1/keys/remove", map[string]handlerFunc{http.MethodPost: a.handleKeyOp((*p2p.Broadcaster).RemoveKey)})
	metrics := a.metricsHandler()
	route("/metrics", map[string]handlerFunc{http.MethodGet: func(w http.ResponseWriter, r *http.Request) error {
		metrics.ServeHTTP(w, r)
		return nil
	}})
	page := pageHandler()
	mux.Handle("GET /{$}", page)
	mux.Handle("GET /ui/", page)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errorf(http.StatusNotFound, CodeNotFound, "no route %s %s (see docs/api.md)", r.Method, r.URL.Path))
	})
	return a.authenticate(mux)
}

// authenticate requires the bearer token on every request when one is set.
func (a *Agent) authenticate(next http.Handler) http.Handler {
	if a.cfg.APIToken == "" {
		return next
	}
	want := []byte(a.cfg.APIToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isPageRequest(r) { // the page's static files: see page.go
			next.ServeHTTP(w, r)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="p2p agent"`)
			writeError(w, errorf(http.StatusUnauthorized, CodeUnauthorized, "missing or wrong API token (send Authorization: Bearer <token>)"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *Agent) handleInfo(w http.ResponseWriter, r *http.Request) error {
	info, err := a.Info(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, info)
	return nil
}

// Info reports what GET /v1/info returns.
func (a *Agent) Info(ctx context.Context) (Info, error) {
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	members, err := a.node.Members(ctx)
	if err != nil {
		return Info{}, err
	}
	neighbors, err := a.node.Neighbors(ctx)
	if err != nil {
		return Info{}, err
	}
	st, _, err := a.node.Store().Stats(ctx)
	if err != nil {
		return Info{}, err
	}
	digest, err := a.node.Store().Digest(ctx)
	if err != nil {
		return Info{}, err
	}
	self := a.nodeInfo()
	info := Info{
		ID: self.ID, Name: self.Name, Addr: self.Addr, Tags: self.Tags, API: a.APIAddr(),
		Members: len(members), Neighbors: []string{}, UptimeSeconds: time.Since(a.started).Seconds(),
		Store: StoreInfo{Keys: st.Keys, Tombstones: st.Tombstones, Digest: hex.EncodeToString(digest[:]), AntiEntropyRounds: st.AntiEntropyRounds},
	}
	select {
	case <-a.node.Joined():
		info.Joined = true
	default:
	}
	info.Status = linkStatus(info.Joined, len(a.cfg.Join) > 0, len(neighbors), len(members))
	for _, n := range neighbors {
		info.Neighbors = append(info.Neighbors, n.ID.String())
	}
	stats := a.node.Stats()
	info.Stats = StatsInfo{
		MessagesIn: stats.Runtime.MessagesIn, MessagesOut: stats.Runtime.MessagesOut,
		BytesIn: stats.Runtime.BytesIn, BytesOut: stats.Runtime.BytesOut, ReactorDrops: stats.ReactorDrops,
	}
	if a.tr != nil {
		info.Stats.HandshakesRefused = a.tr.Stats().HandshakesRefused
	}
	return info, nil
}

// linkStatus says where a node stands in the network (see Info.Status).
func linkStatus(joined, hasContacts bool, neighbors, members int) string {
	switch {
	case neighbors > 0:
		return StatusLinked
	case joined:
		return StatusIsolated
	case hasContacts:
		return StatusJoining
	case members <= 1:
		return StatusAlone
	}
	return StatusIsolated
}

func (a *Agent) handleMembers(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	members, err := a.Members(ctx)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, MembersResponse{Members: members})
	return nil
}

// Members returns the live members with the names and tags they published,
// sorted by name then ID.
func (a *Agent) Members(ctx context.Context) ([]Member, error) {
	live, err := a.node.Members(ctx)
	if err != nil {
		return nil, err
	}
	neighbors, err := a.node.Neighbors(ctx)
	if err != nil {
		return nil, err
	}
	published, err := a.node.Store().List(ctx, NodesPrefix)
	if err != nil {
		return nil, err
	}
	infos := map[string]NodeInfo{}
	for _, rec := range published {
		var ni NodeInfo
		// Only the node itself may say who it is: the record's writer.
		if json.Unmarshal(rec.Value, &ni) == nil && NodesPrefix+ni.ID == rec.Key && rec.Version.Writer.String() == ni.ID {
			infos[ni.ID] = ni
		}
	}
	isNeighbor := map[string]bool{}
	for _, n := range neighbors {
		isNeighbor[n.ID.String()] = true
	}
	self := a.node.ID().String()
	out := make([]Member, 0, len(live))
	for _, m := range live {
		id := m.ID.String()
		ni := infos[id]
		out = append(out, Member{ID: id, Addr: m.Addr, Name: ni.Name, Tags: ni.Tags, Self: id == self, Neighbor: isNeighbor[id]})
	}
	slices.SortFunc(out, func(x, y Member) int {
		if c := strings.Compare(x.Name, y.Name); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	return out, nil
}

func (a *Agent) handleSend(one bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := a.requireJSON(r); err != nil {
			return err
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBody))
		if err != nil {
			return err
		}
		if len(strings.TrimSpace(string(body))) == 0 {
			return errorf(http.StatusBadRequest, CodeInvalidJSON, "empty body: send a JSON value")
		}
		if !json.Valid(body) {
			return errorf(http.StatusBadRequest, CodeInvalidJSON, "body is not valid JSON")
		}
		ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
		defer cancel()
		if one {
			err = a.node.SendOne(ctx, json.RawMessage(body))
		} else {
			err = a.node.Send(ctx, json.RawMessage(body))
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]bool{"sent": true})
		return nil
	}
}

func (a *Agent) handleEvents(w http.ResponseWriter, r *http.Request) error {
	sub, ok := a.events.subscribe()
	if !ok {
		return p2p.ErrClosed
	}
	defer a.events.unsubscribe(sub)
	stream, err := startSSE(w)
	if err != nil {
		return nil // headers may be out; nothing more to say
	}
	keepAlive := time.NewTicker(sseKeepAlive)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-keepAlive.C:
			if stream.comment("keep-alive") != nil {
				return nil
			}
		case ev, ok := <-sub.events:
			if !ok {
				if a.events.overflowed(sub) {
					a.streamDrops.Add(1)
					_ = stream.send("error", Event{Type: "error", Error: "client too slow: events dropped, reconnect"})
				}
				return nil
			}
			if stream.send(ev.Type, ev) != nil {
				return nil
			}
		}
	}
}

// keyOf returns the validated key of a /v1/kv/{key...} request.
func keyOf(r *http.Request) (string, error) {
	key := r.PathValue("key")
	if err := kv.ValidateKey(key); err != nil {
		return "", errorf(http.StatusBadRequest, CodeBadRequest, "%v", err)
	}
	return key, nil
}

func (a *Agent) handleGet(w http.ResponseWriter, r *http.Request) error {
	key, err := keyOf(r)
	if err != nil {
		return err
	}
	format := r.URL.Query().Get("format")
	if format != "" && format != "raw" && format != "json" {
		return errorf(http.StatusBadRequest, CodeBadRequest, "format %q: want raw or json", format)
	}
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	rec, err := a.node.Store().Get(ctx, key)
	if err != nil {
		return err
	}
	if format == "json" {
		writeJSON(w, http.StatusOK, recordOf(rec))
		return nil
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("X-P2P-Version", rec.Version.Time.String())
	h.Set("X-P2P-Writer", rec.Version.Writer.String())
	_, _ = w.Write(rec.Value)
	return nil
}

func (a *Agent) handlePut(w http.ResponseWriter, r *http.Request) error {
	key, err := keyOf(r)
	if err != nil {
		return err
	}
	value, err := io.ReadAll(http.MaxBytesReader(w, r.Body, kv.MaxValueLen))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "value of %q over %d bytes", key, kv.MaxValueLen)
		}
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	rec, err := a.node.Store().Put(ctx, key, value)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, recordOf(rec))
	return nil
}

func (a *Agent) handleDelete(w http.ResponseWriter, r *http.Request) error {
	key, err := keyOf(r)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	if err := a.node.Store().Delete(ctx, key); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"deleted": key})
	return nil
}

func (a *Agent) handleList(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	prefix := r.URL.Query().Get("prefix")
	internal, err := wantsInternal(r, prefix)
	if err != nil {
		return err
	}
	recs, err := a.node.Store().List(ctx, prefix)
	if err != nil {
		return err
	}
	out := ListResponse{Records: make([]Record, 0, len(recs))}
	for _, rec := range recs {
		if internal || !strings.HasPrefix(rec.Key, InternalPrefix) {
			out.Records = append(out.Records, recordOf(rec))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// wantsInternal reports whether a listing or a watch shows the agent's
// internal keys: when ?internal=true, or when the prefix asks for them.
func wantsInternal(r *http.Request, prefix string) (bool, error) {
	switch v := r.URL.Query().Get("internal"); v {
	case "", "false", "0":
		return strings.HasPrefix(prefix, InternalPrefix), nil
	case "true", "1":
		return true, nil
	default:
		return false, errorf(http.StatusBadRequest, CodeBadRequest, "internal=%q: want true or false", v)
	}
}

func (a *Agent) handleWatch(w http.ResponseWriter, r *http.Request) error {
	prefix := r.URL.Query().Get("prefix")
	internal, err := wantsInternal(r, prefix)
	if err != nil {
		return err
	}
	events, err := a.node.Store().Watch(r.Context(), prefix)
	if err != nil {
		return err
	}
	stream, err := startSSE(w)
	if err != nil {
		return nil
	}
	keepAlive := time.NewTicker(sseKeepAlive)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-keepAlive.C:
			if stream.comment("keep-alive") != nil {
				return nil
			}
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			var out WatchEvent
			switch {
			case ev.Err != nil:
				a.streamDrops.Add(1)
				out = WatchEvent{Type: "error", Error: ev.Err.Error()}
			case ev.Synced:
				out = WatchEvent{Type: "synced"}
			default:
				if !internal && strings.HasPrefix(ev.Record.Key, InternalPrefix) {
					continue
				}
				rec := recordOf(ev.Record)
				out = WatchEvent{Type: "put", Initial: ev.Initial, Record: &rec}
				if rec.Deleted {
					out.Type = "delete"
				}
			}
			if stream.send(out.Type, out) != nil || out.Type == "error" {
				return nil
			}
		}
	}
}
