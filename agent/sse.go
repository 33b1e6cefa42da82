package agent

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// streamBuffer is the number of events an API stream client may fall behind
// before its stream is closed with an "error" event.
const streamBuffer = 1024

// sseKeepAlive is the period of the comment lines that keep idle streams
// open through proxies.
const sseKeepAlive = 15 * time.Second

// eventHub fans events out to the API's /v1/events streams. Publish never
// blocks: a subscriber whose buffer is full is dropped (its channel closes
// and its overflowed flag is set).
type eventHub struct {
	mu     sync.Mutex // guards subs, closed
	subs   map[*subscriber]struct{}
	closed bool
}

type subscriber struct {
	events     chan Event
	overflowed bool // set under eventHub.mu before events is closed
}

func newEventHub() *eventHub { return &eventHub{subs: map[*subscriber]struct{}{}} }

func (h *eventHub) subscribe() (*subscriber, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, false
	}
	s := &subscriber{events: make(chan Event, streamBuffer)}
	h.subs[s] = struct{}{}
	return s, true
}

func (h *eventHub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.events)
	}
}

// publish hands ev to every subscriber and returns how many were dropped.
func (h *eventHub) publish(ev Event) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	dropped := 0
	for s := range h.subs {
		select {
		case s.events <- ev:
		default:
			s.overflowed = true
			delete(h.subs, s)
			close(s.events)
			dropped++
		}
	}
	return dropped
}

func (h *eventHub) overflowed(s *subscriber) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return s.overflowed
}

func (h *eventHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		delete(h.subs, s)
		close(s.events)
	}
}

// sseWriter writes server-sent events.
type sseWriter struct {
	w       http.ResponseWriter
	flusher http.Flusher
}

// startSSE sends the stream's headers and a first comment, so that the
// client knows the subscription is in place once it reads them.
func startSSE(w http.ResponseWriter) (*sseWriter, error) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		return nil, fmt.Errorf("response writer cannot stream")
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s := &sseWriter{w: w, flusher: flusher}
	if err := s.comment("stream open"); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *sseWriter) send(event string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(s.w, "event: %s\ndata: %s\n\n", event, data); err != nil {
		return err
	}
	s.flusher.Flush()
	return nil
}

func (s *sseWriter) comment(text string) error {
	if _, err := fmt.Fprintf(s.w, ": %s\n\n", text); err != nil {
		return err
	}
	s.flusher.Flush()
	return nil
}
