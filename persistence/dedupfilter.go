package persistence

import (
	"math/bits"

	"github.com/throughline/throughline/journey"
)

// A dedup block's filter: a Bloom filter of its ids' digests, in its key.
//
// A busy customer's look-up of an id that its in-memory filters may hold
// (journey's recentIDs) reads every dedup block of the filter's seqs: up to
// ~200 blocks, ~1.7 KB each. The ids are nearly always new (a false
// positive of the filter), and the blocks' values live in blob files, so
// each look-up read ~350 KB; after 10 minutes at 30,000 events/s, with the
// VM's page reclaim (DAMON) dropping the store's cold pages, that was
// 320-340 KB/s of disk reads on the ingest path (docs/benchmarking.md,
// stop 49). With the filter in the key, a look-up reads the keys, which
// compactions keep together in the customer's sstable blocks, and the
// value of a block only if its filter may hold the id.
//
// 1,024 bits and 11 hashes: a block of journey.DedupBlockIDs (64) ids
// answers ~0.05% of other ids "maybe", so a look-up across 200 blocks
// reads a value about once in ten. A larger block (a replay's, up to
// DedupBlockMax ids) fills its filter more and is read more often; it is
// still found.
const (
	dedupFilterBytes  = 128
	dedupFilterHashes = 11
)

// dedupFilterPositions calls fn with the bit positions of digest. They are
// made of bits 32-41 of the digest's halves (Kirsch and Mitzenmacher):
// journey's in-memory filters, whose false positives lead here, use the
// low bits, so the two answer independently.
func dedupFilterPositions(digest [2]uint64, fn func(p uint64) bool) {
	const mask = 8*dedupFilterBytes - 1
	a, b := bits.RotateLeft64(digest[0], 32), bits.RotateLeft64(digest[1], 32)|1
	for i := range uint64(dedupFilterHashes) {
		if !fn((a + i*b) & mask) {
			return
		}
	}
}

// appendDedupFilter appends the filter of ids to dst.
func appendDedupFilter(dst []byte, ids []journey.DedupID) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, dedupFilterBytes)...)
	f := dst[n:]
	for _, id := range ids {
		dedupFilterPositions(id.Digest, func(p uint64) bool {
			f[p/8] |= 1 << (p % 8)
			return true
		})
	}
	return dst
}

// dedupFilterMay says whether the block of filter f may hold digest;
// false is certain.
func dedupFilterMay(f []byte, digest [2]uint64) bool {
	may := true
	dedupFilterPositions(digest, func(p uint64) bool {
		may = f[p/8]&(1<<(p%8)) != 0
		return may
	})
	return may
}
