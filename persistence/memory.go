package persistence

// The memory engine: maps under one mutex, the reference the conformance suite
// holds Pebble to, and the store of actor tests. Like Pebble's, its writer is
// one goroutine that takes requests from a bounded queue in order and
// completes each before the next, so done callbacks run in Append-call order.

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/throughline/throughline/journey"
)

type memEngine struct {
	core
	writerDone chan struct{}
	closeOnce  sync.Once

	mu struct {
		sync.Mutex
		customers  map[customerKey]*memCustomer
		tombstones map[customerKey]map[[tombstoneHashLen]byte]time.Time
		identities map[string]string  // identity key -> customer
		due        map[string]DueWork // due key -> work
		kv         map[string][]byte  // mark and record keys -> values
	}
}

type customerKey struct {
	partition int
	customer  string
}

type memCustomer struct {
	events   [][]byte // encoded; events[i] has seq i+1
	dedup    map[string]dedupEntry
	snapshot []byte // encoded, nil when none
}

type dedupEntry struct {
	seq        uint64
	recordedAt time.Time
}

// NewMemory returns an empty in-memory engine of the given partition count
// (<= 0: DefaultPartitions). It keeps nothing across Close.
func NewMemory(partitions int) Engine {
	if partitions <= 0 {
		partitions = DefaultPartitions
	}
	if partitions > PartitionsMax {
		panic("persistence: NewMemory with too many partitions")
	}
	m := &memEngine{core: newCore(partitions, defaultQueueLength), writerDone: make(chan struct{})}
	m.mu.customers = make(map[customerKey]*memCustomer)
	m.mu.tombstones = make(map[customerKey]map[[tombstoneHashLen]byte]time.Time)
	m.mu.identities = make(map[string]string)
	m.mu.due = make(map[string]DueWork)
	m.mu.kv = make(map[string][]byte)
	go m.run()
	return m
}

func (m *memEngine) Partitions() int         { return m.partitions }
func (m *memEngine) Failed() <-chan struct{} { return m.latch.failed }
func (m *memEngine) Err() error              { return m.latch.Err() }
func (m *memEngine) Stats() Stats            { return m.counters.stats(len(m.queue)) }
func (m *memEngine) Flushing() bool          { return false } // nothing to flush
func (m *memEngine) Elastic(int)             {}               // no WAL to sync
func (m *memEngine) Store(p int) Store       { m.checkPartition(p); return &memStore{m: m, p: p} }

func (m *memEngine) Close() error {
	m.closeOnce.Do(func() {
		m.gate.close()
		close(m.queue)
		<-m.writerDone
	})
	return nil
}

func (m *memEngine) run() {
	defer close(m.writerDone)
	for o := range m.queue {
		switch {
		case o.append != nil:
			o.complete("", m.applyAppend(o.append))
		case o.claim != nil:
			o.complete(m.applyClaim(o.claim), nil)
		case o.erase != nil:
			m.applyErase(o.erase)
			o.complete("", nil)
		case o.records != nil:
			m.applyRecords(o.records)
			o.complete("", nil)
		}
	}
}

func (m *memEngine) applyAppend(a *appendOp) error {
	if a.err != nil {
		return a.err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ck := customerKey{a.partition, a.customer}
	c := m.mu.customers[ck]
	var last uint64
	if c != nil {
		last = uint64(len(c.events))
	}
	if a.prevSeq != last {
		m.counters.conflicts.Add(1)
		return conflict(a.prevSeq, last)
	}
	if c == nil && len(a.events) > 0 {
		c = &memCustomer{dedup: make(map[string]dedupEntry)}
		m.mu.customers[ck] = c
	}
	for i := range a.events {
		ev := &a.events[i]
		// Kept at its size, apart from the op's values (a recycled op
		// reuses them).
		c.events = append(c.events, bytes.Clone(ev.value))
		if ev.dedup || ev.inBlock { // exact: no blocks needed
			c.dedup[ev.id] = dedupEntry{seq: ev.seq, recordedAt: ev.recordedAt}
		}
	}
	for _, w := range a.dueDelete {
		delete(m.mu.due, string(dueKey(a.partition, timeToNanos(w.At), w.Customer, w.Kind, w.Ref)))
	}
	for _, w := range a.dueAdd {
		m.mu.due[string(dueKey(a.partition, timeToNanos(w.At), w.Customer, w.Kind, w.Ref))] = w
	}
	for _, mk := range a.marks {
		m.mu.kv[string(markKey(a.partition, mk.Broadcast, a.customer))] = mk.Value
	}
	m.counters.commit(len(a.events), 0)
	m.counters.appends.Add(1)
	return nil
}

func (m *memEngine) applyClaim(c *claimOp) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := string(identityKey(c.partition, c.kind, c.value))
	if owner, ok := m.mu.identities[k]; ok {
		return owner
	}
	m.mu.identities[k] = c.customer
	return c.customer
}

func (m *memEngine) applyErase(e *eraseOp) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ck := customerKey{e.partition, e.customer}
	if c := m.mu.customers[ck]; c != nil {
		broadcasts := map[string]struct{}{}
		for _, v := range c.events {
			if h, err := decodeEventHead(v); err == nil {
				_ = noteBroadcast(broadcasts, h.Type, v)
			}
		}
		for bc := range broadcasts {
			delete(m.mu.kv, string(markKey(e.partition, bc, e.customer)))
		}
		tombs := m.mu.tombstones[ck]
		if tombs == nil {
			tombs = make(map[[tombstoneHashLen]byte]time.Time)
			m.mu.tombstones[ck] = tombs
		}
		for id, d := range c.dedup {
			h := hashEventID(id)
			tombs[h] = d.recordedAt
			if e.idTombstones {
				m.mu.kv[string(erasedIDKey(erasedIDPartition(id, m.partitions), h))] = encodeTime(d.recordedAt)
			}
		}
		delete(m.mu.customers, ck)
	}
	prefix := duePrefix(e.partition)
	for k, w := range m.mu.due {
		if w.Customer == e.customer && bytes.HasPrefix([]byte(k), prefix) {
			delete(m.mu.due, k)
		}
	}
	for _, id := range e.identities {
		k := string(identityKey(identityPartition(id.Kind, id.Value, m.partitions), id.Kind, id.Value))
		if m.mu.identities[k] == e.customer {
			delete(m.mu.identities, k)
		}
	}
}

func (m *memEngine) applyRecords(r *recordsOp) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range r.deletes {
		delete(m.mu.kv, string(recordKey(r.partition, r.collection, k)))
	}
	for _, rec := range r.puts {
		m.mu.kv[string(recordKey(r.partition, r.collection, rec.Key))] = rec.Value
	}
}

// scanKV calls fn with the kv entries whose keys have the prefix, in key
// order, on a copy taken under the lock.
func (m *memEngine) scanKV(ctx context.Context, prefix []byte, fn func(k, v []byte) bool) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.end()
	type entry struct{ k, v []byte }
	var entries []entry
	m.mu.Lock()
	for k, v := range m.mu.kv {
		if bytes.HasPrefix([]byte(k), prefix) {
			entries = append(entries, entry{[]byte(k), v})
		}
	}
	m.mu.Unlock()
	slices.SortFunc(entries, func(a, b entry) int { return bytes.Compare(a.k, b.k) })
	for _, e := range entries {
		if !fn(e.k, e.v) {
			break
		}
	}
	return nil
}

// memStore is one partition of a memory engine.
type memStore struct {
	m *memEngine
	p int
}

func (s *memStore) Partition() int { return s.p }

func (s *memStore) Append(ctx context.Context, req *AppendRequest, done func(error)) {
	s.m.appendTo(ctx, s.p, req, done)
}

func (s *memStore) ClaimIdentity(ctx context.Context, kind, value, customer string) (string, error) {
	return s.m.claim(ctx, s.p, kind, value, customer)
}

func (s *memStore) Erase(ctx context.Context, customer string, identities []IdentityKey) error {
	return s.m.erase(ctx, s.p, customer, identities)
}

func (s *memStore) Load(ctx context.Context, customer string) (*Snapshot, []journey.Event, error) {
	if err := s.m.begin(ctx); err != nil {
		return nil, nil, err
	}
	defer s.m.end()
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	c := s.m.mu.customers[customerKey{s.p, customer}]
	if c == nil {
		return nil, nil, nil
	}
	var snap *Snapshot
	var after uint64
	if c.snapshot != nil {
		var err error
		if snap, err = decodeSnapshot(c.snapshot); err != nil {
			return nil, nil, err
		}
		after = snap.Seq
	}
	events, err := c.eventsAfter(after, 0)
	return snap, events, err
}

func (c *memCustomer) eventsAfter(after uint64, limit int) ([]journey.Event, error) {
	var out []journey.Event
	for i := after; i < uint64(len(c.events)) && !limitReached(out, limit); i++ {
		ev, err := decodeEvent(c.events[i])
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

func (s *memStore) Events(ctx context.Context, customer string, after uint64, limit int) ([]journey.Event, error) {
	if err := s.m.begin(ctx); err != nil {
		return nil, err
	}
	defer s.m.end()
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	c := s.m.mu.customers[customerKey{s.p, customer}]
	if c == nil {
		return nil, nil
	}
	return c.eventsAfter(after, limit)
}

func (s *memStore) LastSeq(ctx context.Context, customer string) (uint64, error) {
	if err := s.m.begin(ctx); err != nil {
		return 0, err
	}
	defer s.m.end()
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if c := s.m.mu.customers[customerKey{s.p, customer}]; c != nil {
		return uint64(len(c.events)), nil
	}
	return 0, nil
}

func (s *memStore) SaveSnapshot(ctx context.Context, customer string, snap *Snapshot) error {
	if err := s.m.begin(ctx); err != nil {
		return err
	}
	defer s.m.end()
	if err := checkSnapshot(customer, snap); err != nil {
		return err
	}
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	ck := customerKey{s.p, customer}
	c := s.m.mu.customers[ck]
	if c == nil {
		c = &memCustomer{dedup: make(map[string]dedupEntry)}
		s.m.mu.customers[ck] = c
	}
	c.snapshot = encodeSnapshot(snap)
	return nil
}

// LastDedupBlock: the memory store keeps every id exactly.
func (s *memStore) LastDedupBlock(ctx context.Context, customer string) (uint64, error) {
	if err := s.m.begin(ctx); err != nil {
		return 0, err
	}
	defer s.m.end()
	return math.MaxUint64, nil
}

// LookupEventIn is LookupEvent: the memory store keeps every id exactly.
func (s *memStore) LookupEventIn(ctx context.Context, customer, eventID string, _, _ uint64) (uint64, bool, bool, error) {
	return s.LookupEvent(ctx, customer, eventID)
}

func (s *memStore) LookupEvent(ctx context.Context, customer, eventID string) (uint64, bool, bool, error) {
	if err := s.m.begin(ctx); err != nil {
		return 0, false, false, err
	}
	defer s.m.end()
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	ck := customerKey{s.p, customer}
	if c := s.m.mu.customers[ck]; c != nil {
		if d, ok := c.dedup[eventID]; ok {
			return d.seq, true, false, nil
		}
	}
	_, erased := s.m.mu.tombstones[ck][hashEventID(eventID)]
	return 0, false, erased, nil
}

func (s *memStore) LookupErasedID(ctx context.Context, eventID string) (bool, error) {
	if owner := erasedIDPartition(eventID, s.m.partitions); owner != s.p {
		return false, fmt.Errorf("%w: event id of partition %d asked of partition %d", ErrInvalid, owner, s.p)
	}
	if err := s.m.begin(ctx); err != nil {
		return false, err
	}
	defer s.m.end()
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	_, erased := s.m.mu.kv[string(erasedIDKey(s.p, hashEventID(eventID)))]
	return erased, nil
}

func (s *memStore) LookupIdentity(ctx context.Context, kind, value string) (string, error) {
	if err := checkIdentity(s.p, s.m.partitions, kind, value); err != nil {
		return "", err
	}
	if err := s.m.begin(ctx); err != nil {
		return "", err
	}
	defer s.m.end()
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	return s.m.mu.identities[string(identityKey(s.p, kind, value))], nil
}

// ScanSegment decodes every event of the partition: the reference, not fast.
func (s *memStore) ScanSegment(ctx context.Context, eventType string, from, to time.Time, fn func(string) bool) error {
	if err := s.m.begin(ctx); err != nil {
		return err
	}
	defer s.m.end()
	var found []string
	s.m.mu.Lock()
	for ck, c := range s.m.mu.customers {
		if ck.partition != s.p {
			continue
		}
		match, err := c.hasEvent(eventType, from, to)
		if err != nil {
			s.m.mu.Unlock()
			return err
		}
		if match {
			found = append(found, ck.customer)
		}
	}
	s.m.mu.Unlock()
	// fn runs without the lock: it may call the store.
	for _, customer := range found {
		if !fn(customer) {
			break
		}
	}
	return nil
}

func (c *memCustomer) hasEvent(eventType string, from, to time.Time) (bool, error) {
	for _, b := range c.events {
		h, err := decodeEventHead(b)
		if err != nil {
			return false, err
		}
		if h.Type == eventType && !h.RecordedAt.Before(from) && h.RecordedAt.Before(to) {
			return true, nil
		}
	}
	return false, nil
}

func (s *memStore) ScanDue(ctx context.Context, from DueWork, until time.Time, fn func(DueWork) bool) error {
	if err := s.m.begin(ctx); err != nil {
		return err
	}
	defer s.m.end()
	type entry struct {
		key  string
		work DueWork
	}
	var due []entry
	// Both bounds are in the partition's due keys (keys.go): between them
	// is only its own.
	start, end := dueStart(s.p, from), dueBound(s.p, timeToNanos(until))
	s.m.mu.Lock()
	for k, w := range s.m.mu.due {
		if k >= string(start) && k < string(end) {
			due = append(due, entry{k, w})
		}
	}
	s.m.mu.Unlock()
	// Key order is At order (keys.go).
	slices.SortFunc(due, func(a, b entry) int { return bytes.Compare([]byte(a.key), []byte(b.key)) })
	for _, e := range due {
		if !fn(e.work) {
			break
		}
	}
	return nil
}

func checkSnapshot(customer string, snap *Snapshot) error {
	if snap == nil {
		return errNilSnapshot
	}
	return checkParts(customer)
}

func (s *memStore) ScanMarks(ctx context.Context, broadcast string, fn func(customer string, value []byte) bool) error {
	if err := checkParts(broadcast); err != nil {
		return err
	}
	return s.m.scanKV(ctx, markPrefix(s.p, broadcast), func(k, v []byte) bool {
		_, _, customer, err := decodeMarkKey(k)
		return err != nil || fn(customer, v)
	})
}

func (s *memStore) WriteRecords(ctx context.Context, collection string, puts []Record, deletes []string) error {
	return s.m.writeRecords(ctx, s.p, collection, puts, deletes)
}

func (s *memStore) ScanRecords(ctx context.Context, collection, after string, fn func(key string, value []byte) bool) error {
	if err := checkParts(collection, after); err != nil {
		return err
	}
	return s.m.scanKV(ctx, recordPrefix(s.p, collection), func(k, v []byte) bool {
		_, _, key, err := decodeRecordKey(k)
		if err != nil || key <= after {
			return true
		}
		return fn(key, v)
	})
}
