package agent

import (
	"errors"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2p-go/p2p/internal/ratelog"
)

// Defaults of the API's protections against slow clients and web pages.
const (
	// DefaultAPIHeaderTimeout bounds the reading of a request's headers.
	DefaultAPIHeaderTimeout = 10 * time.Second
	// DefaultAPIBodyTimeout bounds the reading of a request's body, from the
	// end of its headers: the largest body the API takes (1 MiB) needs
	// milliseconds on the loopback, and a client that sends a byte every
	// few seconds is cut off instead of holding a goroutine for ever.
	DefaultAPIBodyTimeout = 10 * time.Second
	// DefaultAPIMaxConns bounds the API connections open at once (event
	// streams included); connections beyond it are closed at once and
	// counted in p2p_api_requests_refused_total{reason="too_many_connections"}.
	DefaultAPIMaxConns = 256
)

// Reasons of p2p_api_requests_refused_total.
const (
	refusedHost        = "host"
	refusedOrigin      = "origin"
	refusedContentType = "content_type"
	refusedBodyTimeout = "body_timeout"
	refusedTooManyConn = "too_many_connections"
)

// refusalReasons lists the reasons in the order metrics export them.
var refusalReasons = []string{refusedHost, refusedOrigin, refusedContentType, refusedBodyTimeout, refusedTooManyConn}

// apiRefusals counts the requests and connections the API refused, by
// reason, and rate-limits the log lines about them.
type apiRefusals struct {
	counts map[string]*atomic.Uint64 // fixed keys: refusalReasons
	log    *ratelog.Warner
}

// refusalLogInterval is the least time between two log lines about refused
// API requests: a hostile page must not fill the disk through our logs.
const refusalLogInterval = 10 * time.Second

func newAPIRefusals(logger *slog.Logger) *apiRefusals {
	r := &apiRefusals{counts: map[string]*atomic.Uint64{}, log: ratelog.New(logger, time.Now, refusalLogInterval, "api: request refused")}
	for _, reason := range refusalReasons {
		r.counts[reason] = new(atomic.Uint64)
	}
	return r
}

func (r *apiRefusals) count(reason string, attrs ...any) {
	r.counts[reason].Add(1)
	r.log.Warn(append([]any{"reason", reason}, attrs...)...)
}

// get returns the count of one reason.
func (r *apiRefusals) get(reason string) uint64 { return r.counts[reason].Load() }

// apiGuard holds what the browser protections compare requests with.
type apiGuard struct {
	unix bool // the API is a unix socket, which no browser reaches
	// hosts are the Host names accepted besides loopback ones: the
	// configured API host and the one actually listened on.
	hosts map[string]bool
	// anyIP accepts every IP literal as Host: the API listens on a wildcard
	// address. A literal IP cannot be rebound by DNS.
	anyIP       bool
	bodyTimeout time.Duration
	refusals    *apiRefusals
}

func newAPIGuard(configured string, listener net.Addr, bodyTimeout time.Duration, refusals *apiRefusals) *apiGuard {
	g := &apiGuard{hosts: map[string]bool{}, bodyTimeout: bodyTimeout, refusals: refusals}
	if strings.HasPrefix(configured, "unix:") || listener.Network() == "unix" {
		g.unix = true
		return g
	}
	for _, addr := range []string{configured, listener.String()} {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			continue
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			g.anyIP = true
			continue
		}
		if host != "" {
			g.hosts[strings.ToLower(host)] = true
		}
	}
	return g
}

// hostAllowed reports whether a request's Host names this machine's
// loopback interface or the API's own address. Any other name is what a
// DNS rebinding attack sends.
func (g *apiGuard) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	if host == "localhost" || g.hosts[host] {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.IsLoopback() || g.anyIP)
}

// changesState reports whether a method may change something: the methods
// an Origin check guards.
func changesState(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// protect bounds the time a request's body may take to arrive and refuses
// requests that a web page could have made: a foreign Host (DNS rebinding)
// and, on methods that change state, a foreign Origin. The bound comes
// first: the server reads the unread body of a refused request before it
// answers, and a body sent a byte at a time must not hold the connection
// there either.
func (g *apiGuard) protect(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.bodyTimeout > 0 && r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			if rc.SetReadDeadline(time.Now().Add(g.bodyTimeout)) == nil {
				r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, refusals: g.refusals}
			}
		}
		if !g.unix && !g.hostAllowed(r.Host) {
			g.refusals.count(refusedHost, "host", r.Host, "path", r.URL.Path)
			writeError(w, errorf(http.StatusForbidden, CodeForbidden, "Host %q is not this agent's address: the API answers only to localhost, loopback addresses and its own address", r.Host))
			return
		}
		if origin := r.Header.Get("Origin"); origin != "" && changesState(r.Method) && !sameOrigin(origin, r.Host) {
			g.refusals.count(refusedOrigin, "origin", origin, "path", r.URL.Path)
			writeError(w, errorf(http.StatusForbidden, CodeForbidden, "Origin %q is not this agent: %s requests from web pages of other sites are refused", origin, r.Method))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sameOrigin reports whether origin is the agent's own: http:// and the
// Host the request was sent to (a page served by the agent itself).
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Scheme != "http" || u.Path != "" && u.Path != "/" {
		return false
	}
	return strings.EqualFold(u.Host, host)
}

// deadlineBody clears the connection's read deadline once the body has been
// read to its end, so that a handler still working (or a stream) is not cut
// off; a read that hits the deadline is counted.
type deadlineBody struct {
	io.ReadCloser
	rc       *http.ResponseController
	refusals *apiRefusals
	done     bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !b.done {
		b.done = true
		var netErr net.Error
		if errors.As(err, &netErr) && netErr.Timeout() {
			b.refusals.count(refusedBodyTimeout)
		} else {
			_ = b.rc.SetReadDeadline(time.Time{})
		}
	}
	return n, err
}

// requireJSON refuses a body whose Content-Type is not application/json: a
// web page can send text/plain, form data or multipart to another site
// without asking (a CORS "simple request"), never application/json. The
// refusal is 403, like the Host and Origin checks it stands beside: a
// protection against pages, whatever else the body holds.
func (a *Agent) requireJSON(r *http.Request) error {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/json" {
		a.refusals.count(refusedContentType, "content_type", r.Header.Get("Content-Type"), "path", r.URL.Path)
		return errorf(http.StatusForbidden, CodeUnsupportedMediaType, "Content-Type %q: send the JSON body with Content-Type: application/json", r.Header.Get("Content-Type"))
	}
	return nil
}

// limitListener closes connections beyond max open at once (the API's cap),
// counting them, instead of letting slow clients hold without bound
// goroutines and file descriptors. Written here rather than taken from
// golang.org/x/net/netutil, which blocks Accept instead of refusing and is
// not a dependency of the module.
type limitListener struct {
	net.Listener
	slots    chan struct{}
	refusals *apiRefusals
}

func newLimitListener(l net.Listener, max int, refusals *apiRefusals) net.Listener {
	return &limitListener{Listener: l, slots: make(chan struct{}, max), refusals: refusals}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
			c.Close()
			l.refusals.count(refusedTooManyConn, "limit", cap(l.slots))
		}
	}
}

// limitedConn gives its slot back once, when closed.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
