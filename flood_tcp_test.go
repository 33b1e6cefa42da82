package p2p_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2p-go/p2p"
	"github.com/p2p-go/p2p/internal/testutil"
)

// Issue 10, row 2, end to end: an outsider keeps idle sockets open to a
// member, reopening each as soon as it is closed. A new node joins through
// that member within 5 s (before the transport's handshake limits: 17 tries
// and 17 s). As the issue ran it, with 400 sockets, and with other values:
// the sockets from the very address the new node dials from (127.0.0.1: no
// limit per address can tell them apart), and 2,000 of them (more than may
// wait for their first message, so that each new one closes the oldest).
func TestNewNodeJoinsWithin5sDuringAnIdleSocketFlood(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sources []string
		sockets int
	}{
		{"400 from 4 other addresses", []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}, 400},
		{"400 from the new node's address", []string{"127.0.0.1"}, 400},
		{"2000 from the new node's address", []string{"127.0.0.1"}, 2000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			secret, _ := p2p.ParseSecret(p2p.GenerateSecret())
			a, _ := startTCPNode(t, secret)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			defer func() { cancel(); wg.Wait() }()
			var opened atomic.Int64
			for i := range tc.sockets {
				source := net.ParseIP(tc.sources[i%len(tc.sources)])
				wg.Go(func() {
					dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: source}}
					for ctx.Err() == nil {
						raw, err := dialer.DialContext(ctx, "tcp", a.Addr())
						if err != nil {
							continue
						}
						opened.Add(1)
						stop := context.AfterFunc(ctx, func() { raw.Close() })
						io.Copy(io.Discard, raw)
						stop()
						raw.Close()
					}
				})
			}
			testutil.Eventually(t, 20*time.Second, fmt.Sprint("the flood's ", tc.sockets, " sockets to be open"), func() bool {
				return opened.Load() >= int64(tc.sockets)
			})
			start := time.Now()
			b, _ := startTCPNode(t, secret, a.Addr())
			select {
			case <-b.Joined():
				t.Logf("joined in %v during the flood (%d sockets opened); member's transport: %+v",
					time.Since(start).Round(time.Millisecond), opened.Load(), a.Stats().Transport)
			case <-time.After(5 * time.Second):
				t.Fatalf("the new node did not join within 5 s during the flood; member's transport: %+v", a.Stats().Transport)
			}
			if st := a.Stats().Transport; st.RefusedBadSecret != 0 {
				t.Fatalf("idle sockets counted as a bad secret: %+v", st)
			}
		})
	}
}
