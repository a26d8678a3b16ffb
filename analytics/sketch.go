package analytics

import (
	"math"
	"sort"
)

// Sketch is a log-bucketed histogram of durations in milliseconds: each
// value is counted in the bucket of ceil(log_gamma(ms)), so a quantile is
// answered within sketchError of the true value, and two sketches merge by
// adding their counts. Buckets are sparse: at most sketchBucketsMax exist
// (values up to about 70 years fit in 900), so its memory is bounded
// whatever it counts. The built-in choice over an HDR histogram: HDR keeps
// a dense array per histogram, and a partition keeps one per hour bucket.
type Sketch map[int]uint64

const (
	sketchGamma = 1.02 // relative error of a quantile: at most 1%
	sketchError = (sketchGamma - 1) / (sketchGamma + 1)
)

var sketchLogGamma = math.Log(sketchGamma)

// sketchIndex is the bucket of ms (values under 1 ms count as 1 ms).
func sketchIndex(ms int64) int {
	if ms <= 1 {
		return 0
	}
	return int(math.Ceil(math.Log(float64(ms)) / sketchLogGamma))
}

// sketchValue is the representative value of bucket i: the middle of
// (gamma^(i-1), gamma^i] in relative terms.
func sketchValue(i int) int64 {
	if i <= 0 {
		return 1
	}
	return int64(math.Round(2 * math.Pow(sketchGamma, float64(i)) / (sketchGamma + 1)))
}

// Add counts one duration in milliseconds.
func (s Sketch) Add(ms int64) { s[sketchIndex(ms)]++ }

// Merge adds o's counts into s.
func (s Sketch) Merge(o Sketch) {
	for i, n := range o {
		s[i] += n
	}
}

// Count is how many values the sketch holds.
func (s Sketch) Count() uint64 {
	var n uint64
	for _, c := range s {
		n += c
	}
	return n
}

// Quantile is the value at q (0 < q <= 1) by rank: the smallest value with
// at least q of the values at or below it; 0 when empty.
func (s Sketch) Quantile(q float64) int64 {
	total := s.Count()
	if total == 0 {
		return 0
	}
	idx := make([]int, 0, len(s))
	for i := range s {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	rank := uint64(math.Ceil(q * float64(total)))
	rank = max(rank, 1)
	var seen uint64
	for _, i := range idx {
		seen += s[i]
		if seen >= rank {
			return sketchValue(i)
		}
	}
	return sketchValue(idx[len(idx)-1])
}
