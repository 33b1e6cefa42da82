package kv

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/p2p-go/p2p/peer"
)

// Keys reserved for the framework. Put and Delete refuse keys under
// ReservedPrefix; records from peers under it are applied only when they
// are valid revocations.
const (
	// ReservedPrefix starts every key the framework keeps in the store.
	ReservedPrefix = "_p2p/"
	// RevokedPrefix starts the keys of the deny list: RevokedPrefix
	// followed by the revoked node's ID (its printable form). A
	// revocation is a record like any other, signed by the node that
	// revoked, replicated by broadcast and anti-entropy and kept on disk;
	// it is never deleted, and of two revocations of one node the earlier
	// wins, on every node alike.
	RevokedPrefix = ReservedPrefix + "revoked/"
)

var (
	// ErrReservedKey is returned by Put and Delete for a key under
	// ReservedPrefix.
	ErrReservedKey = errors.New("kv: key reserved for the framework")
	// ErrNotAdmin is returned by a Revoke on a node that is not one of
	// Config.Admins (when that set is not empty).
	ErrNotAdmin = errors.New("kv: only an admin may revoke")
	// ErrBadRevocation is returned by a Revoke of the zero ID or of the
	// node itself.
	ErrBadRevocation = errors.New("kv: bad revocation")
)

// Revoke is the input asking the store to revoke node ID: to add it to the
// cluster's deny list. The store answers with a [Result] carrying ReqID,
// whose Record is the revocation (the existing one when ID was already
// revoked).
type Revoke struct {
	ReqID uint64
	ID    peer.ID
}

// Revocation is one entry of the deny list.
type Revocation struct {
	// ID is the revoked node.
	ID peer.ID `json:"id"`
	// By is the node that revoked it.
	By peer.ID `json:"by"`
	// At is the revocation's timestamp: the revoked node's records dated
	// after it are refused, and removed where they were applied.
	At HLC `json:"-"`
}

// DenyList is the output reporting the revoked nodes (sorted) each time the
// deny list changes. The runtime closes the links to them and refuses their
// connections.
type DenyList struct {
	IDs []peer.ID
}

// revocationValue is the JSON value of a revocation record, for people who
// read it with `p2p kv get`; the record's writer and version are what count.
type revocationValue struct {
	ID string `json:"revoked"`
	By string `json:"by"`
}

// RevocationKey returns the store key of id's revocation.
func RevocationKey(id peer.ID) string { return RevokedPrefix + id.String() }

// revokedID returns the node a key under RevokedPrefix revokes.
func revokedID(key string) (peer.ID, bool) {
	text, ok := strings.CutPrefix(key, RevokedPrefix)
	if !ok {
		return peer.ID{}, false
	}
	id, err := peer.ParseID(text)
	if err != nil || id.IsZero() || id.String() != text {
		return peer.ID{}, false
	}
	return id, true
}

// compareVersions orders two versions of key for the merge: later first,
// except under RevokedPrefix where the earlier revocation wins.
func compareVersions(key string, a, b Version) int {
	c := a.Compare(b)
	if strings.HasPrefix(key, RevokedPrefix) {
		return -c
	}
	return c
}

// isAdmin reports whether id may revoke.
func (s *Store) isAdmin(id peer.ID) bool {
	return len(s.cfg.Admins) == 0 || slices.Contains(s.cfg.Admins, id)
}

// Revocations returns the deny list, sorted by ID.
func (s *Store) Revocations() []Revocation {
	out := make([]Revocation, 0, len(s.revoked))
	for _, r := range s.revoked {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Revocation) int { return a.ID.Compare(b.ID) })
	return out
}

// IsRevoked reports whether id is on the deny list.
func (s *Store) IsRevoked(id peer.ID) bool {
	_, ok := s.revoked[id]
	return ok
}

// localRevoke writes the revocation of id, or returns the existing one.
func (s *Store) localRevoke(id peer.ID) (Record, error) {
	switch {
	case id.IsZero():
		return Record{}, fmt.Errorf("%w: zero node ID", ErrBadRevocation)
	case id == s.cfg.Self:
		return Record{}, fmt.Errorf("%w: a node cannot revoke itself", ErrBadRevocation)
	case !s.isAdmin(s.cfg.Self):
		return Record{}, fmt.Errorf("%w: node %s is not among the %d admins", ErrNotAdmin, s.cfg.Self.Short(), len(s.cfg.Admins))
	}
	key := RevocationKey(id)
	if _, revoked := s.revoked[id]; revoked {
		rec, found, err := s.stored(key)
		if err == nil && found {
			return rec, nil
		}
	}
	value, _ := json.Marshal(revocationValue{ID: id.String(), By: s.cfg.Self.String()})
	return s.write(key, value, false)
}

// refusal says why a remote record that passed validation and its
// signature check is refused, counting it; "" accepts it. Records refused
// here are not logged one by one (see logRefusal).
func (s *Store) refusal(rec Record) string {
	if r, revoked := s.revoked[rec.Version.Writer]; revoked && rec.Version.Time.Compare(r.At) > 0 {
		s.stats.RecordsRevoked++
		return "writer revoked"
	}
	if !strings.HasPrefix(rec.Key, ReservedPrefix) {
		return ""
	}
	if _, ok := revokedID(rec.Key); !ok || rec.Deleted {
		s.stats.RecordsRejected++
		return "reserved key"
	}
	if !s.isAdmin(rec.Version.Writer) {
		s.stats.RecordsUnauthorized++
		return "revocation by a node that is not an admin"
	}
	return ""
}

// noteRevocation updates the deny list for a revocation record just
// installed, and withdraws the records its target wrote after it. A record
// no longer indexed is ignored: a revocation installed in the same batch
// as an earlier revocation of its writer was withdrawn by that one, and
// must not come back into the deny list.
func (s *Store) noteRevocation(rec Record) {
	id, ok := revokedID(rec.Key)
	if !ok || rec.Deleted {
		return
	}
	if e, indexed := s.index[rec.Key]; !indexed || e.deleted || e.version != rec.Version {
		return
	}
	r := Revocation{ID: id, By: rec.Version.Writer, At: rec.Version.Time}
	if old, known := s.revoked[id]; known && old == r {
		return
	}
	s.revoked[id] = r
	s.denyChanged = true
	s.log.Warn("kv: node revoked", "peer", id.Short(), "by", r.By.Short(), "at", r.At.String(), "self", id == s.cfg.Self)
	s.withdraw(r)
}

// withdraw removes the records that a revoked node wrote after its
// revocation (they arrived before the revocation did). The key is left
// without a record, as if the write had never been made: a replica that
// still holds an earlier record of the key gives it back by anti-entropy.
func (s *Store) withdraw(r Revocation) {
	var keys []string
	for key, e := range s.index {
		if e.version.Writer == r.ID && e.version.Time.Compare(r.At) > 0 {
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return
	}
	slices.Sort(keys)
	withdrawn := make([]Record, 0, len(keys))
	for _, key := range keys {
		withdrawn = append(withdrawn, Record{Key: key, Version: s.index[key].version, Deleted: true})
	}
	s.persist(nil, keys, false)
	s.forget(keys)
	s.stats.RecordsWithdrawn += uint64(len(keys))
	for _, rec := range withdrawn {
		// Watchers see a delete: the value the revoked node wrote is gone.
		s.outputs = append(s.outputs, Changed{Record: rec})
		if id, ok := revokedID(rec.Key); ok {
			// A revocation made by a node already revoked when it made it.
			delete(s.revoked, id)
			s.denyChanged = true
		}
	}
}

// emitDenyList reports the deny list if it changed since the last report.
func (s *Store) emitDenyList() {
	if !s.denyChanged {
		return
	}
	s.denyChanged = false
	ids := make([]peer.ID, 0, len(s.revoked))
	for id := range s.revoked {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, peer.ID.Compare)
	s.outputs = append(s.outputs, DenyList{IDs: ids})
}

// loadRevocations rebuilds the deny list from the loaded records and drops
// what a crash may have left of records it withdraws.
func (s *Store) loadRevocations() {
	var keys []string
	for key := range s.index {
		if strings.HasPrefix(key, RevokedPrefix) {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	for _, key := range keys {
		if rec, found, err := s.stored(key); err == nil && found {
			s.noteRevocation(rec)
		}
	}
	// Nobody watches yet and the runtime asks for the deny list; only the
	// Persist of withdrawn records stays, for the first Drain.
	var persist []any
	if s.persistAt >= 0 {
		persist = append(persist, s.outputs[s.persistAt])
	}
	clear(s.outputs)
	s.outputs = append(s.outputs[:0], persist...)
	s.persistAt = len(persist) - 1
}
