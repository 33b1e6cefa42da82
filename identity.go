package p2p

import (
	"fmt"
	"log/slog"

	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport"
	"github.com/p2p-go/p2p/transport/tcp"
)

// listenSettings are the settings both node types share for their identity
// and their transport.
type listenSettings struct {
	key           *peer.Key
	transport     transport.Transport
	dataDir       string
	listenAddr    string
	advertiseAddr string
	secret        []byte
	maxFrameSize  int
	logger        *slog.Logger
}

// openIdentity returns the node's key (the given one, or the one kept in the
// data directory, created on first start) and its transport (the given one,
// or TCP secured by Noise listening on the configured address).
func openIdentity(s listenSettings) (*peer.Key, transport.Transport, error) {
	key := s.key
	if key == nil {
		var err error
		if key, err = peer.LoadOrCreateKey(s.dataDir); err != nil {
			return nil, nil, err
		}
	}
	if s.transport != nil {
		return key, s.transport, nil
	}
	keyring, err := OpenKeyring(s.dataDir, s.secret, s.logger)
	if err != nil {
		return nil, nil, err
	}
	tr, err := tcp.Listen(tcp.Config{
		ListenAddr:    s.listenAddr,
		AdvertiseAddr: s.advertiseAddr,
		Key:           key,
		Keyring:       keyring,
		MaxFrameSize:  s.maxFrameSize,
		Logger:        s.logger,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("p2p: listen on %s: %w", s.listenAddr, err)
	}
	return key, tr, nil
}
