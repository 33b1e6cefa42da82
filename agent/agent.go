package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2p-go/p2p"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport/tcp"
)

// StateFile is the file in the data directory where a running agent writes
// its AgentState, so that scripts and tests find the addresses it actually
// listens on (with port 0, the kernel picks them).
const StateFile = "agent.json"

// AgentState is the content of StateFile.
type AgentState struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
	API  string `json:"api"`
	PID  int    `json:"pid"`
}

// joinProgressInterval is how often an agent without a neighbour logs that
// it is still trying.
const joinProgressInterval = 5 * time.Second

// Agent is a node of the network with a local HTTP API, event handlers and
// synced files. Create it with New, then Start; Close leaves the network.
type Agent struct {
	cfg      Config
	logger   *slog.Logger
	level    *slog.LevelVar // nil when Config.Logger was given
	node     *p2p.Broadcaster
	tr       *tcp.Transport // nil when Config.Node installed another transport
	listener net.Listener
	server   *http.Server
	handlers *handlerPool
	events   *eventHub
	metrics  *agentMetrics
	refusals *apiRefusals // API requests refused by the browser protections
	started  time.Time
	lock     *os.File // LockFile, held until Close
	cluster  clusterState

	mu       sync.Mutex // guards name, tags, syncs, names
	name     string
	tags     map[string]string
	names    map[string]string // node ID -> published name, from NodesPrefix
	syncs    []SyncSpec
	syncsKey map[string][]string // key -> paths, rebuilt with syncs

	streamDrops atomic.Uint64

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	startOnce sync.Once
	closeOnce sync.Once
	closeErr  error
}

// New creates an agent: it locks and opens the data directory (see
// LockFile; a directory held by another agent fails with ErrDataDirInUse),
// the overlay's socket and the API's listener, but neither joins nor serves
// until Start.
func New(cfg Config) (*Agent, error) {
	checked, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	lock, err := lockDataDir(checked.DataDir)
	if err != nil {
		return nil, err
	}
	a, err := newAgent(cfg)
	if err != nil {
		lock.Close()
		return nil, err
	}
	a.lock = lock
	return a, nil
}

func newAgent(cfg Config) (*Agent, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	handlers, _ := parseHandlers(cfg.Handlers)
	syncs, _ := parseSyncs(cfg.Sync)
	secret, err := cfg.secret()
	if err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, events: newEventHub(), metrics: newAgentMetrics(), name: cfg.Name, tags: cfg.Tags}
	a.setSyncs(syncs)
	a.logger = cfg.Logger
	if a.logger == nil {
		a.level = new(slog.LevelVar)
		level, _ := parseLevel(cfg.LogLevel)
		a.level.Set(level)
		a.logger = newLogger(cfg.LogOutput, cfg.LogFormat, a.level)
	}
	a.listener, err = listenAPI(cfg.API)
	if err != nil {
		return nil, err
	}
	a.refusals = newAPIRefusals(a.logger)
	guard := newAPIGuard(cfg.API, a.listener.Addr(), cfg.APIBodyTimeout, a.refusals)
	a.listener = newLimitListener(a.listener, cfg.APIMaxConns, a.refusals)
	key, err := peer.LoadOrCreateKey(cfg.DataDir)
	if err != nil {
		a.listener.Close()
		return nil, fmt.Errorf("agent: %w", err)
	}
	if cfg.Secret == "" && cfg.SecretFile != "" {
		WarnLooseMode(a.logger, cfg.SecretFile, "cluster secret")
	}
	if cfg.APITokenFile != "" {
		WarnLooseMode(a.logger, cfg.APITokenFile, "API token")
	}
	if cfg.secretsIn != "" {
		if mode, loose, _ := LooseMode(cfg.secretsIn); loose {
			a.logger.Warn("configuration file holds a secret and is readable by other users: run chmod 600 on it", "path", cfg.secretsIn, "mode", fmt.Sprintf("%#o", mode))
		}
	}
	WarnLooseMode(a.logger, filepath.Join(cfg.DataDir, peer.KeyFile), "node key")
	ncfg := p2p.Config{
		Bootstrap: cfg.Join, ListenAddr: cfg.Listen, AdvertiseAddr: cfg.Advertise,
		DataDir: cfg.DataDir, Secret: secret, Logger: a.logger, Key: key, Name: cfg.Name, Tags: cfg.Tags,
		SignBroadcasts: cfg.SignBroadcasts,
	}
	if ncfg.Admins, err = parseAdmins(cfg.Admins); err != nil {
		a.listener.Close()
		return nil, fmt.Errorf("agent: %w", err)
	}
	if cfg.Node != nil {
		cfg.Node(&ncfg)
	}
	if ncfg.Transport == nil {
		// The keyring kept in the data directory, when a rotation wrote
		// one, wins over the configured secret.
		keyring, err := p2p.OpenKeyring(ncfg.DataDir, ncfg.Secret, a.logger)
		if err != nil {
			a.listener.Close()
			return nil, fmt.Errorf("agent: %w", err)
		}
		tr, err := tcp.Listen(tcp.Config{
			ListenAddr: ncfg.ListenAddr, AdvertiseAddr: ncfg.AdvertiseAddr, Key: ncfg.Key,
			Keyring: keyring, MaxFrameSize: ncfg.MaxMessageSize, Logger: a.logger,
		})
		if err != nil {
			a.listener.Close()
			return nil, fmt.Errorf("agent: listen on %s: %w", ncfg.ListenAddr, err)
		}
		a.tr = tr
		ncfg.Transport = tr
	}
	a.node, err = p2p.NewBroadcaster(ncfg)
	if err != nil {
		a.listener.Close()
		return nil, fmt.Errorf("agent: %w", err)
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	a.handlers = newHandlerPool(a.logger, cfg.HandlerConcurrency, cfg.HandlerTimeout, func() []string {
		a.mu.Lock()
		defer a.mu.Unlock()
		return []string{"P2P_NODE_ID=" + key.ID().String(), "P2P_NODE_NAME=" + a.name}
	}, handlers)
	a.registerMetrics()
	a.server = &http.Server{
		Handler:           guard.protect(a.routes()),
		ReadHeaderTimeout: cfg.APIHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return a.ctx },
		ErrorLog:          slog.NewLogLogger(a.logger.Handler(), slog.LevelDebug),
	}
	// Register before Start so that no message is missed.
	a.node.React(a.onMessage)
	a.node.OnMemberEvent(a.onMemberEvent)
	return a, nil
}

func newLogger(out io.Writer, format string, level *slog.LevelVar) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(out, opts))
	}
	return slog.New(slog.NewTextHandler(out, opts))
}

// listenAPI listens on host:port or unix:/path. A unix socket left behind
// by an agent that died is removed; one in use is an error.
func listenAPI(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if _, err := os.Stat(path); err == nil {
			if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
				c.Close()
				return nil, fmt.Errorf("agent: API socket %s is in use by another agent", path)
			}
			_ = os.Remove(path)
		}
		l, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("agent: API listen on %s: %w", addr, err)
		}
		if err := os.Chmod(path, 0o600); err != nil {
			l.Close()
			return nil, fmt.Errorf("agent: API socket %s: %w", path, err)
		}
		return l, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("agent: API listen on %s: %w", addr, err)
	}
	return l, nil
}

// Node returns the agent's node.
func (a *Agent) Node() *p2p.Broadcaster { return a.node }

// Logger returns the agent's logger.
func (a *Agent) Logger() *slog.Logger { return a.logger }

// APIAddr returns the API's actual address: host:port, or unix:/path.
func (a *Agent) APIAddr() string {
	if a.listener.Addr().Network() == "unix" {
		return "unix:" + a.listener.Addr().String()
	}
	return a.listener.Addr().String()
}

// Start joins the network, publishes the node's name and tags, serves the
// API, starts the handlers and the synced files, and writes StateFile.
func (a *Agent) Start() error {
	err := p2p.ErrClosed
	a.startOnce.Do(func() {
		if a.ctx.Err() != nil {
			return
		}
		a.started = time.Now()
		if err = a.node.Start(a.ctx); err != nil {
			return
		}
		watch, werr := a.node.Store().Watch(a.ctx, "")
		if werr != nil {
			err = werr
			return
		}
		a.wg.Add(3)
		go a.serve()
		go a.watchStore(watch)
		go a.logJoinProgress()
		if err = a.publishNodeInfo(a.ctx); err != nil {
			return
		}
		err = writeFileAtomic(filepath.Join(a.cfg.DataDir, StateFile), a.stateJSON(), 0o644)
		a.logger.Info("agent running", "id", a.node.ID(), "name", a.cfg.Name, "addr", a.node.Addr(), "api", a.APIAddr())
	})
	return err
}

func (a *Agent) stateJSON() []byte {
	data, _ := json.Marshal(AgentState{ID: a.node.ID().String(), Addr: a.node.Addr(), API: a.APIAddr(), PID: os.Getpid()})
	return append(data, '\n')
}

func (a *Agent) serve() {
	defer a.wg.Done()
	if err := a.server.Serve(a.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
		a.logger.Error("api server stopped", "err", err)
	}
}

func (a *Agent) logJoinProgress() {
	defer a.wg.Done()
	if len(a.cfg.Join) == 0 {
		a.logger.Info("started a new network: waiting for other nodes to join", "addr", a.node.Addr())
	}
	ticker := time.NewTicker(joinProgressInterval)
	defer ticker.Stop()
	waited := time.Duration(0)
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-a.node.Joined():
			a.logger.Info("joined: linked to the network")
			return
		case <-ticker.C:
			waited += joinProgressInterval
			if len(a.cfg.Join) > 0 {
				a.logger.Info("still joining: no member of the network has answered yet, the overlay retries every second", "join", a.cfg.Join, "waited", waited)
			}
		}
	}
}

func (a *Agent) nodeInfo() NodeInfo {
	a.mu.Lock()
	defer a.mu.Unlock()
	return NodeInfo{ID: a.node.ID().String(), Name: a.name, Addr: a.node.Addr(), Tags: maps.Clone(a.tags)}
}

// publishNodeInfo writes the node's NodeInfo to the store unless it is
// already there unchanged.
func (a *Agent) publishNodeInfo(ctx context.Context) error {
	info := a.nodeInfo()
	data, err := json.Marshal(info)
	if err != nil {
		return err
	}
	key := NodesPrefix + info.ID
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	if rec, err := a.node.Store().Get(ctx, key); err == nil && string(rec.Value) == string(data) {
		return nil
	}
	if _, err := a.node.Store().Put(ctx, key, data); err != nil {
		return fmt.Errorf("agent: publish node info under %q: %w", key, err)
	}
	return nil
}

// watchStore feeds the synced files, the kv handlers and the propagation
// histogram from one watch of the whole store, in the store's order.
func (a *Agent) watchStore(events <-chan p2p.WatchEvent) {
	defer a.wg.Done()
	self := a.node.ID()
	held := map[string]bool{} // the live keys, to tell a delete of a key never held
	for {
		for ev := range events {
			switch {
			case ev.Err != nil:
				a.logger.Warn("store watch fell behind; restarting it (changes in between reach handlers only through the re-read)", "err", ev.Err)
				clear(held)
			case ev.Synced:
			default:
				rec := recordOf(ev.Record)
				a.applySyncs(rec)
				if strings.HasPrefix(rec.Key, NodesPrefix) {
					a.learnName(rec)
				}
				wasHeld := held[rec.Key]
				if rec.Deleted {
					delete(held, rec.Key)
				} else {
					held[rec.Key] = true
				}
				if ev.Initial {
					continue
				}
				if ev.Record.Version.Writer != self {
					a.metrics.propagation.Observe(time.Since(ev.Record.Version.Time.Time()).Seconds())
				}
				// A record written before this agent started, or the delete
				// of a key it never held, is the node catching up, not a
				// change the cluster made now.
				if ev.Record.Version.Time.Time().Before(a.started) || (rec.Deleted && !wasHeld) {
					if a.handlers.wants("sync") {
						a.handlers.dispatch(syncEvent(rec))
					}
				} else if a.handlers.wants("kv") {
					a.handlers.dispatch(kvEvent(rec))
				}
			}
		}
		if a.ctx.Err() != nil {
			return
		}
		var err error
		if events, err = a.node.Store().Watch(a.ctx, ""); err != nil {
			return // the node is closed
		}
	}
}

// learnName keeps the name a node published under NodesPrefix, for the
// events stream.
func (a *Agent) learnName(rec Record) {
	id := strings.TrimPrefix(rec.Key, NodesPrefix)
	var ni NodeInfo
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.names == nil {
		a.names = map[string]string{}
	}
	if rec.Deleted || json.Unmarshal(rec.Value, &ni) != nil || ni.ID != id {
		delete(a.names, id)
		return
	}
	a.names[id] = ni.Name
}

// nameOf returns the name the node id published, or "".
func (a *Agent) nameOf(id string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.names[id]
}

func (a *Agent) setSyncs(syncs []SyncSpec) {
	byKey := map[string][]string{}
	for _, s := range syncs {
		byKey[s.Key] = append(byKey[s.Key], s.Path)
	}
	a.mu.Lock()
	a.syncs, a.syncsKey = syncs, byKey
	a.mu.Unlock()
}

func (a *Agent) applySyncs(rec Record) {
	a.mu.Lock()
	paths := a.syncsKey[rec.Key]
	a.mu.Unlock()
	for _, path := range paths {
		changed, err := syncFile(path, rec)
		switch {
		case err != nil:
			a.logger.Warn("sync failed", "key", rec.Key, "path", path, "err", err)
		case changed:
			a.logger.Info("synced file", "key", rec.Key, "path", path, "deleted", rec.Deleted)
		}
	}
}

// onMessage runs on the node's reactor goroutine.
func (a *Agent) onMessage(m *p2p.Message) {
	if a.handleAgentMessage(m) {
		return
	}
	if !m.Direct {
		a.metrics.hops.Observe(float64(m.Hops))
	}
	from := m.From.String()
	a.streamDrops.Add(uint64(a.events.publish(Event{Type: "message", From: from, Name: a.nameOf(from), FromAddr: m.FromAddr, Direct: m.Direct, Hops: m.Hops, Data: m.Data})))
	if a.handlers.wants("msg") {
		a.handlers.dispatch(messageEvent(from, m.FromAddr, m.Direct, m.Hops, m.Data))
	}
}

// onMemberEvent runs on the node's member-event goroutine.
func (a *Agent) onMemberEvent(e p2p.MemberEvent) {
	id, kind := e.Member.ID.String(), string(e.Kind)
	ev := Event{Type: "member", Kind: kind, ID: id, Name: a.nameOf(id), Addr: e.Member.Addr}
	a.logger.Info("member "+kind, "peer", e.Member.ID.Short(), "addr", e.Member.Addr)
	a.noteMember(kind, id, e.Member.Addr)
	a.streamDrops.Add(uint64(a.events.publish(ev)))
	if a.handlers.wants("member") {
		data, _ := json.Marshal(ev)
		a.handlers.dispatch(memberEvent(kind, id, e.Member.Addr, data))
	}
}

// Reload applies the reloadable settings of cfg (log level, name, tags,
// handlers, synced files: see Setting.Reloadable) and logs those that
// changed but need a restart. A cfg that fails validation changes nothing.
func (a *Agent) Reload(cfg Config) error {
	next, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	handlers, _ := parseHandlers(next.Handlers)
	syncs, _ := parseSyncs(next.Sync)
	var ignored []string
	cur := a.cfg
	for name, changed := range map[string]bool{
		"data": next.DataDir != cur.DataDir, "listen": next.Listen != cur.Listen, "advertise": next.Advertise != cur.Advertise,
		"join": !slices.Equal(next.Join, cur.Join), "secret": next.Secret != cur.Secret || next.SecretFile != cur.SecretFile,
		"api": next.API != cur.API, "api-token": next.APIToken != cur.APIToken || next.APITokenFile != cur.APITokenFile, "log-format": next.LogFormat != cur.LogFormat,
		"handler-concurrency": next.HandlerConcurrency != cur.HandlerConcurrency, "handler-timeout": next.HandlerTimeout != cur.HandlerTimeout,
		"sign-broadcasts": next.SignBroadcasts != cur.SignBroadcasts,
	} {
		if changed {
			ignored = append(ignored, name)
		}
	}
	if a.level != nil {
		level, _ := parseLevel(next.LogLevel)
		a.level.Set(level)
	}
	a.handlers.setHandlers(handlers)
	a.setSyncs(syncs)
	a.mu.Lock()
	a.name, a.tags = next.Name, next.Tags
	a.mu.Unlock()
	if len(ignored) > 0 {
		slices.Sort(ignored)
		a.logger.Warn("reload: these settings need a restart and were not applied", "settings", ignored)
	}
	// Bring the newly synced files up to date.
	ctx, cancel := context.WithTimeout(a.ctx, apiTimeout)
	defer cancel()
	for _, s := range syncs {
		rec, err := a.node.Store().Get(ctx, s.Key)
		if errors.Is(err, p2p.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		a.applySyncs(recordOf(rec))
	}
	if err := a.publishNodeInfo(a.ctx); err != nil {
		return err
	}
	a.logger.Info("reloaded", "log_level", next.LogLevel, "handlers", len(handlers), "syncs", len(syncs))
	return nil
}

// Close leaves the network politely, stops the API (ending its streams),
// kills running handler commands, waits for every goroutine and removes
// StateFile. It may be called more than once.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() {
		a.cancel()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.server.Shutdown(shutdownCtx); err != nil {
			a.server.Close()
		}
		// Serve was never called when Start was not: close the listener.
		a.listener.Close()
		a.closeErr = a.node.Close()
		a.events.close()
		a.handlers.close()
		a.wg.Wait()
		if !a.started.IsZero() {
			_ = os.Remove(filepath.Join(a.cfg.DataDir, StateFile))
		}
		a.lock.Close() // releases the flock
		a.logger.Info("agent stopped")
	})
	return a.closeErr
}
