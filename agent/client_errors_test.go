package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// A client pointed at something other than an agent says where it called
// and what answered, never an empty message or a whole web page.
func TestClientNamesAddressAndWhatAnsweredWhenNotAnAgent(t *testing.T) {
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<!doctype html>\n<html><head><title>Welcome</title></head><body>" + strings.Repeat("x", 5000) + "</body></html>"))
	}))
	defer html.Close()
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	closedAddr := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}()
	notHTTP, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer notHTTP.Close()
	go func() {
		for {
			c, err := notHTTP.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("\x00\x01binary protocol\n"))
			c.Close()
		}
	}()
	// A server that greets first and waits, as SSH does: its banner comes
	// before the client's request, and is read as the answer to it.
	banner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer banner.Close()
	go func() {
		for {
			c, err := banner.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n"))
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()

	for _, tc := range []struct {
		name, addr string
		is         error
		want       []string
	}{
		{"html page", html.URL, ErrNotAgent, []string{strings.TrimPrefix(html.URL, "http://"), "200 OK", "text/html", "<!doctype html> <html>"}},
		{"plain 404", notFound.Listener.Addr().String(), ErrNotAgent, []string{notFound.Listener.Addr().String(), "404 Not Found", "text/plain", "404 page not found"}},
		{"nothing listening", closedAddr, ErrNoAgent, []string{closedAddr, "nothing listening", "p2p agent"}},
		{"not HTTP", notHTTP.Addr().String(), ErrNotAgent, []string{notHTTP.Addr().String(), "does not answer HTTP"}},
		{"greets first", banner.Addr().String(), ErrNotAgent, []string{banner.Addr().String(), "does not answer HTTP", "SSH-2.0-OpenSSH_9.6"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c := NewClient(tc.addr, "")
			defer c.CloseIdleConnections()
			_, err := c.Members(ctx)
			if !errors.Is(err, tc.is) {
				t.Fatalf("error %v, want one wrapping %v", err, tc.is)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if len(err.Error()) > 300 {
				t.Errorf("error is %d bytes long: %q", len(err.Error()), err)
			}
		})
	}
}

func TestClientAcceptsURLForms(t *testing.T) {
	for in, want := range map[string]string{
		"":                        DefaultAPIAddr,
		"127.0.0.1:6971":          "127.0.0.1:6971",
		"http://127.0.0.1:6971":   "127.0.0.1:6971",
		"http://127.0.0.1:6971/":  "127.0.0.1:6971",
		" http://localhost:7000/": "localhost:7000",
		"unix:/run/p2p.sock":      "unix:/run/p2p.sock",
	} {
		if got := NewClient(in, "").Addr(); got != want {
			t.Errorf("NewClient(%q).Addr() = %q, want %q", in, got, want)
		}
	}
}

// The URL form reaches a real agent.
func TestClientURLFormCallsAgent(t *testing.T) {
	a := startAgent(t, testConfig(t, "url"))
	for _, form := range []string{"http://" + a.APIAddr(), "http://" + a.APIAddr() + "/"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c := NewClient(form, "")
		info, err := c.Info(ctx)
		c.CloseIdleConnections()
		cancel()
		if err != nil || info.Name != "url" {
			t.Fatalf("Info through %q: %+v, %v", form, info, err)
		}
	}
}

// A second agent on a data directory in use says which process holds it,
// rather than timing out on the store's file lock.
func TestSecondAgentOnDataDirNamesThePID(t *testing.T) {
	cfg := testConfig(t, "first")
	startAgent(t, cfg)
	second := testConfig(t, "second")
	second.DataDir = cfg.DataDir
	_, err := New(second)
	if !errors.Is(err, ErrDataDirInUse) {
		t.Fatalf("New on a directory in use: %v, want ErrDataDirInUse", err)
	}
	if want := fmt.Sprintf("%s is in use by PID %d", cfg.DataDir, os.Getpid()); !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
}
