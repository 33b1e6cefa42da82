package p2p

import (
	"context"
	"maps"
	"time"

	"github.com/p2p-go/p2p/kv"
	"github.com/p2p-go/p2p/peer"
)

// Revocation is one entry of the cluster's deny list: the revoked node, the
// node that revoked it, and when (the revoked node's store writes dated
// after At are refused everywhere).
type Revocation = kv.Revocation

var (
	// ErrNotAdmin is returned by Revoke on a node that is not one of
	// Config.Admins, when that list is set.
	ErrNotAdmin = kv.ErrNotAdmin
	// ErrBadRevocation is returned by Revoke for the zero ID or the node's
	// own ID.
	ErrBadRevocation = kv.ErrBadRevocation
	// ErrReservedKey is returned by Store.Put and Store.Delete for keys
	// under kv.ReservedPrefix ("_p2p/"), which the framework keeps.
	ErrReservedKey = kv.ErrReservedKey
)

// Revoke adds id to the cluster's deny list, for good: a signed record in
// the replicated store (key kv.RevocationKey(id)), pushed to every member and
// repaired by anti-entropy, so that it also reaches members that were away
// and survives restarts. Every node that holds it closes its links to id,
// refuses id's connections right after their handshake, and ignores the
// store writes id makes afterwards. Any member may revoke any other unless
// Config.Admins is set; then only those nodes may (ErrNotAdmin). Revoking a
// node already revoked returns nil and keeps the first revocation. There is
// no way to undo a revocation: a revoked node must come back with a new key
// (a new data directory).
func (b *Broadcaster) Revoke(ctx context.Context, id peer.ID) error {
	_, err := b.store.write(ctx, func(reqID uint64) any { return kv.Revoke{ReqID: reqID, ID: id} })
	return err
}

// Revoked returns the deny list, sorted by node ID.
func (b *Broadcaster) Revoked(ctx context.Context) ([]Revocation, error) {
	var out []Revocation
	if err := b.do(ctx, func(time.Time) { out = b.store.core.Revocations() }); err != nil {
		return nil, err
	}
	return out, nil
}

// isDenied reports whether id is revoked; the runtime asks it for every new
// connection and dial.
func (b *Broadcaster) isDenied(id peer.ID) bool {
	set := b.denied.Load()
	if set == nil {
		return false
	}
	_, denied := (*set)[id]
	return denied
}

func (b *Broadcaster) setDenied(revocations []Revocation) {
	set := make(map[peer.ID]struct{}, len(revocations))
	for _, r := range revocations {
		set[r.ID] = struct{}{}
	}
	b.denied.Store(&set)
}

// onDenyList runs on the loop goroutine when the deny list changes: it
// closes the links to the nodes just revoked.
func (b *Broadcaster) onDenyList(d kv.DenyList) {
	set := make(map[peer.ID]struct{}, len(d.IDs))
	for _, id := range d.IDs {
		set[id] = struct{}{}
		if id == b.ID() {
			b.logger.Error("this node has been revoked: the other members refuse its links and its writes")
		}
	}
	if old := b.denied.Load(); old != nil && maps.Equal(*old, set) {
		return
	}
	b.denied.Store(&set)
	if rt := b.runtime.Load(); rt != nil {
		rt.CloseDenied()
	}
}
