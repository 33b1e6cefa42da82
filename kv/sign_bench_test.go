package kv

import (
	"fmt"
	"testing"
)

// BenchmarkStoreSigning measures what record signatures cost the store: a
// local Put (which signs), a remote record applied from a broadcast payload
// (decode, verify, merge), and one Sign and one Verify alone. The store is
// over Memory, so no disk time hides the CPU cost; writes cycle over 1,000
// keys. BENCHMARKS.md compares
// the first two with the same steps before records were signed.
func BenchmarkStoreSigning(b *testing.B) {
	value := make([]byte, 64)
	b.Run("put", func(b *testing.B) {
		s := newTestStore(b, 1, nil, nil)
		keys := benchKeys(1000)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			s.Step(epoch, Put{ReqID: uint64(i), Key: keys[i%len(keys)], Value: value})
			drain(s)
		}
	})
	b.Run("apply-remote", func(b *testing.B) {
		s := newTestStore(b, 1, nil, nil)
		keys := benchKeys(1000)
		payloads := make([][]byte, b.N)
		for i := range payloads {
			rec := remoteWrite(2, keys[i%len(keys)], value, epoch.UnixNano()-int64(b.N)+int64(i))
			payloads[i] = mustMarshal(b, &Update{Records: []Record{rec}})
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			s.Step(epoch, FromBroadcast{From: testInfo(2), Payload: payloads[i]})
			drain(s)
		}
		b.StopTimer()
		if st := s.Stats(); st.RecordsBroadcast != uint64(b.N) {
			b.Fatalf("applied %d of %d", st.RecordsBroadcast, b.N)
		}
	})
	rec := remoteWrite(2, "service/000001/setting", value, epoch.UnixNano())
	key := testKey(2)
	b.Run("sign", func(b *testing.B) {
		for b.Loop() {
			rec = rec.Sign(key)
		}
	})
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			if rec.Verify() != nil {
				b.Fatal("does not verify")
			}
		}
	})
}

func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("service/%06d/setting", i)
	}
	return keys
}
