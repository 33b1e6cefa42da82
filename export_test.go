package p2p

import (
	"context"
	"fmt"
	"time"

	"github.com/p2p-go/p2p/peer"

	"github.com/p2p-go/p2p/gossip"
)

// SendRawForTest broadcasts data as application data without encoding it,
// as a modified peer could.
func SendRawForTest(ctx context.Context, b *Broadcaster, data []byte) error {
	return b.step(ctx, gossip.Broadcast{Topic: topicApp, Payload: data})
}

// DumpForTest describes the overlay state of b, for failure messages.
func DumpForTest(b *Broadcaster) string {
	var s string
	b.do(context.Background(), func(time.Time) {
		short := func(ps []peer.Info) []string {
			var out []string
			for _, p := range ps {
				out = append(out, p.ID.Short())
			}
			return out
		}
		s = fmt.Sprintf("%s active=%v passive=%v eager=%v lazy=%v gossip=%+v plumtree=%+v", b.ID().Short(),
			short(b.core.Neighbors()), short(b.core.PassivePeers()), short(b.core.Plumtree().EagerPeers()),
			short(b.core.Plumtree().LazyPeers()), b.core.Stats(), b.core.Plumtree().Stats())
	})
	return s + fmt.Sprintf(" runtime=%+v", b.rt.Stats())
}

// ReadMembersFileForTest returns the IDs of the members kept in dir.
func ReadMembersFileForTest(dir string) ([]peer.ID, error) {
	kept, err := readMembersFile(dir)
	var ids []peer.ID
	for _, m := range kept {
		ids = append(ids, m.ID)
	}
	return ids, err
}

// TreeRootForTest returns the root of b's broadcast tree as b knows it.
func TreeRootForTest(b *Broadcaster) peer.ID {
	var root peer.ID
	b.do(context.Background(), func(time.Time) { root, _ = b.core.Plumtree().Root() })
	return root
}
