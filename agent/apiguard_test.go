package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/p2p-go/p2p/internal/testutil"
)

// guardedPair is two joined agents: what a request to a changes would
// reach b, so a refused request can be shown to have changed nothing.
func guardedPair(t *testing.T) (*Agent, *Agent) {
	t.Helper()
	return joinedPair(t, testConfig(t, "a"), testConfig(t, "b"))
}

// TestAPIRefusesForeignHost: a DNS-rebinding page reaches the loopback API
// with its own host name in Host; the API refuses it before any handler
// runs, whatever the route and method.
func TestAPIRefusesForeignHost(t *testing.T) {
	a := startAgent(t, testConfig(t, "a"))
	hc := httpClient(t)
	_, port, _ := net.SplitHostPort(a.APIAddr())
	for _, tc := range []struct{ method, path, host, body string }{
		{"GET", "/v1/kv?prefix=", "evil.example:" + port, ""},
		{"PUT", "/v1/kv/config/db", "attacker.example", "x"},
		{"POST", "/v1/send", "evil.example:" + port, `{"x":1}`},
		{"GET", "/metrics", "127.0.0.1.evil.example", ""},
	} {
		header := http.Header{"Content-Type": {"application/json"}}
		status, eb := rawCallHost(t, hc, a, tc.method, tc.path, tc.host, []byte(tc.body), header)
		if status != http.StatusForbidden || eb.Error.Code != CodeForbidden {
			t.Errorf("%s %s with Host %s = %d %q, want 403 forbidden", tc.method, tc.path, tc.host, status, eb.Error.Code)
		}
	}
	if got := a.refusals.get(refusedHost); got != 4 {
		t.Errorf("refused for host = %d, want 4", got)
	}
	// Loopback names and addresses pass.
	for _, host := range []string{"localhost:" + port, "127.0.0.1:" + port, "127.9.9.9", "[::1]:" + port, "LOCALHOST"} {
		status, eb := rawCallHost(t, hc, a, "PUT", "/v1/kv/config/ok", host, []byte("v"), nil)
		if status != http.StatusOK {
			t.Errorf("PUT with Host %s = %d %+v, want 200", host, status, eb)
		}
	}
	recs, err := client(t, a, "").List(context.Background(), "config/")
	if err != nil || len(recs) != 1 || recs[0].Key != "config/ok" {
		t.Fatalf("store after the requests = %+v, %v; want only config/ok", recs, err)
	}
}

// TestAPIAcceptsConfiguredHost: an agent listening on a wildcard address
// (with a token) answers requests addressed to any of its IP addresses.
func TestAPIAcceptsConfiguredHost(t *testing.T) {
	g := newAPIGuard("0.0.0.0:6967", &net.TCPAddr{IP: net.IPv4zero, Port: 6967}, 0, newAPIRefusals(testLogger(t)))
	for host, want := range map[string]bool{"10.1.2.3:6967": true, "localhost": true, "evil.example": false} {
		if got := g.hostAllowed(host); got != want {
			t.Errorf("hostAllowed(%q) = %v, want %v", host, got, want)
		}
	}
	g = newAPIGuard("agent.internal:6967", &net.TCPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 6967}, 0, newAPIRefusals(testLogger(t)))
	for host, want := range map[string]bool{"agent.internal:6967": true, "10.0.0.5": true, "10.0.0.6": false, "evil.example": false} {
		if got := g.hostAllowed(host); got != want {
			t.Errorf("hostAllowed(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestAPIRefusesForeignOriginOnStateChange: a page of another site may
// send a request to the loopback API (a CORS "simple request" is not even
// preflighted); every state-changing route refuses it, so no message is
// sent and no key written.
func TestAPIRefusesForeignOriginOnStateChange(t *testing.T) {
	a, b := guardedPair(t)
	hc := httpClient(t)
	received := watchMessages(t, b)
	for _, tc := range []struct{ method, path, body, origin string }{
		{"POST", "/v1/send", `{"x":1}`, "http://evil.example"},
		{"POST", "/v1/send-one", `{"x":1}`, "null"},
		{"PUT", "/v1/kv/config/db", "evil", "http://evil.example"},
		{"DELETE", "/v1/kv/config/keep", "", "https://" + a.APIAddr()},
	} {
		header := http.Header{"Content-Type": {"application/json"}, "Origin": {tc.origin}}
		status, eb := rawCall(t, hc, a, tc.method, tc.path, []byte(tc.body), header)
		if status != http.StatusForbidden || eb.Error.Code != CodeForbidden {
			t.Errorf("%s %s with Origin %s = %d %q, want 403 forbidden", tc.method, tc.path, tc.origin, status, eb.Error.Code)
		}
	}
	// A read with a foreign Origin is answered (the browser withholds the
	// answer from the page: there are no CORS headers).
	if status, _ := rawCall(t, hc, a, "GET", "/v1/info", nil, http.Header{"Origin": {"http://evil.example"}}); status != http.StatusOK {
		t.Errorf("GET /v1/info with a foreign Origin = %d, want 200", status)
	}
	// The agent's own origin may change state (a page the agent serves).
	header := http.Header{"Content-Type": {"application/json"}, "Origin": {"http://" + a.APIAddr()}}
	if status, eb := rawCall(t, hc, a, "POST", "/v1/send", []byte(`{"own":1}`), header); status != http.StatusOK {
		t.Fatalf("POST /v1/send from the agent's own origin = %d %+v", status, eb)
	}
	select {
	case ev := <-received:
		if string(ev.Data) != `{"own":1}` {
			t.Fatalf("first message b received = %s: a refused request got through", ev.Data)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("b received no message")
	}
	if got := a.refusals.get(refusedOrigin); got != 4 {
		t.Errorf("refused for origin = %d, want 4", got)
	}
	if recs, err := client(t, a, "").List(context.Background(), "config/"); err != nil || len(recs) != 0 {
		t.Fatalf("store = %+v, %v; want nothing written", recs, err)
	}
}

// TestAPIRequiresJSONContentType: a JSON body must say so, which no simple
// cross-site request can, on every route that takes one.
func TestAPIRequiresJSONContentType(t *testing.T) {
	a, b := guardedPair(t)
	hc := httpClient(t)
	received := watchMessages(t, b)
	bodies := map[string]string{
		"/v1/send": `{"x":1}`, "/v1/send-one": `{"x":1}`,
		"/v1/revocations": `{"id":"` + b.Node().ID().String() + `"}`,
	}
	for _, op := range []string{"install", "use", "remove"} {
		bodies["/v1/keys/"+op] = `{"key":"` + strings.Repeat("A", 43) + `="}`
	}
	refused := 0
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx"} {
		header := http.Header{}
		if ct != "" {
			header.Set("Content-Type", ct)
		}
		for path, body := range bodies {
			status, eb := rawCall(t, hc, a, "POST", path, []byte(body), header)
			if status != http.StatusForbidden || eb.Error.Code != CodeUnsupportedMediaType {
				t.Errorf("POST %s with Content-Type %q = %d %q, want 403 %s", path, ct, status, eb.Error.Code, CodeUnsupportedMediaType)
			}
			refused++
		}
	}
	if revoked, err := a.Node().Revoked(context.Background()); err != nil || len(revoked) != 0 {
		t.Fatalf("revocations after refused requests: %v, %v", revoked, err)
	}
	header := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
	if status, eb := rawCall(t, hc, a, "POST", "/v1/send", []byte(`{"json":1}`), header); status != http.StatusOK {
		t.Fatalf("POST /v1/send with application/json; charset=utf-8 = %d %+v", status, eb)
	}
	select {
	case ev := <-received:
		if string(ev.Data) != `{"json":1}` {
			t.Fatalf("first message b received = %s: a refused request got through", ev.Data)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("b received no message")
	}
	if got := a.refusals.get(refusedContentType); got != uint64(refused) {
		t.Errorf("refused for content type = %d, want %d", got, refused)
	}
}

// TestAPICutsOffSlowBody: a client that sends its body a byte at a time
// is cut off by the body timeout and the write never happens; so is one
// whose request is refused for its Host or Origin before any handler reads
// the body (the server reads the unread body of a refused request before
// answering). The timeout is short here; the client sends a byte per
// timeout, so no single read waits long, yet the body as a whole does not
// arrive in time.
func TestAPICutsOffSlowBody(t *testing.T) {
	cfg := testConfig(t, "a")
	cfg.APIBodyTimeout = 300 * time.Millisecond
	a := startAgent(t, cfg)
	for _, tc := range []struct {
		name, host, origin string
		status             int
	}{
		{name: "accepted", host: a.APIAddr(), status: http.StatusRequestTimeout},
		{name: "foreign host", host: "evil.example", status: http.StatusForbidden},
		{name: "foreign origin", host: a.APIAddr(), origin: "http://evil.example", status: http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			header := "Host: " + tc.host + "\r\n"
			if tc.origin != "" {
				header += "Origin: " + tc.origin + "\r\n"
			}
			if status := slowBody(t, a, header); status != 0 && status != tc.status {
				t.Fatalf("slow body answered %d, want %d or a closed connection", status, tc.status)
			}
		})
	}
	testutil.Eventually(t, 10*time.Second, "body timeout counted", func() bool { return a.refusals.get(refusedBodyTimeout) == 1 })
	if got, want := a.refusals.get(refusedHost)+a.refusals.get(refusedOrigin), uint64(2); got != want {
		t.Fatalf("refused for host or origin = %d, want %d", got, want)
	}
}

// slowBody sends POST /v1/send with the given header lines and a 1000-byte
// body at a byte per 100 ms (100 s in all), and returns the status the
// server answered before the body was whole (0 if it closed the connection
// without an answer). It fails the test if the whole body was taken, with
// or without an answer after it.
func slowBody(t *testing.T, a *Agent, header string) int {
	t.Helper()
	conn, err := net.Dial("tcp", a.APIAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"slow":"` + strings.Repeat("x", 1000) + `"}`
	fmt.Fprintf(conn, "POST /v1/send HTTP/1.1\r\n%sContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", header, len(body))
	answered := make(chan *http.Response, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		answered <- resp
	}()
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	sent := 0
	var resp *http.Response
loop:
	for {
		select {
		case resp = <-answered:
			break loop
		case <-ticker.C:
			if sent == len(body) {
				t.Fatal("the whole slow body was accepted")
			}
			if _, err := conn.Write([]byte{body[sent]}); err != nil {
				resp = <-answered
				break loop
			}
			sent++
		}
	}
	if sent == len(body) {
		t.Fatalf("answered only once the whole slow body (%d bytes, %d s) had arrived", sent, sent/10)
	}
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}

// TestAPIConnectionCap: connections beyond APIMaxConns are closed at once
// and counted; once a slot frees, requests are served again.
func TestAPIConnectionCap(t *testing.T) {
	cfg := testConfig(t, "a")
	cfg.APIMaxConns = 2
	a := startAgent(t, cfg)
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", a.APIAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	// Both held connections must be accepted before the third arrives:
	// a request on each proves it.
	for _, c := range held {
		fmt.Fprintf(c, "GET /v1/kv?prefix= HTTP/1.1\r\nHost: %s\r\n\r\n", a.APIAddr())
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("request on a held connection: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	extra, err := net.Dial("tcp", a.APIAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.SetReadDeadline(time.Now().Add(20 * time.Second))
	if n, err := extra.Read(make([]byte, 1)); err == nil {
		t.Fatalf("third connection read %d bytes, want it closed", n)
	}
	if got := a.refusals.get(refusedTooManyConn); got != 1 {
		t.Fatalf("refused for too many connections = %d, want 1", got)
	}
	held[0].Close()
	testutil.Eventually(t, 10*time.Second, "a request served after a slot freed", func() bool {
		hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
		resp, err := hc.Get("http://" + a.APIAddr() + "/v1/info")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// rawCallHost is rawCall with the Host header set to host.
func rawCallHost(t *testing.T, hc *http.Client, a *Agent, method, path, host string, body []byte, header http.Header) (int, ErrorBody) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+a.APIAddr()+path, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var eb ErrorBody
	if resp.StatusCode >= 300 {
		if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil {
			t.Errorf("%s %s: error body is not JSON: %v", method, path, err)
		}
	}
	return resp.StatusCode, eb
}

// watchMessages streams b's events and returns the messages it receives,
// once the stream is registered.
func watchMessages(t *testing.T, b *Agent) <-chan Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	received := make(chan Event, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		client(t, b, "").Events(ctx, func(ev Event) error {
			if ev.Type == "message" {
				received <- ev
			}
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	testutil.Eventually(t, 5*time.Second, "event stream registered", func() bool {
		b.events.mu.Lock()
		defer b.events.mu.Unlock()
		return len(b.events.subs) == 1
	})
	return received
}
