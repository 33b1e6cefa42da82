package kv

import (
	"fmt"
	"testing"
)

// benchStores returns two stores holding the same keys records: the keys of a
// typical configuration tree with 64-byte values.
func benchStores(b *testing.B, keys int) (*Store, *Store, []Record) {
	a, c := newTestStore(b, 1, nil, nil), newTestStore(b, 2, nil, nil)
	records := make([]Record, keys)
	for i := range records {
		records[i] = remoteWrite(3, fmt.Sprintf("service/%06d/setting", i), make([]byte, 64), epoch.UnixNano()-1e12)
	}
	fill(b, a, records)
	fill(b, c, records)
	return a, c, records
}

// BenchmarkAntiEntropyReconciliation measures the bytes one anti-entropy
// round exchanges between two stores of 100,000 keys when none or 1% of
// the keys differ (the second store holds newer writes of those keys). The
// bytes are the encoded messages with their frame headers, both directions.
func BenchmarkAntiEntropyReconciliation(b *testing.B) {
	const keys = 100_000
	for _, percent := range []int{0, 1} {
		b.Run(fmt.Sprintf("keys=%d/differ=%d%%", keys, percent), func(b *testing.B) {
			a, c, records := benchStores(b, keys)
			n := pairOf(b, a, c)
			var bytes, messages, repaired int
			wall := epoch.UnixNano() - 1e11
			for b.Loop() {
				b.StopTimer()
				// c gets newer writes of percent% of the keys.
				if percent > 0 {
					var changed []Record
					for i := 0; i < keys; i += 100 / percent {
						rec := records[(i+b.N)%keys]
						wall++
						rec.Version = Version{Time: HLC{Wall: wall}, Writer: testID(2)}
						changed = append(changed, rec)
					}
					fill(b, c, changed)
				}
				n.bytes, n.messages = 0, 0
				before := a.Stats().RecordsRepaired
				b.StartTimer()
				n.reconcile(testID(1), testID(2))
				b.StopTimer()
				if a.Digest() != c.Digest() {
					b.Fatal("not reconciled")
				}
				bytes += n.bytes
				messages += n.messages
				repaired += int(a.Stats().RecordsRepaired - before)
				b.StartTimer()
			}
			b.ReportMetric(float64(bytes)/float64(b.N), "bytes/round")
			b.ReportMetric(float64(messages)/float64(b.N), "msgs/round")
			b.ReportMetric(float64(repaired)/float64(b.N), "repaired/round")
			if repaired > 0 {
				b.ReportMetric(float64(bytes)/float64(repaired), "bytes/repaired")
			}
		})
	}
}
