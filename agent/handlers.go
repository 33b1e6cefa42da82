package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Handler is a parsed event handler: Command runs (through /bin/sh -c) for
// every event its filter matches.
//
// Syntax: FILTER=COMMAND, split at the first '='. FILTER is one of
//
//	msg             every message received (broadcast or direct)
//	msg:broadcast   broadcasts only
//	msg:direct      direct messages only (send-one, replies)
//	member          every membership change
//	member:join     (or member:leave, member:fail) one kind of change
//	kv              every change of a key (put or delete)
//	kv:PREFIX       changes of keys starting with PREFIX (no '=' in it)
//	sync            records learnt while joining (see below)
//	sync:PREFIX     the same, for keys starting with PREFIX
//
// The command gets the event's data on stdin (the message's JSON, the key's
// new value, or the member event as JSON) and details in the environment:
// P2P_EVENT (message, member-join, member-leave, member-fail, kv-put,
// kv-delete, sync-put, sync-delete), P2P_NODE_ID and P2P_NODE_NAME (this
// agent), and per event P2P_FROM, P2P_FROM_ADDR, P2P_DIRECT, P2P_HOPS
// (messages), P2P_MEMBER_ID, P2P_MEMBER_ADDR (members), P2P_KEY,
// P2P_VERSION, P2P_WRITER (keys).
//
// kv handlers fire on live changes only: not for the keys present at
// start-up, and not for records the node learns while it catches up with
// the network (records written before this agent started, by the writer's
// clock, and deletes of keys this node never held). Those are "sync" events,
// which only sync handlers receive. Neither kind fires for the agent's
// internal keys (InternalPrefix) unless the handler's PREFIX starts with
// InternalPrefix.
type Handler struct {
	// Kind is msg, member, kv or sync.
	Kind string
	// Sub is broadcast or direct (msg), join, leave or fail (member), or
	// empty for every event of the kind.
	Sub string
	// Prefix is the key prefix of a kv or sync handler.
	Prefix string
	// Command is the shell command.
	Command string
}

// ParseHandler parses one handler specification (see Handler).
func ParseHandler(spec string) (Handler, error) {
	filter, command, ok := strings.Cut(spec, "=")
	filter = strings.TrimSpace(filter)
	command = strings.TrimSpace(command)
	if !ok || command == "" {
		return Handler{}, fmt.Errorf("agent: handler %q: want FILTER=COMMAND", spec)
	}
	kind, arg, hasArg := strings.Cut(filter, ":")
	h := Handler{Kind: kind, Command: command}
	switch kind {
	case "msg":
		if hasArg && arg != "broadcast" && arg != "direct" {
			return Handler{}, fmt.Errorf("agent: handler %q: filter msg:%s: want msg, msg:broadcast or msg:direct", spec, arg)
		}
		h.Sub = arg
	case "member":
		if hasArg && arg != "join" && arg != "leave" && arg != "fail" {
			return Handler{}, fmt.Errorf("agent: handler %q: filter member:%s: want member, member:join, member:leave or member:fail", spec, arg)
		}
		h.Sub = arg
	case "kv", "sync":
		h.Prefix = arg
	default:
		return Handler{}, fmt.Errorf("agent: handler %q: unknown filter %q: want msg, member, kv[:PREFIX] or sync[:PREFIX]", spec, filter)
	}
	return h, nil
}

func parseHandlers(specs []string) ([]Handler, error) {
	out := make([]Handler, 0, len(specs))
	for _, s := range specs {
		h, err := ParseHandler(s)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

// handlerEvent is one event offered to the handlers.
type handlerEvent struct {
	kind  string // msg, member, kv, sync
	sub   string // broadcast/direct, join/leave/fail, put/delete
	key   string
	name  string // P2P_EVENT
	stdin []byte
	env   []string
}

func (h Handler) matches(ev handlerEvent) bool {
	if h.Kind != ev.kind {
		return false
	}
	if h.Kind == "kv" || h.Kind == "sync" {
		if strings.HasPrefix(ev.key, InternalPrefix) && !strings.HasPrefix(h.Prefix, InternalPrefix) {
			return false
		}
		return strings.HasPrefix(ev.key, h.Prefix)
	}
	return h.Sub == "" || h.Sub == ev.sub
}

type handlerJob struct {
	handler Handler
	event   handlerEvent
}

// handlerPool runs handler commands on a fixed number of workers fed by a
// bounded queue. An event that finds the queue full is dropped for that
// handler, counted and logged: handlers never slow the node down.
type handlerPool struct {
	logger  *slog.Logger
	timeout time.Duration
	baseEnv func() []string // P2P_NODE_ID, P2P_NODE_NAME (the name is reloadable)

	handlers atomic.Pointer[[]Handler]
	queue    chan handlerJob
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	runsOK, runsFailed, dropped atomic.Uint64
}

func newHandlerPool(logger *slog.Logger, workers int, timeout time.Duration, baseEnv func() []string, handlers []Handler) *handlerPool {
	ctx, cancel := context.WithCancel(context.Background())
	p := &handlerPool{
		logger:  logger,
		timeout: timeout,
		baseEnv: baseEnv,
		queue:   make(chan handlerJob, DefaultHandlerQueueLen),
		ctx:     ctx,
		cancel:  cancel,
	}
	p.setHandlers(handlers)
	for range workers {
		p.wg.Add(1)
		go p.work()
	}
	return p
}

func (p *handlerPool) setHandlers(hs []Handler) { p.handlers.Store(&hs) }

// wants reports whether some handler has the given kind (to skip building
// events nobody handles).
func (p *handlerPool) wants(kind string) bool {
	for _, h := range *p.handlers.Load() {
		if h.Kind == kind {
			return true
		}
	}
	return false
}

// dispatch queues ev for every matching handler without blocking.
func (p *handlerPool) dispatch(ev handlerEvent) {
	if p.ctx.Err() != nil {
		return
	}
	for _, h := range *p.handlers.Load() {
		if !h.matches(ev) {
			continue
		}
		select {
		case p.queue <- handlerJob{handler: h, event: ev}:
		default:
			p.dropped.Add(1)
			p.logger.Warn("handler queue full, event dropped", "event", ev.name, "key", ev.key, "command", h.Command)
		}
	}
}

func (p *handlerPool) work() {
	defer p.wg.Done()
	for {
		select {
		case <-p.ctx.Done():
			return
		case job := <-p.queue:
			p.run(job)
		}
	}
}

// maxHandlerOutput bounds the output of a handler kept for the log.
const maxHandlerOutput = 4 << 10

func (p *handlerPool) run(job handlerJob) {
	ctx, cancel := context.WithTimeout(p.ctx, p.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", job.handler.Command)
	cmd.Stdin = bytes.NewReader(job.event.stdin)
	cmd.Env = os.Environ()
	if p.baseEnv != nil {
		cmd.Env = append(cmd.Env, p.baseEnv()...)
	}
	cmd.Env = append(cmd.Env, job.event.env...)
	out := &limitedBuffer{limit: maxHandlerOutput}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.WaitDelay = time.Second
	start := time.Now()
	err := cmd.Run()
	attrs := []any{"event", job.event.name, "command", job.handler.Command, "duration", time.Since(start).Round(time.Millisecond)}
	if job.event.key != "" {
		attrs = append(attrs, "key", job.event.key)
	}
	if err != nil {
		p.runsFailed.Add(1)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("killed after %v: %w", p.timeout, err)
		}
		p.logger.Warn("handler failed", append(attrs, "err", err, "output", out.String())...)
		return
	}
	p.runsOK.Add(1)
	p.logger.Debug("handler ran", append(attrs, "output", out.String())...)
}

// close kills running commands and waits for the workers.
func (p *handlerPool) close() {
	p.cancel()
	p.wg.Wait()
}

// limitedBuffer keeps the first limit bytes written to it.
type limitedBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	limit int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.limit - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(b.buf.String())
}

func messageEvent(from, fromAddr string, direct bool, hops int, data []byte) handlerEvent {
	sub := "broadcast"
	if direct {
		sub = "direct"
	}
	return handlerEvent{
		kind: "msg", sub: sub, name: "message", stdin: data,
		env: []string{"P2P_EVENT=message", "P2P_FROM=" + from, "P2P_FROM_ADDR=" + fromAddr,
			"P2P_DIRECT=" + strconv.FormatBool(direct), "P2P_HOPS=" + strconv.Itoa(hops)},
	}
}

func memberEvent(kind, id, addr string, data []byte) handlerEvent {
	name := "member-" + kind
	return handlerEvent{
		kind: "member", sub: kind, name: name, stdin: data,
		env: []string{"P2P_EVENT=" + name, "P2P_MEMBER_ID=" + id, "P2P_MEMBER_ADDR=" + addr},
	}
}

func kvEvent(rec Record) handlerEvent { return keyEvent("kv", rec) }

// syncEvent is a record learnt while catching up with the network.
func syncEvent(rec Record) handlerEvent { return keyEvent("sync", rec) }

func keyEvent(kind string, rec Record) handlerEvent {
	sub := "put"
	if rec.Deleted {
		sub = "delete"
	}
	name := kind + "-" + sub
	return handlerEvent{
		kind: kind, sub: sub, key: rec.Key, name: name, stdin: rec.Value,
		env: []string{"P2P_EVENT=" + name, "P2P_KEY=" + rec.Key, "P2P_VERSION=" + rec.Version, "P2P_WRITER=" + rec.Writer},
	}
}
