package tcp

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkLoopbackThroughput streams messages between two real transports
// over 127.0.0.1 (handshake, encryption, framing and coalescing included) and
// reports messages per second; b.SetBytes makes it report MB/s as well.
func BenchmarkLoopbackThroughput(b *testing.B) {
	for _, size := range []int{256, 64 << 10} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			sender := newTransport(b, nil)
			receiver := newTransport(b, nil)
			out, in := connect(b, sender, receiver)
			msg := make([]byte, size)
			done := make(chan error, 1)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			go func() {
				for range b.N {
					if _, err := in.Recv(); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			ctx := context.Background()
			for range b.N {
				if err := out.Send(ctx, msg); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
