package journey

import (
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// recentIDs is the in-memory part of the idempotency window: the ids of the
// customer's latest RecentIDsMax events recorded inside IdempotencyWindow.
// complete says whether every id the customer ever stored is still here;
// when it is not, an id not found here must be looked up in the store.
//
// Ids are kept as 128-bit digests (SHA-256, truncated) in a ring and, past
// recentLinearMax of them, a map, both with no pointers: a busy customer
// holds thousands of ids, and strings would cost several times the memory
// and give the garbage collector every one of them to scan. Most customers
// hold a few dozen: those are found by scanning the ring, which costs less
// than the map's memory (it was a tenth of a resident customer). A
// collision of two ids of one customer inside the window is as likely as
// one of SHA-256's first 128 bits.
type recentIDs struct {
	seq      map[idDigest]uint64 // nil while n <= recentLinearMax
	ring     []recentEntry       // circular: n entries from start, oldest first
	start, n int
	complete bool
}

// recentLinearMax is how many ids are found by a scan of the ring before a
// map indexes them.
const recentLinearMax = 32

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
	return recentIDs{complete: true}
}

func (r *recentIDs) add(id string, seq uint64, at time.Time) {
	r.addDigest(recentEntry{id: digestID(id), seq: seq, at: unixNanos(at)})
}

func (r *recentIDs) addDigest(e recentEntry) {
	if _, ok := r.find(e.id); ok {
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
	switch {
	case r.seq != nil:
		r.seq[e.id] = e.seq
	case r.n > recentLinearMax:
		r.seq = make(map[idDigest]uint64, r.n)
		for i := range r.n {
			it := &r.ring[(r.start+i)%len(r.ring)]
			r.seq[it.id] = it.seq
		}
	}
}

// find is the seq of a held id.
func (r *recentIDs) find(d idDigest) (uint64, bool) {
	if r.seq != nil {
		s, ok := r.seq[d]
		return s, ok
	}
	for i := r.n - 1; i >= 0; i-- { // newest first: a retry is of a recent event
		if it := &r.ring[(r.start+i)%len(r.ring)]; it.id == d {
			return it.seq, true
		}
	}
	return 0, false
}

// grow makes the ring half again as large (at least 8, up to
// RecentIDsMax), oldest first at 0.
func (r *recentIDs) grow() {
	ring := make([]recentEntry, min(max(len(r.ring)+len(r.ring)/2, 8), RecentIDsMax))
	for i := range r.n {
		ring[i] = r.ring[(r.start+i)%len(r.ring)]
	}
	r.ring, r.start = ring, 0
}

func (r *recentIDs) dropOldest() {
	if r.seq != nil {
		delete(r.seq, r.ring[r.start].id)
	}
	r.start = (r.start + 1) % len(r.ring)
	r.n--
	r.complete = false
}

func (r *recentIDs) lookup(id string) (uint64, bool) {
	return r.find(digestID(id))
}

// at is the i-th id held, oldest first.
func (r *recentIDs) at(i int) *recentEntry {
	return &r.ring[(r.start+i)%len(r.ring)]
}

// recentEntryMaxBytes bounds an entry's size in a snapshot: the digest, and
// the seq and time as varints.
const recentEntryMaxBytes = 16 + 2*binary.MaxVarintLen64
