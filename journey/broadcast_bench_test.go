package journey_test

import (
	"testing"

	"github.com/throughline/throughline/journey"
)

func BenchmarkBroadcastProgressCount(b *testing.B) {
	marks := [][]byte{[]byte("sent"), []byte("sent|c"), []byte("suppressed:no_consent"), []byte("held")}
	p := journey.NewBroadcastProgress()
	b.ReportAllocs()
	for i := range b.N {
		if err := p.Count(marks[i%len(marks)]); err != nil {
			b.Fatal(err)
		}
	}
}
