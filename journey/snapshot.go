package journey

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"
)

// snapshotVersion is the first byte of a snapshot; a snapshot of another
// version is ignored and the customer is rebuilt from its events.
//
// A snapshot is read on every activation, so it is binary:
//
//	version byte (4)
//	id string, seq uvarint, last_at varint unix nanos
//	identities: uvarint kinds, then per kind: kind string, uvarint values, values
//	profile: bytes (JSON object)
//	journey: bytes (JSON of the conversation, cases, last agent, tags,
//	  stage, pending outbounds, timers, held messages and derived counts)
//	timeline: uvarint count, then per event: bytes (its event record)
//	recent ids: uvarint count, then per id: 16-byte digest, seq<<2 | kind
//	  uvarint, at varint
//	uncovered until: varint unix nanos, then the seqs of its ids in dedup
//	  blocks: lo uvarint, hi uvarint
//	recent filters: uvarint count, then per filter: ids uvarint, newest
//	  varint unix nanos, lo uvarint, hi uvarint (seqs of its ids in dedup
//	  blocks), uvarint words, words (8 bytes each)
//	pending dedup block ids (recentIDs): a uvarint count, then per id:
//	  16-byte digest, seq uvarint, at varint
//
// Versions 4 and 5 are still read: their ids all had dedup keys (kind
// idKeyed), their filters no seqs, and no block was pending. Version 5
// had no seq in an id's kind, no lo and hi. Version 4 had a byte instead
// of uncovered until and the filters: 1 when no id had left memory yet.
const snapshotVersion byte = 6

// snapshotJourney is the part of a snapshot kept as JSON: small, and shaped
// by the conversation and case rules that change with the product.
type snapshotJourney struct {
	Conversation *Conversation     `json:"conversation,omitempty"`
	Cases        []Case            `json:"cases,omitempty"`
	LastAgent    string            `json:"last_agent,omitempty"`
	Tags         []string          `json:"tags,omitempty"`
	Stage        string            `json:"stage,omitempty"`
	LastChannel  string            `json:"last_channel,omitempty"`
	Outbounds    []PendingOutbound `json:"outbounds,omitempty"`
	Timers       []Timer           `json:"timers,omitempty"`
	Held         []HeldMessage     `json:"held,omitempty"`
	Workflow     *WorkflowRun      `json:"workflow,omitempty"`
	Counts       []typeTimes       `json:"counts,omitempty"`
	Proactive    []int64           `json:"proactive,omitempty"`
	Broadcasts   []BroadcastState  `json:"broadcasts,omitempty"`
	OfferMarks   []offerMark       `json:"offer_marks,omitempty"` // absent in snapshots before offers: none
}

// EncodeSnapshot encodes the state for the store.
func (c *Customer) EncodeSnapshot() []byte {
	profile, err := json.Marshal(orEmpty(c.Profile)) // {} when nil, as snapshots always had
	if err != nil {
		panic(fmt.Sprintf("journey: snapshot profile of %s: %v", c.ID, err))
	}
	c.counts.ordered()
	extra, err := json.Marshal(snapshotJourney{
		Conversation: c.Conversation, Cases: c.Cases, LastAgent: c.LastAgent, Tags: c.Tags, Stage: c.Stage,
		LastChannel: c.LastChannel, Outbounds: redacted(c.Outbounds), Timers: c.Timers, Held: c.Held, Workflow: c.Workflow,
		Counts: c.counts.types, Proactive: c.proactive, Broadcasts: c.Broadcasts, OfferMarks: c.offerMarks,
	})
	if err != nil {
		panic(fmt.Sprintf("journey: snapshot of %s: %v", c.ID, err))
	}
	timeline := c.timeline.last(c.Seq, TimelineMax, c.ID)
	var pending []recentEntry
	if l := c.recent.left; l != nil {
		// Sealed is empty between Steps; were it not, its ids are pending
		// as much as the others (first: they are older).
		pending = l.pending
		if len(l.sealed) > 0 {
			pending = append(slices.Clone(l.sealed), l.pending...)
		}
	}
	size := 1024 + len(profile) + len(extra) + (c.recent.n+len(pending))*recentEntryMaxBytes + 8*c.recent.filterBits()/64 + 64*len(c.recent.filterList())
	for i := range timeline {
		size += binary.MaxVarintLen64 + EventRecordSize(&timeline[i])
	}
	b := make([]byte, 0, size) // one allocation: growing it was half of what a snapshot allocated
	b = append(b, snapshotVersion)
	b = appendRecordString(b, c.ID)
	b = binary.AppendUvarint(b, c.Seq)
	b = binary.AppendVarint(b, unixNanos(c.LastAt))
	kinds := slices.Sorted(maps.Keys(c.Identities))
	b = binary.AppendUvarint(b, uint64(len(kinds)))
	for _, k := range kinds {
		b = appendRecordString(b, k)
		b = binary.AppendUvarint(b, uint64(len(c.Identities[k])))
		for _, v := range c.Identities[k] {
			b = appendRecordString(b, v)
		}
	}
	b = appendRecordBytes(b, profile)
	b = appendRecordBytes(b, extra)
	b = binary.AppendUvarint(b, uint64(len(timeline)))
	var rec []byte
	for i := range timeline {
		rec = AppendEventRecord(rec[:0], &timeline[i])
		b = appendRecordBytes(b, rec)
	}
	b = binary.AppendUvarint(b, uint64(c.recent.n))
	for i := range c.recent.n {
		e := c.recent.at(i)
		b = binary.BigEndian.AppendUint64(b, e.id[0])
		b = binary.BigEndian.AppendUint64(b, e.id[1])
		b = binary.AppendUvarint(b, e.seq<<2|uint64(e.kind))
		b = binary.AppendVarint(b, e.at)
	}
	b = binary.AppendVarint(b, c.recent.uncoveredUntil)
	lo, hi := c.recent.uncoveredSeqs()
	b = binary.AppendUvarint(binary.AppendUvarint(b, lo), hi)
	b = binary.AppendUvarint(b, uint64(len(c.recent.filterList())))
	for _, f := range c.recent.filterList() {
		b = binary.AppendUvarint(b, uint64(f.n))
		b = binary.AppendVarint(b, f.newest)
		b = binary.AppendUvarint(binary.AppendUvarint(b, f.lo), f.hi)
		b = binary.AppendUvarint(b, uint64(len(f.words)))
		for _, w := range f.words {
			b = binary.BigEndian.AppendUint64(b, w)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(pending)))
	for _, e := range pending {
		b = binary.BigEndian.AppendUint64(b, e.id[0])
		b = binary.BigEndian.AppendUint64(b, e.id[1])
		b = binary.AppendUvarint(b, e.seq)
		b = binary.AppendVarint(b, e.at)
	}
	return b
}

// DecodeSnapshot rebuilds a customer from a snapshot. An error means the
// snapshot is unusable and the customer must be rebuilt from its events.
func DecodeSnapshot(data []byte) (*Customer, error) {
	r := recordReader{b: data}
	v := r.byte()
	if v != snapshotVersion && v != 5 && v != 4 {
		return nil, fmt.Errorf("journey: snapshot version %d, want %d", v, snapshotVersion)
	}
	c := NewCustomer(r.str())
	c.Seq = r.uvarint()
	c.LastAt = fromUnixNanos(r.varint())
	for range r.count() {
		kind := r.str()
		vals := make([]string, r.count())
		for i := range vals {
			vals[i] = r.str()
		}
		if c.Identities == nil {
			c.Identities = map[string][]string{}
		}
		c.Identities[kind] = vals
	}
	profile, extra := r.bytes(), r.bytes()
	for range r.count() {
		ev, err := DecodeEventRecord(r.bytes())
		if err != nil {
			r.fail("timeline event: " + err.Error())
			break
		}
		c.timeline.push(&ev, c.ID)
	}
	for range r.count() {
		e := recentEntry{kind: idKeyed}
		e.id[0], e.id[1] = r.uint64(), r.uint64()
		e.seq, e.at = r.uvarint(), r.varint()
		if v >= 6 {
			e.seq, e.kind = e.seq>>2, idKind(e.seq&3)
			if e.kind > idLocal {
				r.fail("recent id of an unknown kind")
			}
		}
		c.recent.addDigest(e)
	}
	switch v {
	case 4:
		if r.byte() != 1 { // some ids left memory, unrecorded: all of them before LastAt
			c.recent.uncoveredUntil = unixNanos(c.LastAt) + int64(IdempotencyWindow)
		}
	case 5:
		c.recent.uncoveredUntil = r.varint()
		r.filters(&c.recent, false)
	default:
		c.recent.uncoveredUntil = r.varint()
		lo, hi := r.uvarint(), r.uvarint()
		r.filters(&c.recent, true)
		pending := r.dedupBlock(pendingMax)
		if lo <= hi || len(pending) > 0 || len(c.recent.filterList()) > 0 {
			l := c.recent.leftOf()
			l.uncoveredLo, l.uncoveredHi, l.pending = lo, hi, pending
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return nil, fmt.Errorf("journey: decode snapshot: %w", r.err)
	}
	if err := json.Unmarshal(profile, &c.Profile); err != nil || c.Profile == nil {
		return nil, fmt.Errorf("journey: decode snapshot profile: %v", err)
	}
	if len(c.Profile) == 0 {
		c.Profile = nil // as NewCustomer's
	}
	var j snapshotJourney
	if err := json.Unmarshal(extra, &j); err != nil {
		return nil, fmt.Errorf("journey: decode snapshot: %w", err)
	}
	c.Conversation, c.Cases, c.LastAgent = j.Conversation, j.Cases, j.LastAgent
	c.Tags, c.Stage, c.LastChannel = j.Tags, j.Stage, j.LastChannel
	c.Outbounds, c.Timers, c.Held, c.Workflow = j.Outbounds, j.Timers, j.Held, j.Workflow
	c.counts.types, c.proactive, c.Broadcasts = j.Counts, j.Proactive, j.Broadcasts
	c.offerMarks = j.OfferMarks
	for i := range c.Outbounds {
		c.Outbounds[i].NextAt = time.Time{} // the key's time is known again when it comes due
	}
	return c, nil
}

// unixNanos is t in unix nanoseconds, 0 for the zero time (which has none).
func unixNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// ErrGap: the stored events do not follow the state being rebuilt (an
// unusable snapshot, and events that start after it): load every event and
// rebuild again without the snapshot.
var ErrGap = errors.New("journey: events do not follow the state")

// Rebuild is the state of a customer from its snapshot (nil: none) and the
// stored events after it, in seq order. A snapshot that cannot be used (an
// older format, another customer, corrupt) is ignored; then the events must
// start at seq 1, or Rebuild answers ErrGap.
func Rebuild(id string, snap []byte, events []Event) (*Customer, error) {
	return RebuildFrom(id, snap, events, math.MaxUint64)
}

// RebuildFrom is Rebuild given blocksTo, the last seq of the customer's
// last dedup block in the store (0: none; math.MaxUint64, as Rebuild: the
// store keeps every id exactly, or the events are replayed on a state of
// the live customer's version, and nothing needs reconciling). The events replayed seal the blocks their appends
// carried, unless the state they start from is of another version than
// the one the live customer had (a snapshot it could not read, or of the
// version before blocks): then the ids sealed past blocksTo are pending
// again, and those before it dropped, so that the store's blocks and the
// customer's agree.
func RebuildFrom(id string, snap []byte, events []Event, blocksTo uint64) (*Customer, error) {
	var c *Customer
	if snap != nil {
		if s, err := DecodeSnapshot(snap); err == nil && s.ID == id {
			c = s
		}
	}
	if c == nil {
		c = NewCustomer(id)
	}
	for i := range events {
		switch {
		case events[i].Seq <= c.Seq:
			continue
		case events[i].Seq != c.Seq+1:
			return nil, fmt.Errorf("%w: customer at seq %d, next stored event %d", ErrGap, c.Seq, events[i].Seq)
		}
		c.apply(&events[i], nil, nil)
		c.recent.stored(blocksTo)
	}
	if blocksTo != math.MaxUint64 {
		c.recent.replayed(blocksTo, unixNanos(c.LastAt))
	}
	return c, nil
}

// Context is the journey context of PROTOCOL section 3.
type Context struct {
	Customer     string              `json:"customer"`
	Identities   map[string][]string `json:"identities"`
	Profile      map[string]any      `json:"profile"`
	Conversation *Conversation       `json:"conversation"`
	Cases        []Case              `json:"cases"`
	LastAgent    string              `json:"last_agent,omitempty"`
	Timeline     []Event             `json:"timeline"`
	Seq          uint64              `json:"seq"`
}

// Context is the customer's journey context as of durable seq upTo: what
// readers may see (nothing before it is durable). It shares nothing with the
// state, so it may be encoded on another goroutine.
func (c *Customer) Context(upTo uint64) Context {
	ids := make(map[string][]string, len(c.Identities))
	for k, v := range c.Identities {
		ids[k] = append([]string(nil), v...)
	}
	var conv *Conversation
	if c.Conversation != nil {
		cc := *c.Conversation
		conv = &cc
	}
	return Context{
		Customer: c.ID, Identities: ids, Profile: cloneProfile(c.Profile), Conversation: conv,
		Cases: append([]Case{}, c.Cases...), LastAgent: c.LastAgent,
		Timeline: c.Timeline(upTo, ContextTimelineSize), Seq: upTo,
	}
}

// dedupBlock reads a snapshot's list of ids for a dedup block, of at most
// limit.
func (r *recordReader) dedupBlock(limit int) []recentEntry {
	n := r.count()
	if n > limit {
		r.fail("dedup block over its size")
		return nil
	}
	var list []recentEntry
	for range n {
		e := recentEntry{kind: idInBlock}
		e.id[0], e.id[1] = r.uint64(), r.uint64()
		e.seq, e.at = r.uvarint(), r.varint()
		list = append(list, e)
	}
	return list
}

// filters reads a snapshot's recent-id filters into rec; sizes past the
// limits, or not a power of two, fail the snapshot.
func (r *recordReader) filters(rec *recentIDs, seqs bool) {
	total := 0
	for range r.count() {
		f := idFilter{n: int(r.uvarint()), newest: r.varint(), lo: math.MaxUint64}
		if seqs {
			f.lo, f.hi = r.uvarint(), r.uvarint()
		}
		words := r.uvarint()
		total += int(min(words, 1<<32)) * 64
		if r.err != nil || words == 0 || words&(words-1) != 0 || words > recentFilterMaxBits/64 || total > 8*RecentFilterBytesMax || words*8 > uint64(len(r.b)) {
			r.fail("recent filter over the limits")
			return
		}
		f.words = make([]uint64, words)
		for i := range f.words {
			f.words[i] = r.uint64()
		}
		l := rec.leftOf()
		l.filters = append(l.filters, f)
	}
}
