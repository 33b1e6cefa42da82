package p2p

import (
	"context"

	"github.com/p2p-go/p2p/gossip"
)

// SendRawForTest broadcasts data as application data without encoding it,
// as a modified peer could.
func SendRawForTest(ctx context.Context, b *Broadcaster, data []byte) error {
	return b.step(ctx, gossip.Broadcast{Topic: topicApp, Payload: data})
}
