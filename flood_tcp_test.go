package p2p_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/p2p-go/p2p"
	"github.com/p2p-go/p2p/internal/testutil"
)

// Issue 10, row 2, end to end: an outsider keeps 400 idle sockets open to a
// member from four loopback addresses, reopening each as soon as it is
// closed. A new node joins through that member within 5 s (before the
// transport's handshake limits: 17 tries and 17 s).
func TestNewNodeJoinsWithin5sDuringAnIdleSocketFlood(t *testing.T) {
	secret, _ := p2p.ParseSecret(p2p.GenerateSecret())
	a, _ := startTCPNode(t, secret)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for i := range 400 {
		source := net.ParseIP(fmt.Sprintf("127.0.0.%d", 2+i%4))
		wg.Go(func() {
			dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: source}}
			for ctx.Err() == nil {
				raw, err := dialer.DialContext(ctx, "tcp", a.Addr())
				if err != nil {
					continue
				}
				stop := context.AfterFunc(ctx, func() { raw.Close() })
				io.Copy(io.Discard, raw)
				stop()
				raw.Close()
			}
		})
	}
	testutil.Eventually(t, 10*time.Second, "the flood to reach its per-address limit", func() bool {
		return a.Stats().Transport.RefusedPerAddress >= 100
	})
	start := time.Now()
	b, _ := startTCPNode(t, secret, a.Addr())
	select {
	case <-b.Joined():
		t.Logf("joined in %v during the flood; member's transport: %+v", time.Since(start).Round(time.Millisecond), a.Stats().Transport)
	case <-time.After(5 * time.Second):
		t.Fatalf("the new node did not join within 5 s during the flood; member's transport: %+v", a.Stats().Transport)
	}
}
