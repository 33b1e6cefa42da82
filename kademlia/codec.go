package kademlia

import (
	"fmt"
	"time"

	"github.com/p2p-go/p2p/wire"
)

// EncodeRecord returns the CBOR encoding of rec as it travels in a STORE
// (a WireRecord), with ttl left to live (at least one second), for records
// carried outside the DHT: files, command lines, other networks.
func EncodeRecord(rec Record, ttl time.Duration) ([]byte, error) {
	data, err := wire.MarshalValue(rec.toWire(ttl))
	if err != nil {
		return nil, fmt.Errorf("kademlia: encode record %s: %w", rec.Key.Short(), err)
	}
	return data, nil
}

// DecodeRecord parses a record encoded by EncodeRecord, expiring at now plus
// its TTL capped by maxTTL. It checks the encoding only: Verify, or any
// node's STORE, checks that the record is authentic.
func DecodeRecord(data []byte, now time.Time, maxTTL time.Duration) (Record, error) {
	var w WireRecord
	if err := wire.UnmarshalValue(data, &w); err != nil {
		return Record{}, fmt.Errorf("%w: record: %w", ErrMalformed, err)
	}
	if w.TTL == 0 {
		return Record{}, fmt.Errorf("%w: record %s has no lifetime left", ErrMalformed, w.Key.Short())
	}
	return fromWire(&w, now, maxTTL), nil
}
