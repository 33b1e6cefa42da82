package p2p

import (
	"context"

	"github.com/p2p-go/p2p/gossip"
	"github.com/p2p-go/p2p/internal/stack"
	"github.com/p2p-go/p2p/kv"
	"github.com/p2p-go/p2p/wire"
)

// SendStoreRecordsForTest broadcasts records as a store update, through the
// overlay, without the store's own checks: as an insider that holds the
// cluster secret and runs a modified node could.
func SendStoreRecordsForTest(ctx context.Context, b *Broadcaster, records []kv.Record) error {
	payload, err := wire.Marshal(&kv.Update{Records: records})
	if err != nil {
		return err
	}
	return b.step(ctx, gossip.Broadcast{Topic: stack.StoreTopic, Payload: payload})
}

// StoreWritesWaitingForTest returns the Seq of the last Persist output
// waiting for the disk writer, or 0.
func StoreWritesWaitingForTest(b *Broadcaster) uint64 { return b.store.writer.pending() }
