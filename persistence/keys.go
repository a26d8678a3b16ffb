package persistence

// The key codec: every key of the store is built and parsed here, and only here.
//
// A key is
//
//	partition (uint16, big-endian) | kind (one byte) | parts
//
// String parts are length-prefixed (uint16 big-endian length, then the bytes),
// so no id can run into the next one ('/' and every other byte are legal in
// ids). Number parts are big-endian uint64, so byte order is numeric order
// within a prefix: a customer's events sort by seq, a partition's due work by
// due time. The layout of each kind:
//
//	event      p 'e' customer seq            -> journey.Event (values.go)
//	snapshot   p 's' customer                -> seq | data
//	dedup      p 'd' customer event-id       -> seq | recorded_at
//	dedup block p 'k' customer last-seq first-seq filter
//	                                         -> ids that left the journey's memory (values.go);
//	                                            the filter (dedupfilter.go) says which ids
//	                                            the block may hold without reading it. Stores
//	                                            written before it have blocks keyed by
//	                                            last-seq alone, and those are read.
//	identity   p 'i' kind value              -> customer (p: the identity's partition)
//	segment    p 'g' event-type hour customer -> recorded_at of one such event
//	due work   p 'w' at customer kind ref    -> empty
//	tombstone  p 't' customer sha256(event-id) -> recorded_at (fixed 32 bytes)
//	mark       p 'b' broadcast customer      -> the customer's outcome (journey's encoding)
//	record     p 'r' collection key          -> a document (Store.WriteRecords)
//	erased id  p 'x' sha256(event-id)        -> recorded_at; p = PartitionOf(event-id): any
//	                                            customer's erased id, for a retry that
//	                                            reaches a new customer (by identity)
//	applied    p 'a'                         -> raft index | term last applied (replicated)
//	raft log   p 'L' index                   -> a raft log entry (raft_logstore.go)
//	raft vars  p 'S' name                    -> a raft stable-store value
//	meta       0xFFFF 'm'                    -> partition count
//
// Partition 0xFFFF is reserved for node-wide keys (the meta key).
//
// A replicated partition's state machine is every key of the partition
// whose kind is at least 'a' (fsmLower to partitionEnd): its raft snapshot
// streams that range and a restore replaces it. The raft log and stable
// kinds are upper-case letters, below 'a', so they lie outside it.

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"

	"github.com/throughline/throughline/journey"
)

// Key kinds: the byte after the partition.
const (
	kindRaftLog    byte = 'L'
	kindRaftStable byte = 'S'
	kindApplied    byte = 'a'
	kindMark       byte = 'b'
	kindDedup      byte = 'd'
	kindEvent      byte = 'e'
	kindDedupBlock byte = 'k'
	kindSegment    byte = 'g'
	kindIdentity   byte = 'i'
	kindMeta       byte = 'm'
	kindRecord     byte = 'r'
	kindSnapshot   byte = 's'
	kindTombstone  byte = 't'
	kindDue        byte = 'w'
	kindErasedID   byte = 'x'
)

const (
	// PartitionsMax is the largest partition count: partition ids are
	// 0..PartitionsMax-1, and the id PartitionsMax (0xFFFF) is reserved for
	// node-wide keys.
	PartitionsMax = math.MaxUint16
	metaPartition = math.MaxUint16

	// keyPartMax is the longest string part of a key, in bytes (its length
	// prefix is a uint16). Ids of PROTOCOL.md are at most 128 characters.
	keyPartMax = math.MaxUint16

	tombstoneHashLen = 32 // sha256
)

var errKey = errors.New("persistence: malformed key")

// PartitionOf places a string among partitions: FNV-1a 64 of s, mod
// partitions. Customers are placed by their id; identities by
// kind+"\x00"+value (see identityPartition).
func PartitionOf(s string, partitions int) int {
	if partitions <= 0 {
		panic(fmt.Sprintf("persistence: PartitionOf with %d partitions", partitions))
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return int(h.Sum64() % uint64(partitions))
}

// identityPartition is the partition that owns the identity (kind, value).
func identityPartition(kind, value string, partitions int) int {
	return PartitionOf(kind+"\x00"+value, partitions)
}

// key is every field any kind of key can hold; Kind says which are used.
type key struct {
	Kind      byte
	Partition int
	Customer  string // event, snapshot, dedup, segment, due, tombstone
	Seq       uint64 // event; dedup block: its last id's
	EventID   string // dedup
	IDKind    string // identity
	IDValue   string // identity
	EventType string // segment
	Hour      uint64 // segment: unix hour
	At        uint64 // due: unix nanoseconds
	DueKind   string // due
	DueRef    string // due
	IDHash    [tombstoneHashLen]byte
	Broadcast string // mark
	Coll      string // record: collection
	RecKey    string // record: key
	Index     uint64 // raft log: entry index
	VarName   string // raft stable: value name
	// A dedup block's first seq and the filter of its ids
	// (dedupFilterBytes); both zero in a block keyed the old way (its last
	// seq alone).
	BlockFirst  uint64
	BlockFilter string
}

// encode appends the key to dst. It panics on a partition out of range or a
// string part over keyPartMax: callers validate their inputs first
// (checkParts), so either is a broken invariant.
func (k *key) encode(dst []byte) []byte {
	switch k.Kind {
	case kindMeta:
		return append(dst, metaPartition>>8, metaPartition&0xFF, kindMeta)
	case kindEvent:
		return appendEventKey(dst, k.Partition, k.Customer, k.Seq)
	case kindSnapshot:
		return appendSnapshotKey(dst, k.Partition, k.Customer)
	case kindDedup:
		return appendDedupKey(dst, k.Partition, k.Customer, k.EventID)
	case kindDedupBlock:
		dst = appendDedupBlockKey(dst, k.Partition, k.Customer, k.Seq)
		if k.BlockFilter == "" {
			return dst
		}
		if len(k.BlockFilter) != dedupFilterBytes {
			panic(fmt.Sprintf("persistence: dedup block filter of %d bytes", len(k.BlockFilter)))
		}
		return append(appendUint64(dst, k.BlockFirst), k.BlockFilter...)
	case kindIdentity:
		return appendIdentityKey(dst, k.Partition, k.IDKind, k.IDValue)
	case kindSegment:
		return appendSegmentKey(dst, k.Partition, k.EventType, k.Hour, k.Customer)
	case kindDue:
		return appendDueKey(dst, k.Partition, k.At, k.Customer, k.DueKind, k.DueRef)
	case kindTombstone:
		return appendTombstoneKey(dst, k.Partition, k.Customer, k.IDHash)
	case kindMark:
		return appendMarkKey(dst, k.Partition, k.Broadcast, k.Customer)
	case kindRecord:
		return appendRecordKey(dst, k.Partition, k.Coll, k.RecKey)
	case kindErasedID:
		return append(dst, erasedIDKey(k.Partition, k.IDHash)...)
	case kindApplied:
		return appliedKey(k.Partition)
	case kindRaftLog:
		return appendRaftLogKey(dst, k.Partition, k.Index)
	case kindRaftStable:
		return appendString(appendHead(dst, k.Partition, kindRaftStable), k.VarName)
	default:
		panic(fmt.Sprintf("persistence: unknown key kind %q", k.Kind))
	}
}

func appendHead(dst []byte, partition int, kind byte) []byte {
	if partition < 0 || partition >= PartitionsMax {
		panic(fmt.Sprintf("persistence: partition %d out of range", partition))
	}
	return append(dst, byte(partition>>8), byte(partition), kind)
}

func appendString(dst []byte, s string) []byte {
	if len(s) > keyPartMax {
		panic(fmt.Sprintf("persistence: key part of %d bytes (max %d)", len(s), keyPartMax))
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}

func appendUint64(dst []byte, n uint64) []byte {
	return binary.BigEndian.AppendUint64(dst, n)
}

// decodeKey parses any key. Every byte must be consumed: a key decodes to
// exactly one tuple, and encoding that tuple gives the same bytes back.
func decodeKey(b []byte) (key, error) {
	var k key
	if len(b) < 3 {
		return k, fmt.Errorf("%w: %d bytes", errKey, len(b))
	}
	k.Partition = int(binary.BigEndian.Uint16(b))
	k.Kind = b[2]
	d := keyDecoder{b: b[3:]}
	if (k.Kind == kindMeta) != (k.Partition == metaPartition) {
		return k, fmt.Errorf("%w: kind %q in partition %d", errKey, k.Kind, k.Partition)
	}
	switch k.Kind {
	case kindMeta:
	case kindEvent:
		k.Customer, k.Seq = d.string(), d.uint64()
	case kindSnapshot:
		k.Customer = d.string()
	case kindDedup:
		k.Customer, k.EventID = d.string(), d.string()
	case kindDedupBlock:
		k.Customer = d.string()
		var filter []byte
		var err error
		if k.Seq, k.BlockFirst, filter, _, err = dedupBlockKeyTail(d.b); err != nil {
			d.bad = true
		}
		k.BlockFilter, d.b = string(filter), nil
	case kindIdentity:
		k.IDKind, k.IDValue = d.string(), d.string()
	case kindSegment:
		k.EventType, k.Hour, k.Customer = d.string(), d.uint64(), d.string()
	case kindDue:
		k.At = d.uint64()
		k.Customer, k.DueKind, k.DueRef = d.string(), d.string(), d.string()
	case kindTombstone:
		k.Customer = d.string()
		copy(k.IDHash[:], d.bytes(tombstoneHashLen))
	case kindMark:
		k.Broadcast, k.Customer = d.string(), d.string()
	case kindRecord:
		k.Coll, k.RecKey = d.string(), d.string()
	case kindErasedID:
		copy(k.IDHash[:], d.bytes(tombstoneHashLen))
	case kindApplied:
	case kindRaftLog:
		k.Index = d.uint64()
	case kindRaftStable:
		k.VarName = d.string()
	default:
		return k, fmt.Errorf("%w: unknown kind %q", errKey, k.Kind)
	}
	if d.bad || len(d.b) != 0 {
		return k, fmt.Errorf("%w: kind %q: truncated or trailing bytes", errKey, k.Kind)
	}
	return k, nil
}

// keyDecoder reads parts; a short read sets bad and yields zero values.
type keyDecoder struct {
	b   []byte
	bad bool
}

func (d *keyDecoder) bytes(n int) []byte {
	if d.bad || len(d.b) < n {
		d.bad = true
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *keyDecoder) uint64() uint64 {
	b := d.bytes(8)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func (d *keyDecoder) string() string {
	l := d.bytes(2)
	if l == nil {
		return ""
	}
	return string(d.bytes(int(binary.BigEndian.Uint16(l))))
}

func decodeKeyOf(kind byte, b []byte) (key, error) {
	k, err := decodeKey(b)
	if err == nil && k.Kind != kind {
		err = fmt.Errorf("%w: kind %q, want %q", errKey, k.Kind, kind)
	}
	return k, err
}

// Builders of each kind, and the prefixes the reads scan.

func eventKey(p int, customer string, seq uint64) []byte {
	return appendEventKey(nil, p, customer, seq)
}

func appendEventKey(dst []byte, p int, customer string, seq uint64) []byte {
	return appendUint64(appendString(appendHead(dst, p, kindEvent), customer), seq)
}

// eventPrefix is the prefix of exactly the customer's event keys: another
// customer's id of the same length differs in a byte, of another length in
// the length prefix.
func eventPrefix(p int, customer string) []byte {
	return appendString(appendHead(nil, p, kindEvent), customer)
}

func snapshotKey(p int, customer string) []byte {
	return appendSnapshotKey(nil, p, customer)
}

func appendSnapshotKey(dst []byte, p int, customer string) []byte {
	return appendString(appendHead(dst, p, kindSnapshot), customer)
}

func dedupKey(p int, customer, eventID string) []byte {
	return appendDedupKey(nil, p, customer, eventID)
}

func appendDedupKey(dst []byte, p int, customer, eventID string) []byte {
	return appendString(appendString(appendHead(dst, p, kindDedup), customer), eventID)
}

func dedupPrefix(p int, customer string) []byte {
	return appendString(appendHead(nil, p, kindDedup), customer)
}

// appendDedupBlockKey is the start of the key of the customer's dedup
// block whose newest id is of event lastSeq: a customer's blocks sort by
// it. Alone, it is the key of a block stored before blocks had filters,
// and where a look-up of the blocks from lastSeq on starts.
func appendDedupBlockKey(dst []byte, p int, customer string, lastSeq uint64) []byte {
	return binary.BigEndian.AppendUint64(appendString(appendHead(dst, p, kindDedupBlock), customer), lastSeq)
}

// appendFilteredBlockKey is the key of the customer's dedup block of ids
// (seq order, not empty): its last and first seqs, and the filter of its
// ids.
func appendFilteredBlockKey(dst []byte, p int, customer string, ids []journey.DedupID) []byte {
	dst = appendDedupBlockKey(dst, p, customer, ids[len(ids)-1].Seq)
	dst = appendUint64(dst, ids[0].Seq)
	return appendDedupFilter(dst, ids)
}

// dedupBlockKeyTail parses what follows the customer's dedup block prefix
// in one of its keys: its last seq, and its first seq and filter, if it
// has them (filtered false: a block keyed the old way).
func dedupBlockKeyTail(tail []byte) (last, first uint64, filter []byte, filtered bool, err error) {
	switch len(tail) {
	case 8:
		return binary.BigEndian.Uint64(tail), 0, nil, false, nil
	case 16 + dedupFilterBytes:
		return binary.BigEndian.Uint64(tail), binary.BigEndian.Uint64(tail[8:]), tail[16:], true, nil
	default:
		return 0, 0, nil, false, fmt.Errorf("%w: dedup block key tail of %d bytes", errKey, len(tail))
	}
}

func dedupBlockPrefix(p int, customer string) []byte {
	return appendString(appendHead(nil, p, kindDedupBlock), customer)
}

func identityKey(p int, kind, value string) []byte {
	return appendIdentityKey(nil, p, kind, value)
}

func appendIdentityKey(dst []byte, p int, kind, value string) []byte {
	return appendString(appendString(appendHead(dst, p, kindIdentity), kind), value)
}

func segmentKey(p int, eventType string, hour uint64, customer string) []byte {
	return appendSegmentKey(nil, p, eventType, hour, customer)
}

func appendSegmentKey(dst []byte, p int, eventType string, hour uint64, customer string) []byte {
	return appendString(appendUint64(appendString(appendHead(dst, p, kindSegment), eventType), hour), customer)
}

// segmentBound is the first segment key of the event type at or after hour.
func segmentBound(p int, eventType string, hour uint64) []byte {
	return appendUint64(appendString(appendHead(nil, p, kindSegment), eventType), hour)
}

func dueKey(p int, at uint64, customer, kind, ref string) []byte {
	return appendDueKey(nil, p, at, customer, kind, ref)
}

func appendDueKey(dst []byte, p int, at uint64, customer, kind, ref string) []byte {
	dst = appendUint64(appendHead(dst, p, kindDue), at)
	return appendString(appendString(appendString(dst, customer), kind), ref)
}

// dueStart is where a due scan from from begins (Store.ScanDue): the
// first key at from.At, or with from.Customer the key just after from's.
func dueStart(p int, from DueWork) []byte {
	if from.Customer == "" {
		return dueBound(p, timeToNanos(from.At))
	}
	return append(dueKey(p, timeToNanos(from.At), from.Customer, from.Kind, from.Ref), 0)
}

// dueBound is the first due key of partition p at or after at.
func dueBound(p int, at uint64) []byte {
	return appendUint64(appendHead(nil, p, kindDue), at)
}

func duePrefix(p int) []byte {
	return appendHead(nil, p, kindDue)
}

func tombstoneKey(p int, customer string, idHash [tombstoneHashLen]byte) []byte {
	return appendTombstoneKey(nil, p, customer, idHash)
}

func appendTombstoneKey(dst []byte, p int, customer string, idHash [tombstoneHashLen]byte) []byte {
	return append(appendString(appendHead(dst, p, kindTombstone), customer), idHash[:]...)
}

// hashEventID is the tombstone's stand-in for an erased event id.
func hashEventID(id string) [tombstoneHashLen]byte {
	return sha256.Sum256([]byte(id))
}

func markKey(p int, broadcast, customer string) []byte {
	return appendMarkKey(nil, p, broadcast, customer)
}

func appendMarkKey(dst []byte, p int, broadcast, customer string) []byte {
	return appendString(appendString(appendHead(dst, p, kindMark), broadcast), customer)
}

// markPrefix is the prefix of exactly the broadcast's marks.
func markPrefix(p int, broadcast string) []byte {
	return appendString(appendHead(nil, p, kindMark), broadcast)
}

func recordKey(p int, collection, key string) []byte {
	return appendRecordKey(nil, p, collection, key)
}

func appendRecordKey(dst []byte, p int, collection, key string) []byte {
	return appendString(appendString(appendHead(dst, p, kindRecord), collection), key)
}

// recordPrefix is the prefix of exactly the collection's records.
func recordPrefix(p int, collection string) []byte {
	return appendString(appendHead(nil, p, kindRecord), collection)
}

// appliedKey holds the raft index a replicated partition's state machine
// has applied, written in the batch of the entry's effects.
func appliedKey(p int) []byte {
	return appendHead(nil, p, kindApplied)
}

func raftLogKey(p int, index uint64) []byte {
	return appendRaftLogKey(nil, p, index)
}

func appendRaftLogKey(dst []byte, p int, index uint64) []byte {
	return appendUint64(appendHead(dst, p, kindRaftLog), index)
}

// raftLogPrefix is the prefix of exactly the partition's raft log entries.
func raftLogPrefix(p int) []byte {
	return appendHead(nil, p, kindRaftLog)
}

func raftStableKey(p int, name []byte) []byte {
	if len(name) > keyPartMax {
		panic(fmt.Sprintf("persistence: raft stable name of %d bytes", len(name)))
	}
	dst := binary.BigEndian.AppendUint16(appendHead(nil, p, kindRaftStable), uint16(len(name)))
	return append(dst, name...)
}

// fsmLower is the first key of partition p's state machine: every kind at
// or above 'a' (kindApplied); partitionEnd is past the partition's last key.
func fsmLower(p int) []byte {
	return appendHead(nil, p, kindApplied)
}

func partitionEnd(p int) []byte {
	return prefixEnd(appendHead(nil, p, 0)[:2])
}

// erasedIDKey is the id-only tombstone of an erased event id, in the
// partition PartitionOf(event id) (erasedIDPartition).
func erasedIDKey(p int, idHash [tombstoneHashLen]byte) []byte {
	return append(appendHead(nil, p, kindErasedID), idHash[:]...)
}

// erasedIDPartition is where an event id's id-only tombstone lives.
func erasedIDPartition(eventID string, partitions int) int {
	return PartitionOf(eventID, partitions)
}

func metaKey() []byte {
	return []byte{metaPartition >> 8, metaPartition & 0xFF, kindMeta}
}

// prefixEnd is the smallest key greater than every key with the prefix (nil:
// none, the prefix is all 0xFF).
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// Decoders of each kind.

func decodeEventKey(b []byte) (p int, customer string, seq uint64, err error) {
	k, err := decodeKeyOf(kindEvent, b)
	return k.Partition, k.Customer, k.Seq, err
}

func decodeSnapshotKey(b []byte) (p int, customer string, err error) {
	k, err := decodeKeyOf(kindSnapshot, b)
	return k.Partition, k.Customer, err
}

func decodeDedupKey(b []byte) (p int, customer, eventID string, err error) {
	k, err := decodeKeyOf(kindDedup, b)
	return k.Partition, k.Customer, k.EventID, err
}

func decodeIdentityKey(b []byte) (p int, kind, value string, err error) {
	k, err := decodeKeyOf(kindIdentity, b)
	return k.Partition, k.IDKind, k.IDValue, err
}

func decodeSegmentKey(b []byte) (p int, eventType string, hour uint64, customer string, err error) {
	k, err := decodeKeyOf(kindSegment, b)
	return k.Partition, k.EventType, k.Hour, k.Customer, err
}

func decodeDueKey(b []byte) (p int, at uint64, customer, kind, ref string, err error) {
	k, err := decodeKeyOf(kindDue, b)
	return k.Partition, k.At, k.Customer, k.DueKind, k.DueRef, err
}

func decodeTombstoneKey(b []byte) (p int, customer string, idHash [tombstoneHashLen]byte, err error) {
	k, err := decodeKeyOf(kindTombstone, b)
	return k.Partition, k.Customer, k.IDHash, err
}

func decodeMarkKey(b []byte) (p int, broadcast, customer string, err error) {
	k, err := decodeKeyOf(kindMark, b)
	return k.Partition, k.Broadcast, k.Customer, err
}

func decodeRecordKey(b []byte) (p int, collection, key string, err error) {
	k, err := decodeKeyOf(kindRecord, b)
	return k.Partition, k.Coll, k.RecKey, err
}

func decodeRaftLogKey(b []byte) (p int, index uint64, err error) {
	k, err := decodeKeyOf(kindRaftLog, b)
	return k.Partition, k.Index, err
}

func decodeMetaKey(b []byte) error {
	_, err := decodeKeyOf(kindMeta, b)
	return err
}

// checkParts reports a string too long to be a key part, so that public
// methods return an error where encode would panic.
func checkParts(parts ...string) error {
	for _, s := range parts {
		if len(s) > keyPartMax {
			return fmt.Errorf("%w: a key part of %d bytes (max %d)", ErrInvalid, len(s), keyPartMax)
		}
	}
	return nil
}
