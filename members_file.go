package p2p

// The last known members, kept in the data directory so that a restarted
// node rejoins through any member it knew, not only through its bootstrap
// addresses (issue 9: when every bootstrap node restarts, the others would
// otherwise find each other again only by chance).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/p2p-go/p2p/peer"
)

// MembersFile is the name of the file, inside a node's data directory, that
// keeps the members it last knew (JSON, mode 0600).
const MembersFile = "members.json"

const (
	// membersFileMax bounds the members kept, the most recently seen first.
	membersFileMax = 1024
	// membersFileMaxAge forgets a member not seen alive for this long.
	membersFileMaxAge = 7 * 24 * time.Hour
	// membersFileInterval is how often a changed member list is written,
	// at most; the first list is written as soon as it is seen (within
	// membersFilePoll), so a node killed a moment after it joined still
	// restarts knowing the members.
	membersFileInterval = time.Second
	// membersFilePoll is how often the member list is compared with the one
	// last written.
	membersFilePoll = 200 * time.Millisecond
)

// knownMember is one line of the members file.
type knownMember struct {
	ID       peer.ID   `json:"id"`
	Addr     string    `json:"addr"`
	LastSeen time.Time `json:"last_seen"`
}

// readMembersFile returns the members kept in dir (none when the file does
// not exist).
func readMembersFile(dir string) ([]knownMember, error) {
	data, err := os.ReadFile(filepath.Join(dir, MembersFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("p2p: read %s: %w", MembersFile, err)
	}
	var members []knownMember
	if err := json.Unmarshal(data, &members); err != nil {
		return nil, fmt.Errorf("p2p: read %s: %w", MembersFile, err)
	}
	return members, nil
}

// mergeKnown adds the members alive now (seen at now) to the kept ones, and
// drops the kept ones too old or too many. self is never kept.
func mergeKnown(kept []knownMember, alive []peer.Info, self peer.ID, now time.Time) []knownMember {
	byID := map[peer.ID]knownMember{}
	for _, m := range kept {
		if !m.ID.IsZero() && m.ID != self && m.Addr != "" && now.Sub(m.LastSeen) < membersFileMaxAge {
			byID[m.ID] = m
		}
	}
	for _, p := range alive {
		if p.ID != self && p.Addr != "" {
			byID[p.ID] = knownMember{ID: p.ID, Addr: p.Addr, LastSeen: now}
		}
	}
	out := make([]knownMember, 0, len(byID))
	for _, m := range byID {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b knownMember) int {
		if c := b.LastSeen.Compare(a.LastSeen); c != 0 {
			return c
		}
		return a.ID.Compare(b.ID)
	})
	return out[:min(len(out), membersFileMax)]
}

// writeMembersFile replaces the members file atomically (a temporary file
// renamed over it).
func writeMembersFile(dir string, members []knownMember) error {
	data, err := json.MarshalIndent(members, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, MembersFile)
	tmp, err := os.CreateTemp(dir, MembersFile+".*")
	if err != nil {
		return fmt.Errorf("p2p: write %s: %w", MembersFile, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("p2p: write %s: %w", MembersFile, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("p2p: write %s: %w", MembersFile, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("p2p: write %s: %w", MembersFile, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("p2p: write %s: %w", MembersFile, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("p2p: write %s: %w", MembersFile, err)
	}
	return nil
}

// keepsMembers reports whether the node keeps its member list in its data
// directory: unless it keeps nothing there (Key and StoreBackend given).
func (c *Config) keepsMembers() bool { return c.Key == nil || c.StoreBackend == nil }

// rejoinContacts returns the bootstrap addresses followed by the addresses
// of the kept members (without duplicates), and the kept members as peers.
func rejoinContacts(bootstrap []string, kept []knownMember) ([]string, []peer.Info) {
	contacts := slices.Clone(bootstrap)
	var known []peer.Info
	for _, m := range kept {
		if !slices.Contains(contacts, m.Addr) {
			contacts = append(contacts, m.Addr)
		}
		known = append(known, peer.Info{ID: m.ID, Addr: m.Addr})
	}
	return contacts, known
}

// keepMembers writes the member list to the data directory when it changes
// (the first change at once, then at most every membersFileInterval), and
// once more when stop closes. It
// runs on its own goroutine: disk writes never hold up the network loop.
func (b *Broadcaster) keepMembers(kept []knownMember, stop <-chan struct{}) {
	defer close(b.membersDone)
	ticker := time.NewTicker(membersFilePoll)
	defer ticker.Stop()
	var last []peer.Info
	var lastWrite time.Time
	write := func(force bool) {
		if !force && !lastWrite.IsZero() && time.Since(lastWrite) < membersFileInterval {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), membersFileInterval)
		defer cancel()
		var alive []peer.Info
		if b.rt.Do(ctx, func(time.Time) { alive = b.core.Members() }) != nil {
			return
		}
		if slices.Equal(alive, last) {
			return
		}
		if !force && !slices.ContainsFunc(alive, func(p peer.Info) bool { return p.ID != b.ID() }) {
			return // nobody else yet: nothing worth a write
		}
		last, lastWrite = alive, time.Now()
		kept = mergeKnown(kept, alive, b.ID(), lastWrite)
		if err := writeMembersFile(b.cfg.DataDir, kept); err != nil {
			b.logger.Warn("cannot keep the member list", "err", err)
		}
	}
	for {
		select {
		case <-ticker.C:
			write(false)
		case <-stop:
			write(true)
			return
		}
	}
}
