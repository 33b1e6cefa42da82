package watch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/p2p-go/p2p/internal/testutil"
	"github.com/p2p-go/p2p/kv"
	"github.com/p2p-go/p2p/peer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// writer is the node named as every test record's writer.
var writer = peer.IDFromPublicKey(make([]byte, 32))

func watchRecord(key, value string, wall int64) Record {
	rec := Record{Key: key, Value: []byte(value), Version: kv.Version{Time: kv.HLC{Wall: wall}, Writer: writer}}
	if value == "" {
		rec.Deleted = true
		rec.Value = nil
	}
	return rec
}

// receive reads one event, failing after a deadline.
func receive(t *testing.T, events <-chan Event) (Event, bool) {
	t.Helper()
	select {
	case e, ok := <-events:
		return e, ok
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
		return Event{}, false
	}
}

func TestWatchYieldsSnapshotThenChanges(t *testing.T) {
	hub := New(0)
	defer hub.Close()
	hub.Publish(watchRecord("app/b", "2", 1), watchRecord("app/a", "1", 1), watchRecord("db/x", "x", 1))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := hub.Watch(ctx, "app/")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"app/a", "app/b"} {
		if e, _ := receive(t, events); !e.Initial || e.Record.Key != want {
			t.Fatalf("event %+v, want initial %s", e, want)
		}
	}
	if e, _ := receive(t, events); !e.Synced {
		t.Fatalf("event %+v, want Synced", e)
	}
	hub.Publish(watchRecord("db/y", "y", 2), watchRecord("app/c", "3", 2), watchRecord("app/a", "", 3))
	hub.Publish(watchRecord("app/c", "stale", 1)) // older than what the hub holds: ignored
	if e, _ := receive(t, events); e.Initial || e.Record.Key != "app/c" || string(e.Record.Value) != "3" {
		t.Fatalf("event %+v, want app/c", e)
	}
	if e, _ := receive(t, events); e.Record.Key != "app/a" || !e.Record.Deleted {
		t.Fatalf("event %+v, want app/a deleted", e)
	}
	cancel()
	if e, ok := receive(t, events); ok {
		t.Fatalf("event %+v after cancel, want the channel closed", e)
	}
	testutil.Eventually(t, 10*time.Second, "the hub to have no watcher left", func() bool { return hub.Len() == 0 })
}

// Watchers started while changes are being published miss none: the state
// each watcher rebuilds from its snapshot and events equals the final state.
func TestWatchMissesNoUpdateBetweenSnapshotAndChanges(t *testing.T) {
	hub := New(100_000)
	defer hub.Close()
	const writes = 2000
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	views := make([]map[string]string, 8)
	// Watcher w starts when the publisher reaches write w*writes/8, and
	// takes its snapshot while publishing goes on.
	start := make([]chan struct{}, len(views))
	for w := range views {
		start[w] = make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start[w]
			events, err := hub.Watch(ctx, "")
			if err != nil {
				t.Error(err)
				return
			}
			view := map[string]string{}
			synced := false
			for e := range events {
				switch {
				case e.Err != nil:
					t.Error(e.Err)
					return
				case e.Synced:
					synced = true
				case e.Record.Deleted:
					delete(view, e.Record.Key)
				default:
					view[e.Record.Key] = string(e.Record.Value)
				}
				// "done" is the last write; it may come in the snapshot.
				if _, done := view["done"]; done && synced {
					break
				}
			}
			views[w] = view
		}()
	}
	final := map[string]string{}
	for i := range writes {
		if i%(writes/len(views)) == 0 {
			close(start[i/(writes/len(views))])
		}
		key := fmt.Sprintf("k%d", i%50)
		value := fmt.Sprint(i)
		if i%7 == 0 {
			value = ""
			delete(final, key)
		} else {
			final[key] = value
		}
		hub.Publish(watchRecord(key, value, int64(i+1)))
	}
	hub.Publish(watchRecord("done", "1", writes+1))
	final["done"] = "1"
	wg.Wait()
	for w, view := range views {
		if fmt.Sprint(view) != fmt.Sprint(final) {
			t.Errorf("watcher %d rebuilt %d keys, want %d: %v", w, len(view), len(final), view)
		}
	}
}

// A watcher that falls more than its buffer behind is dropped with
// ErrTooSlow; Publish never blocks and other watchers go on.
func TestSlowWatcherIsDroppedWithAnError(t *testing.T) {
	hub := New(4)
	defer hub.Close()
	hub.Publish(watchRecord("a", "0", 1))
	slow, _ := hub.Watch(context.Background(), "")
	fast, _ := hub.Watch(context.Background(), "")
	fastSeen := make(chan int)
	go func() {
		n := 0
		for e := range fast {
			if e.Err != nil {
				t.Error(e.Err)
			}
			n++
		}
		fastSeen <- n
	}()
	for i := range 10 {
		hub.Publish(watchRecord("a", fmt.Sprint(i+1), int64(i+2)))
		testutil.Eventually(t, 10*time.Second, "the fast watcher to drain its channel", func() bool { return len(fast) == 0 })
	}
	var got []Event
	for e := range slow {
		got = append(got, e)
	}
	// Snapshot (1), Synced, 4 buffered changes, then the error.
	if len(got) != 7 || !errors.Is(got[6].Err, ErrTooSlow) || string(got[5].Record.Value) != "4" {
		t.Fatalf("slow watcher got %d events: %+v", len(got), got)
	}
	if hub.Len() != 1 {
		t.Errorf("%d watchers registered, want 1", hub.Len())
	}
	hub.Close()
	if n := <-fastSeen; n != 12 {
		t.Errorf("fast watcher saw %d events, want 12", n)
	}
	if _, err := hub.Watch(context.Background(), ""); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("Watch after Close = %v", err)
	}
	hub.Close()
}

func TestWatchWithDoneContextCloses(t *testing.T) {
	hub := New(0)
	defer hub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	events, err := hub.Watch(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for range events {
	}
	testutil.Eventually(t, 10*time.Second, "the hub to have no watcher left", func() bool { return hub.Len() == 0 })
}
