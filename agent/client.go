package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// APIError is an error response of the agent's API.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("%s (%s)", e.Message, e.Code) }

// ErrNoAgent is wrapped by the errors of a Client that finds no agent
// listening at its address.
var ErrNoAgent = errors.New("no agent")

// Client calls an agent's HTTP API. Its methods are safe for concurrent
// use.
type Client struct {
	addr  string
	token string
	base  string
	http  *http.Client
}

// ErrNotAgent is wrapped by the errors of a Client whose address answers,
// but not as an agent does (a web page, another HTTP server, a port that
// does not speak HTTP).
var ErrNotAgent = errors.New("not a p2p agent")

// NewClient returns a client of the agent at addr (host:port, a URL such as
// http://127.0.0.1:6967/, or unix:/path; empty: DefaultAPIAddr) that sends
// token, if any, as a bearer token.
func NewClient(addr, token string) *Client {
	addr = normalizeAPIAddr(addr)
	c := &Client{addr: addr, token: token, base: "http://" + addr}
	if rest, ok := strings.CutPrefix(addr, "https://"); ok {
		c.base = addr
		c.addr = rest
	}
	network, path := "", ""
	if rest, ok := strings.CutPrefix(addr, "unix:"); ok {
		c.base = "http://agent"
		network, path = "unix", rest
	}
	transport := &http.Transport{
		DialContext: func(ctx context.Context, netw, address string) (net.Conn, error) {
			if network != "" {
				netw, address = network, path
			}
			var d net.Dialer
			conn, err := d.DialContext(ctx, netw, address)
			if err != nil {
				return nil, err
			}
			return newSpeakFirstConn(conn), nil
		},
		// Below the agent's own idle timeout (2 minutes), so that the
		// client drops an idle connection before the agent closes it.
		IdleConnTimeout:   90 * time.Second,
		ForceAttemptHTTP2: true, // as without a DialContext, for an https:// address
	}
	c.http = &http.Client{Transport: transport}
	return c
}

// speakFirstConn is a client's connection that reads nothing before the
// client has started writing its first request. net/http's transport reads
// a fresh connection as soon as it is dialled, to notice a server closing
// it while idle; bytes that a server sends before any request (a banner, a
// binary protocol's greeting) then fail the request with an internal
// "readLoopPeekFailLocked" error, or not, depending on which of the dial,
// the server's write and the request's write comes first (and net/http
// logs an "Unsolicited response" line on the global logger). Reading only
// after the request makes those bytes the answer to it, which the client
// then names as not HTTP, whatever the timing.
type speakFirstConn struct {
	net.Conn
	wrote     chan struct{} // closed at the first Write
	closed    chan struct{} // closed by Close
	wroteOnce sync.Once
	closeOnce sync.Once
}

func newSpeakFirstConn(conn net.Conn) *speakFirstConn {
	return &speakFirstConn{Conn: conn, wrote: make(chan struct{}), closed: make(chan struct{})}
}

func (c *speakFirstConn) Read(p []byte) (int, error) {
	select {
	case <-c.wrote:
	case <-c.closed:
		return 0, net.ErrClosed
	}
	return c.Conn.Read(p)
}

func (c *speakFirstConn) Write(p []byte) (int, error) {
	c.wroteOnce.Do(func() { close(c.wrote) })
	return c.Conn.Write(p)
}

func (c *speakFirstConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// Addr returns the agent's address the client calls.
func (c *Client) Addr() string { return c.addr }

// CloseIdleConnections closes the client's idle connections.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

func (c *Client) do(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, reader)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		// The API's only body that is not JSON is a key's value (PUT).
		contentType := "application/json"
		if method == http.MethodPut {
			contentType = "application/octet-stream"
		}
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return nil, fmt.Errorf("%w at %s (nothing listening there): start one with `p2p agent`, or point --api at its API address", ErrNoAgent, c.addr)
		}
		if ctx.Err() == nil && isNotHTTP(err) {
			return nil, fmt.Errorf("%w at %s: it does not answer HTTP (is it a node's overlay --listen address rather than its --api address?): %v", ErrNotAgent, c.addr, err)
		}
		return nil, fmt.Errorf("call agent at %s: %w", c.addr, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var body ErrorBody
		if !isJSON(resp) || json.Unmarshal(data, &body) != nil || body.Error.Code == "" {
			return nil, c.notAgent(method, path, resp, data)
		}
		return nil, &APIError{Status: resp.StatusCode, Code: body.Error.Code, Message: body.Error.Message}
	}
	want := "application/json"
	if strings.HasPrefix(path, "/v1/events") || strings.HasPrefix(path, "/v1/kv-watch") {
		want = "text/event-stream"
	}
	if mediaType(resp) != want {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, c.notAgent(method, path, resp, data)
	}
	return resp, nil
}

// notAgent describes an answer that no agent gives: its status, its
// content type and the start of its body on one line.
func (c *Client) notAgent(method, path string, resp *http.Response, body []byte) error {
	what := mediaType(resp)
	if what == "" {
		what = "no content type"
	}
	server := ""
	if s := resp.Header.Get("Server"); s != "" {
		server = ", server " + strconv.Quote(s)
	}
	excerpt := strings.Join(strings.Fields(string(body)), " ")
	if utf8.RuneCountInString(excerpt) > 80 {
		excerpt = string([]rune(excerpt)[:77]) + "..."
	}
	if excerpt == "" {
		excerpt = "(empty body)"
	}
	return fmt.Errorf("%w at %s: %s %s answered %q (%s%s): %s", ErrNotAgent, c.addr, method, path, resp.Status, what, server, excerpt)
}

// mediaType is the response's content type without parameters.
func mediaType(resp *http.Response) string {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return mt
}

func isJSON(resp *http.Response) bool { return mediaType(resp) == "application/json" }

// isNotHTTP reports whether err says the server's answer was not HTTP.
func isNotHTTP(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "malformed HTTP") || strings.Contains(msg, "server gave HTTP response") ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// normalizeAPIAddr accepts the forms an operator types for an API address:
// host:port, unix:/path, or a URL (http://host:port, with or without a
// trailing slash; https:// is kept as a URL).
func normalizeAPIAddr(addr string) string {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return DefaultAPIAddr
	}
	if strings.HasPrefix(addr, "unix:") {
		return addr
	}
	if rest, ok := strings.CutPrefix(addr, "http://"); ok {
		return strings.TrimRight(rest, "/")
	}
	if strings.HasPrefix(addr, "https://") {
		return strings.TrimRight(addr, "/")
	}
	return strings.TrimRight(addr, "/")
}

func (c *Client) getJSON(ctx context.Context, method, path string, body []byte, out any) error {
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
	}
	return nil
}

// Info calls GET /v1/info.
func (c *Client) Info(ctx context.Context) (Info, error) {
	var info Info
	err := c.getJSON(ctx, http.MethodGet, "/v1/info", nil, &info)
	return info, err
}

// Members calls GET /v1/members.
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	var out MembersResponse
	err := c.getJSON(ctx, http.MethodGet, "/v1/members", nil, &out)
	return out.Members, err
}

// Send calls POST /v1/send: data (JSON) goes to every member.
func (c *Client) Send(ctx context.Context, data json.RawMessage) error {
	var out map[string]bool
	return c.getJSON(ctx, http.MethodPost, "/v1/send", data, &out)
}

// SendOne calls POST /v1/send-one: data (JSON) goes to one neighbour.
func (c *Client) SendOne(ctx context.Context, data json.RawMessage) error {
	var out map[string]bool
	return c.getJSON(ctx, http.MethodPost, "/v1/send-one", data, &out)
}

func kvPath(key string) string { return "/v1/kv/" + (&url.URL{Path: key}).EscapedPath() }

// Cluster calls GET /v1/cluster.
func (c *Client) Cluster(ctx context.Context) (ClusterView, error) {
	var view ClusterView
	err := c.getJSON(ctx, http.MethodGet, "/v1/cluster", nil, &view)
	return view, err
}

// Get calls GET /v1/kv/{key}?format=json.
func (c *Client) Get(ctx context.Context, key string) (Record, error) {
	var rec Record
	err := c.getJSON(ctx, http.MethodGet, kvPath(key)+"?format=json", nil, &rec)
	return rec, err
}

// Put calls PUT /v1/kv/{key}.
func (c *Client) Put(ctx context.Context, key string, value []byte) (Record, error) {
	var rec Record
	if value == nil {
		value = []byte{}
	}
	err := c.getJSON(ctx, http.MethodPut, kvPath(key), value, &rec)
	return rec, err
}

// Delete calls DELETE /v1/kv/{key}.
func (c *Client) Delete(ctx context.Context, key string) error {
	var out map[string]string
	return c.getJSON(ctx, http.MethodDelete, kvPath(key), nil, &out)
}

// ListAll calls GET /v1/kv?prefix=&internal=true: the keys under prefix,
// the agent's internal keys included.
func (c *Client) ListAll(ctx context.Context, prefix string) ([]Record, error) {
	var out ListResponse
	err := c.getJSON(ctx, http.MethodGet, "/v1/kv?internal=true&prefix="+url.QueryEscape(prefix), nil, &out)
	return out.Records, err
}

// List calls GET /v1/kv?prefix=: the keys under prefix, without the
// agent's internal keys (InternalPrefix) unless prefix is under it.
func (c *Client) List(ctx context.Context, prefix string) ([]Record, error) {
	var out ListResponse
	err := c.getJSON(ctx, http.MethodGet, "/v1/kv?prefix="+url.QueryEscape(prefix), nil, &out)
	return out.Records, err
}

// Keys calls GET /v1/keys: the keys every member holds.
func (c *Client) Keys(ctx context.Context) (KeysResponse, error) {
	var out KeysResponse
	err := c.getJSON(ctx, http.MethodGet, "/v1/keys", nil, &out)
	return out, err
}

// KeyOp calls POST /v1/keys/{op} (op: install, use or remove) with key, a
// cluster secret in its printable form. A response whose Complete is false
// tells which members did not apply it.
func (c *Client) KeyOp(ctx context.Context, op, key string) (KeysResponse, error) {
	var out KeysResponse
	body, err := json.Marshal(KeyRequest{Key: key})
	if err != nil {
		return out, err
	}
	err = c.getJSON(ctx, http.MethodPost, "/v1/keys/"+url.PathEscape(op), body, &out)
	return out, err
}

// Events calls GET /v1/events and passes every event to fn until ctx ends,
// fn returns an error, or the stream ends.
func (c *Client) Events(ctx context.Context, fn func(Event) error) error {
	return c.stream(ctx, "/v1/events", func(data []byte) error {
		var ev Event
		if err := json.Unmarshal(data, &ev); err != nil {
			return fmt.Errorf("decode event: %w", err)
		}
		return fn(ev)
	})
}

// Watch calls GET /v1/kv-watch?prefix= (without the agent's internal keys,
// as List) and passes every event to fn until
// ctx ends, fn returns an error, or the stream ends.
func (c *Client) Watch(ctx context.Context, prefix string, fn func(WatchEvent) error) error {
	return c.watch(ctx, "/v1/kv-watch?prefix="+url.QueryEscape(prefix), fn)
}

// WatchAll is Watch with the agent's internal keys included.
func (c *Client) WatchAll(ctx context.Context, prefix string, fn func(WatchEvent) error) error {
	return c.watch(ctx, "/v1/kv-watch?internal=true&prefix="+url.QueryEscape(prefix), fn)
}

func (c *Client) watch(ctx context.Context, path string, fn func(WatchEvent) error) error {
	return c.stream(ctx, path, func(data []byte) error {
		var ev WatchEvent
		if err := json.Unmarshal(data, &ev); err != nil {
			return fmt.Errorf("decode watch event: %w", err)
		}
		return fn(ev)
	})
}

// stream reads a server-sent event stream and passes the data of each
// event to fn. It returns nil when ctx ends.
func (c *Client) stream(ctx context.Context, path string, fn func(data []byte) error) error {
	resp, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	err = readSSE(resp.Body, fn)
	if ctx.Err() != nil {
		return nil
	}
	var fnErr *callbackError
	if errors.As(err, &fnErr) {
		return fnErr.err
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("the agent at %s went away (event stream cut)", c.addr)
	}
	if err != nil {
		return fmt.Errorf("event stream from %s: %w", c.addr, err)
	}
	return nil
}

// callbackError marks an error returned by readSSE's callback.
type callbackError struct{ err error }

func (e *callbackError) Error() string { return e.err.Error() }

func (e *callbackError) Unwrap() error { return e.err }

// maxSSELine bounds one line of an event stream.
const maxSSELine = 4 << 20

// readSSE decodes a server-sent event stream (the subset the agent writes:
// "data:" lines, comments, blank lines ending events; other fields are
// ignored) and passes the data of each event to fn.
func readSSE(r io.Reader, fn func(data []byte) error) error {
	scanner := bufio.NewScanner(r)
	scanner.Buffer(make([]byte, 64<<10), maxSSELine)
	var data []byte
	have := false
	for scanner.Scan() {
		line := scanner.Bytes()
		switch {
		case len(line) == 0:
			if have {
				if err := fn(data); err != nil {
					return &callbackError{err}
				}
				data, have = nil, false
			}
		case bytes.HasPrefix(line, []byte("data:")):
			chunk := bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" "))
			if have {
				data = append(data, '\n')
			}
			data = append(data, chunk...)
			have = true
		}
	}
	return scanner.Err()
}
