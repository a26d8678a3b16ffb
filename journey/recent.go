package journey

import (
	"crypto/sha256"
	"time"
)

// recentIDs is the in-memory part of the idempotency window: the ids of the
// customer's latest RecentIDsMax events recorded inside IdempotencyWindow.
// complete says whether every id the customer ever stored is still here;
// when it is not, an id not found here must be looked up in the store.
//
// Ids are kept as 128-bit digests (SHA-256, truncated) in a ring and a map
// with no pointers: a busy customer holds thousands of ids, and strings
// would cost several times the memory and give the garbage collector every
// one of them to scan. A collision of two ids of one customer inside the
// window is as likely as one of SHA-256's first 128 bits.
type recentIDs struct {
	seq      map[idDigest]uint64
	ring     []recentEntry // circular: n entries from start, oldest first
	start, n int
	complete bool
}

type idDigest [2]uint64

type recentEntry struct {
	id  idDigest
	seq uint64
	at  int64 // recorded_at, unix nanoseconds
}

func digestID(id string) idDigest {
	sum := sha256.Sum256([]byte(id))
	var d idDigest
	for i := range 8 {
		d[0] = d[0]<<8 | uint64(sum[i])
		d[1] = d[1]<<8 | uint64(sum[8+i])
	}
	return d
}

func newRecentIDs() recentIDs {
	return recentIDs{seq: map[idDigest]uint64{}, complete: true}
}

func (r *recentIDs) add(id string, seq uint64, at time.Time) {
	r.addDigest(recentEntry{id: digestID(id), seq: seq, at: unixNanos(at)})
}

func (r *recentIDs) addDigest(e recentEntry) {
	if _, ok := r.seq[e.id]; ok {
		return
	}
	// Ids older than the window leave first, then the oldest beyond the
	// count; either way the store still knows them.
	for r.n > 0 && e.at-r.ring[r.start].at > int64(IdempotencyWindow) {
		r.dropOldest()
	}
	if r.n == RecentIDsMax {
		r.dropOldest()
	}
	if r.n == len(r.ring) {
		r.grow()
	}
	r.ring[(r.start+r.n)%len(r.ring)] = e
	r.n++
	r.seq[e.id] = e.seq
}

// grow doubles the ring (up to RecentIDsMax), oldest first at 0.
func (r *recentIDs) grow() {
	ring := make([]recentEntry, min(max(2*len(r.ring), 16), RecentIDsMax))
	for i := range r.n {
		ring[i] = r.ring[(r.start+i)%len(r.ring)]
	}
	r.ring, r.start = ring, 0
}

func (r *recentIDs) dropOldest() {
	delete(r.seq, r.ring[r.start].id)
	r.start = (r.start + 1) % len(r.ring)
	r.n--
	r.complete = false
}

func (r *recentIDs) lookup(id string) (uint64, bool) {
	s, ok := r.seq[digestID(id)]
	return s, ok
}

// entries are the ids held, oldest first.
func (r *recentIDs) entries() []recentEntry {
	out := make([]recentEntry, r.n)
	for i := range out {
		out[i] = r.ring[(r.start+i)%len(r.ring)]
	}
	return out
}
