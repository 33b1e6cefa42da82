package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/p2p-go/p2p/internal/testutil"
	"github.com/p2p-go/p2p/kv"
)

// rawCall makes one HTTP request to the agent and decodes an error body.
func rawCall(t *testing.T, hc *http.Client, a *Agent, method, path string, body []byte, header http.Header) (int, ErrorBody) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+a.APIAddr()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var eb ErrorBody
	if resp.StatusCode >= 300 {
		if resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: error with Content-Type %q", method, path, resp.Header.Get("Content-Type"))
		}
		if err := json.Unmarshal(data, &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
			t.Errorf("%s %s: error body %q is not {error: {code, message}}", method, path, data)
		}
	}
	return resp.StatusCode, eb
}

func httpClient(t *testing.T) *http.Client {
	hc := &http.Client{Transport: &http.Transport{}, Timeout: 20 * time.Second}
	t.Cleanup(hc.CloseIdleConnections)
	return hc
}

func TestAPIBadInputGetsJSONErrorAndChangesNothing(t *testing.T) {
	a, b := joinedPair(t, testConfig(t, "a"), testConfig(t, "b"))
	ca, cb := client(t, a, ""), client(t, b, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := ca.Put(ctx, "config/keep", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	before, err := ca.List(ctx, "config/")
	if err != nil {
		t.Fatal(err)
	}
	// b records every message it receives from now on.
	received := make(chan Event, 16)
	streamDone := make(chan error, 1)
	go func() {
		streamDone <- cb.Events(ctx, func(ev Event) error {
			if ev.Type == "message" {
				received <- ev
			}
			return nil
		})
	}()
	// The stream is registered once the server accepted it: wait for the
	// hub to count it.
	testutil.Eventually(t, 5*time.Second, "event stream registered", func() bool {
		b.events.mu.Lock()
		defer b.events.mu.Unlock()
		return len(b.events.subs) == 1
	})

	big := bytes.Repeat([]byte("x"), kv.MaxValueLen+1)
	hugeJSON := append(append([]byte(`"`), bytes.Repeat([]byte("y"), MaxRequestBody)...), '"')
	longKey := strings.Repeat("k", kv.MaxKeyLen+1)
	hc := httpClient(t)
	tests := []struct {
		name, method, path string
		body               []byte
		status             int
		code               string
	}{
		{"unknown route", "GET", "/v1/nothing", nil, 404, CodeNotFound},
		{"unknown top-level path", "GET", "/nothing", nil, 404, CodeNotFound},
		{"wrong method", "DELETE", "/v1/info", nil, 405, CodeMethodNotAllowed},
		{"wrong method on kv", "POST", "/v1/kv/config/keep", []byte("v2"), 405, CodeMethodNotAllowed},
		{"bad JSON", "POST", "/v1/send", []byte(`{"a":`), 400, CodeInvalidJSON},
		{"bad JSON to one", "POST", "/v1/send-one", []byte(`nope`), 400, CodeInvalidJSON},
		{"empty body", "POST", "/v1/send", nil, 400, CodeInvalidJSON},
		{"message too large", "POST", "/v1/send", hugeJSON, 413, CodeTooLarge},
		{"value too large", "PUT", "/v1/kv/config/keep", big, 413, CodeTooLarge},
		{"empty key", "PUT", "/v1/kv/", []byte("v"), 400, CodeBadRequest},
		{"key too long", "PUT", "/v1/kv/" + longKey, []byte("v"), 400, CodeBadRequest},
		{"missing key", "GET", "/v1/kv/config/none", nil, 404, CodeNotFound},
		{"delete missing key", "DELETE", "/v1/kv/config/none", nil, 404, CodeNotFound},
		{"bad format", "GET", "/v1/kv/config/keep?format=xml", nil, 400, CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := http.Header{}
			if tt.method == "POST" {
				header.Set("Content-Type", "application/json")
			}
			status, eb := rawCall(t, hc, a, tt.method, tt.path, tt.body, header)
			if status != tt.status || eb.Error.Code != tt.code {
				t.Fatalf("%s %s = %d %q (%s), want %d %q", tt.method, tt.path, status, eb.Error.Code, eb.Error.Message, tt.status, tt.code)
			}
		})
	}

	after, err := ca.List(ctx, "config/")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("store changed by rejected requests:\nbefore %+v\nafter  %+v", before, after)
	}
	// A valid message now: it must be the first one b receives.
	if err := ca.Send(ctx, json.RawMessage(`{"good":1}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-received:
		if string(ev.Data) != `{"good":1}` {
			t.Fatalf("first message b received = %s, want the valid one", ev.Data)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("b received no message")
	}
	cancel()
	if err := <-streamDone; err != nil {
		t.Fatalf("event stream: %v", err)
	}
}

func TestAPILargestValueIsAccepted(t *testing.T) {
	a := startAgent(t, testConfig(t, "a"))
	c := client(t, a, "")
	value := bytes.Repeat([]byte{0xff}, kv.MaxValueLen)
	if _, err := c.Put(context.Background(), "blob", value); err != nil {
		t.Fatalf("Put of kv.MaxValueLen bytes: %v", err)
	}
	rec, err := c.Get(context.Background(), "blob")
	if err != nil || !bytes.Equal(rec.Value, value) {
		t.Fatalf("Get = %d bytes, %v", len(rec.Value), err)
	}
	// Raw GET returns the exact bytes.
	resp, err := httpClient(t).Get("http://" + a.APIAddr() + "/v1/kv/blob")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(raw, value) || resp.Header.Get("X-P2P-Writer") != a.Node().ID().String() {
		t.Fatalf("raw GET = %d bytes, writer %q", len(raw), resp.Header.Get("X-P2P-Writer"))
	}
}

func TestAPISendOneWithoutNeighbourIsUnavailable(t *testing.T) {
	a := startAgent(t, testConfig(t, "alone"))
	err := client(t, a, "").SendOne(context.Background(), json.RawMessage(`1`))
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != CodeUnavailable || ae.Status != http.StatusServiceUnavailable {
		t.Fatalf("SendOne without neighbours = %v, want 503 unavailable", err)
	}
}

func TestAPITokenRequiredWhenSet(t *testing.T) {
	cfg := testConfig(t, "a")
	cfg.APIToken = "s3cret"
	a := startAgent(t, cfg)
	hc := httpClient(t)
	for _, header := range []http.Header{nil, {"Authorization": {"Bearer wrong"}}, {"Authorization": {"s3cret"}}} {
		status, eb := rawCall(t, hc, a, "PUT", "/v1/kv/config/x", []byte("v"), header)
		if status != http.StatusUnauthorized || eb.Error.Code != CodeUnauthorized {
			t.Fatalf("PUT with %v = %d %q, want 401 unauthorized", header, status, eb.Error.Code)
		}
		status, _ = rawCall(t, hc, a, "GET", "/metrics", nil, header)
		if status != http.StatusUnauthorized {
			t.Fatalf("GET /metrics with %v = %d, want 401", header, status)
		}
	}
	recs, err := client(t, a, "s3cret").List(context.Background(), "config/")
	if err != nil || len(recs) != 0 {
		t.Fatalf("List with the token = %v, %v; want no key written by refused requests", recs, err)
	}
	if _, err := client(t, a, "s3cret").Put(context.Background(), "config/x", []byte("v")); err != nil {
		t.Fatalf("Put with the token: %v", err)
	}
}

func TestAPIRefusesNonLoopbackWithoutToken(t *testing.T) {
	cfg := testConfig(t, "a")
	cfg.API = "0.0.0.0:0"
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "api-token") {
		t.Fatalf("New with a public API and no token = %v, want an error naming --api-token", err)
	}
}

func TestAPIStoreReplicatesAndWatchStreamsChanges(t *testing.T) {
	a, b := joinedPair(t, testConfig(t, "a"), testConfig(t, "b"))
	ca, cb := client(t, a, ""), client(t, b, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := ca.Put(ctx, "config/one", []byte("1")); err != nil {
		t.Fatal(err)
	}
	events := make(chan WatchEvent, 64)
	done := make(chan error, 1)
	go func() {
		done <- cb.Watch(ctx, "config/", func(ev WatchEvent) error { events <- ev; return nil })
	}()
	next := func() WatchEvent {
		t.Helper()
		select {
		case ev := <-events:
			return ev
		case <-time.After(10 * time.Second):
			t.Fatal("no watch event")
			return WatchEvent{}
		}
	}
	// The initial state may or may not hold config/one yet, depending on
	// whether the write reached b before the watch: skip to synced.
	ev := next()
	sawOne := false
	for ev.Type != "synced" {
		if ev.Type != "put" || !ev.Initial || ev.Record.Key != "config/one" {
			t.Fatalf("initial event %+v", ev)
		}
		sawOne = true
		ev = next()
	}
	if !sawOne {
		if ev = next(); ev.Type != "put" || ev.Record.Key != "config/one" || string(ev.Record.Value) != "1" {
			t.Fatalf("event %+v, want put config/one", ev)
		}
	}
	if _, err := ca.Put(ctx, "config/two", []byte("2")); err != nil {
		t.Fatal(err)
	}
	if ev = next(); ev.Type != "put" || ev.Initial || ev.Record.Key != "config/two" || ev.Record.Writer != a.Node().ID().String() {
		t.Fatalf("event %+v, want put config/two by a", ev)
	}
	if err := ca.Delete(ctx, "config/one"); err != nil {
		t.Fatal(err)
	}
	if ev = next(); ev.Type != "delete" || ev.Record.Key != "config/one" {
		t.Fatalf("event %+v, want delete config/one", ev)
	}
	recs, err := cb.List(ctx, "config/")
	if err != nil || len(recs) != 1 || recs[0].Key != "config/two" {
		t.Fatalf("List on b = %+v, %v", recs, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestAPIMembersShowPublishedNamesAndTags(t *testing.T) {
	cfgA, cfgB := testConfig(t, "alpha"), testConfig(t, "beta")
	cfgB.Tags = map[string]string{"role": "db"}
	a, b := joinedPair(t, cfgA, cfgB)
	c := client(t, a, "")
	var members []Member
	testutil.Eventually(t, 20*time.Second, "a lists beta with its tags", func() bool {
		var err error
		members, err = c.Members(context.Background())
		return err == nil && len(members) == 2 && members[1].Name == "beta" && members[1].Tags["role"] == "db"
	})
	want := []Member{
		{ID: a.Node().ID().String(), Addr: a.Node().Addr(), Name: "alpha", Self: true},
		{ID: b.Node().ID().String(), Addr: b.Node().Addr(), Name: "beta", Tags: map[string]string{"role": "db"}, Neighbor: true},
	}
	if !reflect.DeepEqual(members, want) {
		t.Fatalf("members = %+v\nwant %+v", members, want)
	}
	info, err := client(t, b, "").Info(context.Background())
	if err != nil || info.Name != "beta" || !info.Joined || info.Members != 2 || len(info.Neighbors) != 1 || info.API != b.APIAddr() {
		t.Fatalf("Info = %+v, %v", info, err)
	}
}

func TestAPIEventStreamCarriesMessagesAndMembership(t *testing.T) {
	a := startAgent(t, testConfig(t, "a"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan Event, 64)
	done := make(chan error, 1)
	go func() {
		done <- client(t, a, "").Events(ctx, func(ev Event) error { events <- ev; return nil })
	}()
	testutil.Eventually(t, 5*time.Second, "event stream registered", func() bool {
		a.events.mu.Lock()
		defer a.events.mu.Unlock()
		return len(a.events.subs) == 1
	})
	cfgB := testConfig(t, "b")
	cfgB.Join = []string{a.Node().Addr()}
	b := startAgent(t, cfgB)
	<-b.Node().Joined()
	if err := client(t, b, "").Send(ctx, json.RawMessage(`{"hello":"a"}`)); err != nil {
		t.Fatal(err)
	}
	var sawJoin, sawMessage bool
	timeout := time.After(10 * time.Second)
	for !sawJoin || !sawMessage {
		select {
		case ev := <-events:
			switch {
			case ev.Type == "member" && ev.Kind == "join" && ev.ID == b.Node().ID().String():
				sawJoin = true
			case ev.Type == "message" && string(ev.Data) == `{"hello":"a"}` && ev.From == b.Node().ID().String() && !ev.Direct && ev.Hops >= 1:
				sawMessage = true
			}
		case <-timeout:
			t.Fatalf("join seen %t, message seen %t", sawJoin, sawMessage)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestMetricsExposition(t *testing.T) {
	a, b := joinedPair(t, testConfig(t, "a"), testConfig(t, "b"))
	if err := client(t, b, "").Send(context.Background(), json.RawMessage(`"m"`)); err != nil {
		t.Fatal(err)
	}
	if _, err := client(t, b, "").Put(context.Background(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	hc := httpClient(t)
	var values map[string]float64
	testutil.Eventually(t, 10*time.Second, "a's metrics count the message and the write", func() bool {
		values = scrape(t, hc, a)
		return values["p2p_broadcast_hops_count"] >= 1 && values["p2p_kv_propagation_seconds_count"] >= 1 && values["p2p_store_keys"] == 3
	})
	for name, want := range map[string]float64{"p2p_members": 2, "p2p_neighbors": 1, "p2p_connections_open": 1} {
		if values[name] != want {
			t.Errorf("%s = %v, want %v", name, values[name], want)
		}
	}
	for _, name := range []string{"p2p_messages_received_total", "p2p_socket_bytes_sent_total", "p2p_store_keys", `p2p_handshakes_refused_total{reason="bad_secret"}`, `p2p_broadcast_hops_bucket{le="+Inf"}`, "p2p_store_anti_entropy_rounds_total"} {
		if _, ok := values[name]; !ok {
			t.Errorf("metric %s missing", name)
		}
	}
	if values["p2p_messages_received_total"] == 0 || values["p2p_socket_bytes_received_total"] == 0 {
		t.Errorf("counters not fed: %v", values)
	}
}

// scrape reads /metrics and checks every line of the text format.
func scrape(t *testing.T, hc *http.Client, a *Agent) map[string]float64 {
	t.Helper()
	resp, err := hc.Get("http://" + a.APIAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("Content-Type %q", ct)
	}
	values := map[string]float64{}
	typed := map[string]bool{}
	scanner := bufio.NewScanner(resp.Body)
	for scanner.Scan() {
		line := scanner.Text()
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			typed[strings.Fields(name)[0]] = true
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("bad metric line %q", line)
		}
		name := line[:i]
		base, _, _ := strings.Cut(name, "{")
		base = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(base, "_bucket"), "_sum"), "_count")
		if !typed[base] && !typed[strings.SplitN(name, "{", 2)[0]] {
			t.Fatalf("metric %q has no TYPE line", name)
		}
		values[name] = v
	}
	return values
}

func TestUnixSocketAPI(t *testing.T) {
	dir, err := os.MkdirTemp("", "p2p-agent")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	socket := filepath.Join(dir, "api.sock")
	cfg := testConfig(t, "a")
	cfg.API = "unix:" + socket
	a := startAgent(t, cfg)
	if a.APIAddr() != cfg.API {
		t.Fatalf("APIAddr = %q, want %q", a.APIAddr(), cfg.API)
	}
	st, err := os.Stat(socket)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v, %v; want mode 0600", st, err)
	}
	c := client(t, a, "")
	if info, err := c.Info(context.Background()); err != nil || info.ID != a.Node().ID().String() {
		t.Fatalf("Info over the socket = %+v, %v", info, err)
	}
	second := cfg
	second.DataDir = filepath.Join(t.TempDir(), "second")
	if _, err := New(second); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second agent on the same socket: %v, want an in-use error", err)
	}
	a.Close()
	if _, err := os.Stat(socket); !os.IsNotExist(err) {
		t.Fatalf("socket left behind after Close: %v", err)
	}
}

func TestClientSaysWhenNoAgentRuns(t *testing.T) {
	c := NewClient("127.0.0.1:1", "")
	defer c.CloseIdleConnections()
	_, err := c.Info(context.Background())
	if !errors.Is(err, ErrNoAgent) || !strings.Contains(err.Error(), "no agent at 127.0.0.1:1 (nothing listening there): start one with `p2p agent`") {
		t.Fatalf("Info with no agent = %v", err)
	}
}
