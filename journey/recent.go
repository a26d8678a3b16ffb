package journey

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
	"time"
)

// recentIDs is the in-memory part of the idempotency window: the ids of the
// customer's latest RecentIDsMax events, exactly, and Bloom filters of the
// ids that left them within IdempotencyWindow. An id found in neither was
// certainly not stored inside the window, unless the filters gave up some
// ids (uncoveredUntil); an id a filter may hold is looked up in the store.
// The filters keep a busy customer's events from costing a store read each
// (a third of the CPU at 30,000 events/s once every customer was past the
// ring), in 2 bytes an id instead of 32.
//
// Ids are kept as 128-bit digests (SHA-256, truncated) in a ring and, past
// recentLinearMax of them, an open-addressing index into the ring, both
// with no pointers: strings would cost several times the memory and give
// the garbage collector every one of them to scan. Most customers hold a
// few dozen: those are found by scanning the ring, which costs less than
// an index's memory. A collision of two ids of one customer inside the
// window is as likely as one of SHA-256's first 128 bits.
//
// Every event of a busy customer looks its id up and adds it, so on a node
// of many busy customers each is a few cache misses: the index finds an id
// in one cache line, mostly, and is 2 KiB (a Go map of the 256 digests took
// several lines and 10 KiB; a cache-cold look-up and add cost about a
// quarter less with the index).
type recentIDs struct {
	index    []uint32    // nil while n <= recentLinearMax; indexSlots(len(ring)) slots
	ring     []ringEntry // circular: n entries from start, oldest first
	start, n int
	// uncoveredUntil (unix ns): before it, an id in neither the ring nor
	// a filter may still have been stored (the filters gave up ids that
	// were inside the window then, or a snapshot before filters forgot
	// some).
	uncoveredUntil int64
	// left is nil until an id leaves the ring inside the window (most
	// resident customers: a pointer, not its 144 bytes).
	left *leftIDs
	// held sketches the ids in the ring while it has no index: the bit
	// heldBit of each (and of some that left: a superset). An id whose bit
	// is clear is not in the ring, and the scan is skipped: with 100,000
	// customers of a few dozen ids the ring is cold, and its scan was a
	// cache miss on each of its lines, twice an event (decide, then add),
	// for an id that is new nearly every time (with 20 ids, ~73% of new
	// ids find their bit clear).
	held uint64
}

// heldBit is an id's bit in recentIDs.held: the top six bits of its
// digest (the index keys on the low ones).
func heldBit(d idDigest) uint64 { return 1 << (d[0] >> 58) }

// leftIDs is what a customer keeps of the ids that left its ring.
type leftIDs struct {
	// filters hold the ids that left the ring, oldest filter first; the
	// last one fills (filterList).
	filters []idFilter
	// Ids of kind idInBlock that left the ring inside the window have no
	// key of their own in the store: pending holds them until there are
	// DedupBlockIDs, when they are sealed, and Step hands the sealed ones
	// to the store as one dedup block with its events (Decision.DedupBlock)
	// and keeps them in flying until the customer actor says the append is
	// durable (Customer.Durable): a retry is answered from memory until
	// the store can answer it. Sealed is empty between Steps, flying when
	// nothing is in flight (a snapshot's time); pending is in the snapshot.
	pending, sealed []recentEntry
	flying          []flyingBlock
	// unstored: ids a replay sealed that the store's blocks do not hold
	// (RebuildFrom), pending again once it ends.
	unstored []recentEntry
	// uncoveredLo..uncoveredHi: the seqs of the uncovered ids in dedup
	// blocks (lo > hi: none).
	uncoveredLo, uncoveredHi uint64
	// lastKind is the kind of the last client id added: Step tells the
	// store whether it gets a dedup key (Decision.IDsInBlocks).
	lastKind idKind
}

// flyingBlock is a dedup block handed to the store (the Decision's, read
// only): its ids, and the seq of the last event of the append that
// carries it.
type flyingBlock struct {
	ids []DedupID
	seq uint64
}

// filterList is the filters, none while no id left the ring.
func (r *recentIDs) filterList() []idFilter {
	if r.left == nil {
		return nil
	}
	return r.left.filters
}

// leftOf is r.left, made when first needed.
func (r *recentIDs) leftOf() *leftIDs {
	if r.left == nil {
		r.left = &leftIDs{uncoveredLo: math.MaxUint64}
	}
	return r.left
}

// lastKind is the kind of the last client id added.
func (r *recentIDs) lastKind() idKind {
	if r.left == nil {
		return idInBlock // the filters had room: there were none
	}
	return r.left.lastKind
}

// uncoveredSeqs are the seqs of the uncovered ids in dedup blocks.
func (r *recentIDs) uncoveredSeqs() (lo, hi uint64) {
	if r.left == nil {
		return math.MaxUint64, 0
	}
	return r.left.uncoveredLo, r.left.uncoveredHi
}

// idKind says where an id held is found once it leaves the ring.
type idKind uint8

const (
	// idInBlock: a client's id in a dedup block (pending until then). The
	// customer's filters hold it until it leaves the window: its kind is
	// chosen only while they have room (blockRoom).
	idInBlock idKind = iota
	// idKeyed: a client's id with a dedup key of its own in the store (ids
	// stored before dedup blocks, and a customer's whose filters are short
	// of room).
	idKeyed
	// idLocal: an id only memory answers (an agent reply's ref): it is
	// forgotten when it leaves the ring.
	idLocal
)

// recentLinearMax is how many ids are found by a scan of the ring before a
// map indexes them.
const recentLinearMax = 32

type idDigest [2]uint64

// recentEntry is an id held: its digest, and the seq and recorded_at of
// its event.
type recentEntry struct {
	id   idDigest
	seq  uint64
	at   int64 // recorded_at, unix nanoseconds
	kind idKind
}

// ringEntry is a recentEntry as the ring keeps it: 28 bytes instead of 32,
// so that a resident customer's ring of 20 ids takes 576 bytes, not 896
// (bench memory). The digest and the seq are 32-bit words, so the entry
// aligns on 4 bytes, and recorded_at is in whole seconds, read back as the
// second's last nanosecond: an id stays in the ring, and then in a
// filter, up to a second longer than its window, never shorter.
type ringEntry struct {
	id  [4]uint32
	seq [2]uint32 // the kind in the top two bits (seqs are below 2^62)
	at  uint32    // seconds since ringEpoch, rounded down; 0 before it, max past 2156
}

const ringKindShift = 30 // of seq[0]

// ringEpoch is 2020-01-01T00:00:00Z in unix seconds: a ring entry's time
// counts from it, so it holds until 2156 (from 1970, 2106). A time before
// it reads back as its first second, later than it was: the id is kept
// longer, never shorter. Past 2156 every entry would read back as one
// second, and the window would no longer hold.
const ringEpoch = 1_577_836_800

func packDigest(d idDigest) [4]uint32 {
	return [4]uint32{uint32(d[0] >> 32), uint32(d[0]), uint32(d[1] >> 32), uint32(d[1])}
}

func (p *ringEntry) digest() idDigest {
	return idDigest{uint64(p.id[0])<<32 | uint64(p.id[1]), uint64(p.id[2])<<32 | uint64(p.id[3])}
}

func (p *ringEntry) seqOf() uint64 {
	return uint64(p.seq[0]&(1<<ringKindShift-1))<<32 | uint64(p.seq[1])
}

func (p *ringEntry) kind() idKind { return idKind(p.seq[0] >> ringKindShift) }

func packEntry(e recentEntry) ringEntry {
	secs := e.at/int64(time.Second) - ringEpoch // rounded toward zero: down, past the epoch
	return ringEntry{
		id:  packDigest(e.id),
		seq: [2]uint32{uint32(e.seq>>32) | uint32(e.kind)<<ringKindShift, uint32(e.seq)},
		at:  uint32(min(max(secs, 0), math.MaxUint32)),
	}
}

func (p *ringEntry) entry() recentEntry {
	return recentEntry{id: p.digest(), seq: p.seqOf(), at: p.atNanos(), kind: p.kind()}
}

// atNanos is recorded_at as the entry keeps it: its second's last
// nanosecond.
func (p *ringEntry) atNanos() int64 { return (ringEpoch+int64(p.at)+1)*int64(time.Second) - 1 }

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
	return recentIDs{}
}

// add adds a client's id (a customer event's).
func (r *recentIDs) add(id string, seq uint64, at time.Time) {
	r.addClient(recentEntry{id: digestID(id), seq: seq, at: unixNanos(at)})
}

// addLocal adds an id only memory answers, forgotten once it leaves the ring.
func (r *recentIDs) addLocal(id string, seq uint64, at time.Time) {
	e := recentEntry{id: digestID(id), seq: seq, at: unixNanos(at), kind: idLocal}
	r.expireFilters(e.at)
	r.addDigest(e)
}

// addClient adds a client's id: in a dedup block later while the filters
// have room for it, else with a dedup key of its own.
func (r *recentIDs) addClient(e recentEntry) {
	r.expireFilters(e.at) // first: blockRoom counts what is left
	e.kind = idInBlock
	if !r.blockRoom() {
		e.kind = idKeyed
	}
	if e.kind != idInBlock || r.left != nil {
		r.leftOf().lastKind = e.kind
	}
	r.addDigest(e)
}

func (r *recentIDs) addDigest(e recentEntry) {
	if _, ok := r.find(e.id); ok {
		return
	}
	// Ids older than the window leave first (as filters of such ids did,
	// addClient, addLocal): nothing needs them. Then the oldest beyond the
	// count, to the filters; the store knows it, or will once its dedup
	// block is written.
	expired := false
	for r.n > 0 && e.at-r.ring[r.start].atNanos() > int64(IdempotencyWindow) {
		r.dropOldest(false)
		expired = true
	}
	if expired && r.index == nil {
		r.resketch() // without the bits of the ids that left
	}
	if r.n == RecentIDsMax {
		r.dropOldest(true)
	}
	if r.n == len(r.ring) {
		r.grow()
	}
	pos := (r.start + r.n) % len(r.ring)
	r.ring[pos] = packEntry(e)
	r.held |= heldBit(e.id)
	r.n++
	switch {
	case r.index != nil:
		r.indexAdd(e.id, pos)
	case r.n > recentLinearMax:
		r.reindex()
	}
}

// find is the seq of a held id.
func (r *recentIDs) find(d idDigest) (uint64, bool) {
	if r.index != nil {
		if pos, _, ok := r.indexFind(d); ok {
			return r.ring[pos].seqOf(), true
		}
		return 0, false
	}
	if r.held&heldBit(d) == 0 {
		return 0, false
	}
	p := packDigest(d)
	for i := r.n - 1; i >= 0; i-- { // newest first: a retry is of a recent event
		if it := &r.ring[(r.start+i)%len(r.ring)]; it.id == p {
			return it.seqOf(), true
		}
	}
	return 0, false
}

// grow makes the ring a quarter larger (up to RecentIDsMax), to the whole
// of the allocator's size class, oldest first at 0: two entries first
// (most resident customers have sent one or two ids), then eight. Half
// again, as before, left a third of a 20-id ring empty; a grow copies at
// most RecentIDsMax entries, and a busy customer's ring grows to its
// limit once.
func (r *recentIDs) grow() {
	n := len(r.ring) + len(r.ring)/4
	switch {
	case len(r.ring) == 0:
		n = 2
	case n < 8:
		n = 8
	}
	ring := slices.Grow([]ringEntry(nil), min(n, RecentIDsMax))
	ring = ring[:min(cap(ring), RecentIDsMax)]
	for i := range r.n {
		ring[i] = r.ring[(r.start+i)%len(r.ring)]
	}
	r.ring, r.start = ring, 0
	if r.index != nil {
		r.reindex() // positions moved
	}
}

// resketch sets held to the bits of the ids in the ring.
func (r *recentIDs) resketch() {
	r.held = 0
	for i := range r.n {
		r.held |= heldBit(r.ring[(r.start+i)%len(r.ring)].digest())
	}
}

func (r *recentIDs) dropOldest(inWindow bool) {
	old := r.ring[r.start].entry()
	if r.index != nil {
		r.indexDelete(old.id)
	}
	r.start = (r.start + 1) % len(r.ring)
	r.n--
	if inWindow && old.kind != idLocal {
		r.remember(old)
	}
}

// The index: open addressing with linear probing over uint32 slots, a
// power of two at least twice the ring's length (indexSlots), so at most
// half full. A slot holds the ring position plus one in its low
// recentPosBits bits (0: empty) and, above them, the low bits of the
// digest's first word: its home slot and a fingerprint, so a probe reads
// a ring entry only on a fingerprint match, and a deletion moves the
// slots after it back without reading the ring.
//
// Sized to the ring, not to RecentIDsMax: a customer of 33 to 128 ids
// (most of those with an index) holds 512 bytes or 1 KiB of it, not 2 KiB
// (with 100,000 such customers, ~100 MB less heap).
const (
	recentPosBits       = 9 // ring positions + 1, up to 511
	recentIndexSlotsMax = 2 * RecentIDsMax
	recentKeyBits       = 32 - recentPosBits
)

// The index's largest size holds ring positions that fit.
var _ = [1]struct{}{}[RecentIDsMax>>recentPosBits]

// indexSlots is the size of the index of a ring of n entries: the least
// power of two at least 2n.
func indexSlots(n int) int { return min(1<<bits.Len(uint(2*n-1)), recentIndexSlotsMax) }

func recentKey(d idDigest) uint32 { return uint32(d[0]) & (1<<recentKeyBits - 1) }

// indexFind is the ring position and slot of d.
func (r *recentIDs) indexFind(d idDigest) (pos, slot int, ok bool) {
	key := recentKey(d)
	mask := len(r.index) - 1
	for i := int(key) & mask; ; i = (i + 1) & mask {
		s := r.index[i]
		if s == 0 {
			return 0, 0, false
		}
		if s>>recentPosBits == key {
			if p := int(s&(1<<recentPosBits-1)) - 1; r.ring[p].digest() == d {
				return p, i, true
			}
		}
	}
}

func (r *recentIDs) indexAdd(d idDigest, pos int) {
	key := recentKey(d)
	mask := len(r.index) - 1
	i := int(key) & mask
	for r.index[i] != 0 {
		i = (i + 1) & mask
	}
	r.index[i] = key<<recentPosBits | uint32(pos+1)
}

// indexDelete empties d's slot and moves back the slots after it that
// probed past it (backward-shift deletion: no tombstones).
func (r *recentIDs) indexDelete(d idDigest) {
	_, hole, ok := r.indexFind(d)
	if !ok {
		panic("journey: a recent id missing from the index")
	}
	mask := len(r.index) - 1
	for j := (hole + 1) & mask; r.index[j] != 0; j = (j + 1) & mask {
		// The slot at j may fill the hole unless its home lies cyclically
		// in (hole, j].
		home := int(r.index[j]>>recentPosBits) & mask
		if (j-home)&mask >= (j-hole)&mask {
			r.index[hole] = r.index[j]
			hole = j
		}
	}
	r.index[hole] = 0
}

// reindex builds the index of every id held.
func (r *recentIDs) reindex() {
	if n := indexSlots(len(r.ring)); len(r.index) != n {
		r.index = make([]uint32, n)
	} else {
		clear(r.index)
	}
	for i := range r.n {
		pos := (r.start + i) % len(r.ring)
		r.indexAdd(r.ring[pos].digest(), pos)
	}
}

// remember puts an id that left the ring in the filling filter, and an
// id of kind idInBlock in the pending block too. Filters whose newest id
// is older than the window go; a new filter is twice the last one's size,
// up to recentFilterMaxBits, within RecentFilterBytesMax; a filter is
// never given up inside the window. An id with no room left is not added:
// it is uncovered, and every new id is looked up in the store (its dedup
// key, and the blocks of seqs uncoveredLo..uncoveredHi) while it is inside
// the window. blockRoom chooses the kind idInBlock only while the filters
// have room for it, so that a busy customer's look-ups read dedup keys,
// not a day of blocks.
func (r *recentIDs) remember(e recentEntry) {
	if e.kind == idInBlock {
		l := r.leftOf()
		l.pending = append(l.pending, e)
		if len(l.pending) >= DedupBlockIDs {
			l.seal()
		}
	}
	fs := r.filterList()
	if len(fs) == 0 || fs[len(fs)-1].full() {
		bits := r.nextFilterBits()
		if r.filterBits()+bits > 8*RecentFilterBytesMax {
			r.uncover(e)
			return
		}
		l := r.leftOf()
		l.filters = append(l.filters, newIDFilter(bits))
		fs = l.filters
	}
	fs[len(fs)-1].add(e)
}

// expireFilters drops the filters whose newest id left the window by at.
func (r *recentIDs) expireFilters(at int64) {
	for fs := r.filterList(); len(fs) > 0 && at-fs[0].newest > int64(IdempotencyWindow); fs = r.filterList() {
		r.dropFilter()
	}
}

// uncover notes an id the filters have no room for.
func (r *recentIDs) uncover(e recentEntry) {
	l := r.leftOf()
	if e.at >= r.uncoveredUntil { // what was uncovered left the window
		l.uncoveredLo, l.uncoveredHi = math.MaxUint64, 0
	}
	r.uncoveredUntil = max(r.uncoveredUntil, e.at+int64(IdempotencyWindow))
	if e.kind == idInBlock {
		l.uncoveredLo, l.uncoveredHi = min(l.uncoveredLo, e.seq), max(l.uncoveredHi, e.seq)
	}
}

// nextFilterBits is the size of the next filter.
func (r *recentIDs) nextFilterBits() int {
	fs := r.filterList()
	if len(fs) == 0 {
		return recentFilterMinBits
	}
	return min(2*fs[len(fs)-1].bits(), recentFilterMaxBits)
}

// blockRoom says whether the filters can take every id the ring holds and
// one more, as they leave it, within RecentFilterBytesMax: the room left
// in the filling filter and in the filters that can follow it. An id
// that leaves the ring takes one id of room, and ids leave in the order
// they came, so an id given the kind idInBlock now finds room when it
// leaves.
func (r *recentIDs) blockRoom() bool {
	need := r.n + 1
	room, bits, used := 0, recentFilterMinBits, r.filterBits()
	if fs := r.filterList(); len(fs) > 0 {
		last := &fs[len(fs)-1]
		room = max(last.bits()/filterBitsPerID-last.n, 0)
		bits = r.nextFilterBits()
	}
	for room < need && used+bits <= 8*RecentFilterBytesMax {
		room += bits / filterBitsPerID
		used += bits
		bits = min(2*bits, recentFilterMaxBits)
	}
	return room >= need
}

// seal moves the pending ids to the sealed ones. A Step seals a block at
// most every DedupBlockIDs ids that leave the ring (one a client's event),
// and hands it over (handOver); applying stored events, the block is in
// the store (stored).
//
// A block holds at most dedupBlockMax ids, and a block sealed and not
// handed over yet seals no other: past a replay that sealed elsewhere than
// the live customer did, thousands may be pending (replayed); they stay
// pending, in the snapshot, until later ids leaving the ring seal them a
// block at a time.
func (l *leftIDs) seal() {
	if len(l.sealed) > 0 {
		return
	}
	n := min(len(l.pending), DedupBlockMax)
	l.sealed = append(l.sealed, l.pending[:n]...)
	l.pending = append(l.pending[:0], l.pending[n:]...)
}

// unstoredMax is how many of the ids a replay sealed past the store's last
// block it keeps, the newest: the live customer had at most its pending
// ids there (fewer than DedupBlockIDs, or after a replay like this one
// fewer than unstoredMax); the others were keyed (a store written before
// blocks: every id).
const unstoredMax = 2 * DedupBlockMax

// pendingMax bounds the pending ids: fewer than DedupBlockIDs but after a
// replay that sealed ids elsewhere than the live customer did (replayed),
// handed over DedupBlockMax a Step.
const pendingMax = unstoredMax + DedupBlockIDs

// DedupBlockMax is the most ids a dedup block holds: the store refuses a
// larger one, and more pending ids wait for the next Step.
const DedupBlockMax = 1024

// handOver gives the sealed ids to the store as a dedup block carried by
// the append whose last event is seq (a Step's with events: sealing
// happens only as events are applied), and keeps them as flying until it
// is durable.
func (r *recentIDs) handOver(seq uint64) []DedupID {
	l := r.left
	if l == nil || len(l.sealed) == 0 {
		return nil
	}
	block := make([]DedupID, len(l.sealed))
	for i, e := range l.sealed {
		block[i] = DedupID{Digest: e.id, Seq: e.seq, RecordedAt: e.at}
	}
	l.sealed = l.sealed[:0]
	l.flying = append(l.flying, flyingBlock{ids: block, seq: seq})
	return block
}

// landed forgets the flying blocks whose appends are durable.
func (r *recentIDs) landed(durable uint64) {
	l := r.left
	if l == nil {
		return
	}
	n := 0
	for n < len(l.flying) && l.flying[n].seq <= durable {
		n++
	}
	if n > 0 {
		l.flying = append(l.flying[:0], l.flying[n:]...)
		clear(l.flying[len(l.flying):cap(l.flying)])
	}
}

// stored forgets the sealed ids once the stored event that sealed them
// was applied: its append carried their block, unless the store's blocks
// end before them (blocksTo, RebuildFrom: a replay that seals elsewhere
// than the live customer did, from a state of another version), when
// they are pending again.
func (r *recentIDs) stored(blocksTo uint64) {
	l := r.left
	if l == nil || len(l.sealed) == 0 {
		return
	}
	for _, e := range l.sealed {
		if e.seq > blocksTo {
			l.unstored = append(l.unstored, e)
		}
	}
	l.sealed = l.sealed[:0]
	if len(l.unstored) > 2*unstoredMax {
		l.unstored = append(l.unstored[:0], l.unstored[len(l.unstored)-unstoredMax:]...)
	}
}

// replayed ends a replay told that the store's blocks end at blocksTo:
// the ids it sealed past blocksTo and still inside the window at now are
// pending again, before the pending ones, and the pending ids the store's
// blocks hold already are dropped, so that no two blocks hold one id.
func (r *recentIDs) replayed(blocksTo uint64, now int64) {
	l := r.left
	if l == nil {
		return
	}
	l.unstored = slices.DeleteFunc(l.unstored, func(e recentEntry) bool { return now-e.at > int64(IdempotencyWindow) })
	if n := len(l.unstored); n > unstoredMax {
		l.unstored = l.unstored[n-unstoredMax:]
	}
	l.pending = slices.DeleteFunc(l.pending, func(e recentEntry) bool { return e.seq <= blocksTo })
	if len(l.unstored) > 0 {
		l.pending = append(l.unstored, l.pending...)
		l.unstored = nil
	}
	// Still pending, and so in a snapshot: the next id to leave the ring
	// seals them.
}

// findLeft is the seq of an id that left the ring and that no dedup
// block in the store holds yet, or holds in an append maybe in flight.
func (r *recentIDs) findLeft(d idDigest) (uint64, bool) {
	l := r.left
	if l == nil {
		return 0, false
	}
	for _, list := range [][]recentEntry{l.pending, l.sealed} {
		if seq, ok := findIn(list, d); ok {
			return seq, true
		}
	}
	for _, b := range l.flying {
		for i := range b.ids {
			if b.ids[i].Digest == d {
				return b.ids[i].Seq, true
			}
		}
	}
	return 0, false
}

func findIn(list []recentEntry, d idDigest) (uint64, bool) {
	for i := range list {
		if list[i].id == d {
			return list[i].seq, true
		}
	}
	return 0, false
}

// dropFilter drops the oldest filter; slices.Delete clears the freed slot,
// so its words are not kept reachable behind the slice's start.
func (r *recentIDs) dropFilter() { r.left.filters = slices.Delete(r.left.filters, 0, 1) }

func (r *recentIDs) filterBits() int {
	n := 0
	fs := r.filterList()
	for i := range fs {
		n += fs[i].bits()
	}
	return n
}

// mayHold says whether the id may have been stored inside the window before
// now though the ring does not hold it: a filter may hold it, or the
// filters do not cover now. False is certain. from..to are the seqs of the
// dedup blocks that may hold it (from > to: none, only a dedup key).
func (r *recentIDs) mayHold(d idDigest, now time.Time) (may bool, from, to uint64) {
	from, to = math.MaxUint64, 0
	if unixNanos(now) < r.uncoveredUntil {
		may = true
		from, to = r.uncoveredSeqs()
	}
	fs := r.filterList()
	for i := range fs {
		if f := &fs[i]; f.has(d) {
			may = true
			if f.lo <= f.hi {
				from, to = min(from, f.lo), max(to, f.hi)
			}
		}
	}
	return may, from, to
}

// Sizes of the filters: the first holds 409 ids in 1 KiB, the largest
// 13,107 in 32 KiB.
const (
	recentFilterMinBits = 8 << 10
	recentFilterMaxBits = 256 << 10
	// 20 bits an id with filterHashes: ~0.009% false positives a full
	// filter, against ~0.05% at 16 and ~0.12% at 14. Each false positive
	// is a store read on the customer's turn (its dedup key, up to a
	// filter's range of dedup blocks, and its tombstone key): ~430 us in
	// bench ingest with 1,000 customers, where 0.06% of new ids were
	// looked up at 16 bits 25 s into the run (more filters fill as a run
	// goes on: ~0.17% by 60 s), 3% of the server's CPU. RecentFilterBytesMax
	// holds ~25,000 ids at 20 bits, ~31,500 at 16. Only full() and
	// blockRoom read it: a snapshot's filter filled at 16 is read as it is,
	// and the next one is filled at 20.
	filterBitsPerID = 20
	filterHashes    = 10
)

// Filters' sizes are powers of two: the least, and the largest, which a
// filter twice the last one's size reaches.
var _ = [1]struct{}{}[recentFilterMinBits&(recentFilterMinBits-1)|recentFilterMaxBits&(recentFilterMaxBits-1)]

// idFilter is a Bloom filter of id digests: the two halves of a digest are
// the two hashes its positions are made of (Kirsch and Mitzenmacher). Its
// size in bits is a power of two (a snapshot's filter of another size
// fails it), so a position is masked, not divided: ten 64-bit divisions
// were most of an add.
type idFilter struct {
	words  []uint64
	n      int   // ids added
	newest int64 // recorded_at of the newest id added, unix ns
	// lo..hi are the seqs of its ids in dedup blocks (lo > hi: none).
	lo, hi uint64
}

func newIDFilter(bits int) idFilter {
	return idFilter{words: make([]uint64, bits/64), lo: math.MaxUint64}
}

func (f *idFilter) bits() int  { return 64 * len(f.words) }
func (f *idFilter) full() bool { return f.n >= f.bits()/filterBitsPerID }

func (f *idFilter) add(e recentEntry) {
	mask := uint64(f.bits() - 1)
	for i := range uint64(filterHashes) {
		p := (e.id[0] + i*(e.id[1]|1)) & mask
		f.words[p/64] |= 1 << (p % 64)
	}
	f.n++
	f.newest = max(f.newest, e.at)
	if e.kind == idInBlock {
		f.lo, f.hi = min(f.lo, e.seq), max(f.hi, e.seq)
	}
}

func (f *idFilter) has(d idDigest) bool {
	mask := uint64(f.bits() - 1)
	for i := range uint64(filterHashes) {
		p := (d[0] + i*(d[1]|1)) & mask
		if f.words[p/64]&(1<<(p%64)) == 0 {
			return false
		}
	}
	return true
}

func (r *recentIDs) lookup(id string) (uint64, bool) {
	return r.find(digestID(id))
}

// at is the i-th id held, oldest first.
func (r *recentIDs) at(i int) recentEntry {
	return r.ring[(r.start+i)%len(r.ring)].entry()
}

// recentEntryMaxBytes bounds an entry's size in a snapshot: the digest, and
// the seq and time as varints.
const recentEntryMaxBytes = 16 + 2*binary.MaxVarintLen64

// DedupID is an id that left a customer's memory inside the idempotency
// window, as a dedup block keeps it in the store: the first 128 bits of
// its SHA-256 (IDDigest), its event's seq and recorded_at (unix ns).
type DedupID struct {
	Digest     [2]uint64
	Seq        uint64
	RecordedAt int64
}

// IDDigest is the digest of an event id that DedupID holds.
func IDDigest(id string) [2]uint64 { return digestID(id) }
