package boltstore

import (
	"testing"

	"github.com/p2p-go/p2p/kv"
	"github.com/p2p-go/p2p/wire"
)

// FuzzDecodeStored decodes arbitrary bytes as a record read from a bbolt
// file: it must fail cleanly or return a valid record.
func FuzzDecodeStored(f *testing.F) {
	wall := epoch.UnixNano() - 1000
	for _, rec := range []Record{
		{Key: "app/port", Value: []byte("8080"), Version: kv.Version{Time: kv.HLC{Wall: wall}, Writer: testKey.ID()}},
		{Key: "app/old", Version: kv.Version{Time: kv.HLC{Wall: wall + 2, Logical: 1}, Writer: testKey.ID()}, Deleted: true},
	} {
		data, err := wire.MarshalValue(rec.Sign(testKey))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(rec.Key, data)
	}
	f.Fuzz(func(t *testing.T, key string, data []byte) {
		rec, err := decodeStored(key, data)
		if err != nil {
			return
		}
		if rec.Key != key || rec.Validate() != nil {
			t.Fatalf("decoded an invalid record %+v", rec)
		}
	})
}
