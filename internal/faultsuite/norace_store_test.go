//go:build !race

package faultsuite

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/p2p-go/p2p/agent"
)

// userPrefix holds every key the suite writes (the agents' own keys live
// under _agent/).
const userPrefix = "fs/"

// ack is one acknowledged write: the agent answered 200 to PUT.
type ack struct {
	key, value string
	by         *agentProc
	at         time.Time
}

// acks keeps acknowledged writes; safe for concurrent use.
type acks struct {
	mu   sync.Mutex // guards list
	list []ack
}

// put writes key=value through p's API and keeps the write if p
// acknowledged it.
func (a *acks) put(p *agentProc, key, value string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := p.client.Put(ctx, key, []byte(value)); err != nil {
		return fmt.Errorf("put %s on %s: %w", key, p.name, err)
	}
	a.mu.Lock()
	a.list = append(a.list, ack{key: key, value: value, by: p, at: time.Now()})
	a.mu.Unlock()
	return nil
}

// latest returns, per key, the value of the last acknowledged write among
// those keep selects. The suite writes a key twice only seconds apart, so
// the last acknowledged is the later write by the hybrid logical clock.
func (a *acks) latest(keep func(ack) bool) map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]string{}
	for _, w := range a.list {
		if keep == nil || keep(w) {
			out[w.key] = w.value
		}
	}
	return out
}

func (a *acks) all() []ack {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]ack(nil), a.list...)
}

// writer puts a new key every period on agents taken in turn, until
// stopped; failed writes are counted, not kept.
type writer struct {
	acks   *acks
	stopCh chan struct{}
	once   sync.Once
	done   chan struct{}
	failed int
}

func startWriter(a *acks, prefix string, agents []*agentProc, period time.Duration) *writer {
	w := &writer{acks: a, stopCh: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		ticker := time.NewTicker(period)
		defer ticker.Stop()
		for n := 0; ; n++ {
			p := agents[n%len(agents)]
			key := fmt.Sprintf("%s%s/%05d", userPrefix, prefix, n)
			if a.put(p, key, fmt.Sprintf("%s-%d", p.name, n)) != nil {
				w.failed++
			}
			select {
			case <-w.stopCh:
				return
			case <-ticker.C:
			}
		}
	}()
	return w
}

// stop ends the writes and returns how many failed; it may be called more
// than once.
func (w *writer) stop() int {
	w.once.Do(func() { close(w.stopCh) })
	<-w.done
	return w.failed
}

// storeView is what one agent shows of its store.
type storeView struct {
	records []agent.Record
	digest  string
}

func viewOf(p *agentProc) (storeView, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	records, err := p.client.List(ctx, "")
	if err != nil {
		return storeView{}, fmt.Errorf("list on %s: %w", p.name, err)
	}
	info, err := p.client.Info(ctx)
	if err != nil {
		return storeView{}, fmt.Errorf("info of %s: %w", p.name, err)
	}
	return storeView{records: records, digest: info.Store.Digest}, nil
}

// userValues returns the suite's live keys with their values.
func (v storeView) userValues() map[string]string {
	out := map[string]string{}
	for _, r := range v.records {
		if strings.HasPrefix(r.Key, userPrefix) && !r.Deleted {
			out[r.Key] = string(r.Value)
		}
	}
	return out
}

// storesAgree reports whether every agent shows the same listing (keys,
// values, versions, writers) and digest, and holds every key of want with
// its value; with exact, the suite's keys must be exactly want.
func storesAgree(agents []*agentProc, want map[string]string, exact bool) func() (bool, string) {
	return func() (bool, string) {
		var first storeView
		for i, p := range agents {
			v, err := viewOf(p)
			if err != nil {
				return false, err.Error()
			}
			got := v.userValues()
			if exact && len(got) != len(want) {
				return false, fmt.Sprintf("%s holds %d keys of the suite, want %d", p.name, len(got), len(want))
			}
			if missing := missingKeys(got, want); len(missing) > 0 {
				return false, fmt.Sprintf("%s lacks or has another value for %d of %d keys, e.g. %v", p.name, len(missing), len(want), missing[:min(3, len(missing))])
			}
			if i == 0 {
				first = v
				continue
			}
			if v.digest != first.digest || !reflect.DeepEqual(v.records, first.records) {
				return false, fmt.Sprintf("%s and %s hold different stores (%d and %d records, digests %.8s and %.8s)",
					agents[0].name, p.name, len(first.records), len(v.records), first.digest, v.digest)
			}
		}
		return true, ""
	}
}

// missingKeys returns the keys of want that got lacks or holds with another
// value, sorted.
func missingKeys(got, want map[string]string) []string {
	var out []string
	for k, v := range want {
		if got[k] != v {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
