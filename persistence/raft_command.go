package persistence

// The command of a replicated partition's raft entry: a batch of the
// writer's ops (appends with their due work and marks, identity claims,
// erasures, customer snapshots, record writes), validated and encoded on the
// leader, applied by every replica's state machine (raft_fsm.go).
//
//	command = version | count | op...
//	op      = tag | fields (uvarints; strings and byte strings length-prefixed)
//
// An erasure travels alone in its entry (it reads the partition's keys), so
// that an entry's effects are always one Pebble batch with its raft index.

import (
	"encoding/binary"
	"fmt"

	"github.com/throughline/throughline/journey"
)

const (
	commandVersion = 1

	tagAppend   byte = 'A'
	tagAppendB  byte = 'B' // an append with a dedup block after its marks: a count, then each id's digest, seq and recorded_at (raft logs hold it: never change it)
	tagClaim    byte = 'C'
	tagErase    byte = 'E'
	tagRecords  byte = 'R'
	tagSnapshot byte = 'S'
)

// encodeCommand appends the ops of one proposal. Every op must be valid
// (validated by the caller) and of partition p.
func encodeCommand(dst []byte, ops []op) []byte {
	dst = append(dst, commandVersion)
	dst = binary.AppendUvarint(dst, uint64(len(ops)))
	for _, o := range ops {
		dst = encodeOp(dst, o)
	}
	return dst
}

func encodeOp(b []byte, o op) []byte {
	switch {
	case o.append != nil:
		return encodeAppendOp(b, o.append)
	case o.claim != nil:
		c := o.claim
		b = append(b, tagClaim)
		return appendStr(appendStr(appendStr(b, c.kind), c.value), c.customer)
	case o.erase != nil:
		e := o.erase
		b = appendStr(append(b, tagErase), e.customer)
		flag := byte(0)
		if e.identitiesOnly {
			flag = 1
		}
		b = binary.AppendUvarint(append(b, flag), uint64(len(e.identities)))
		for _, id := range e.identities {
			b = appendStr(appendStr(b, id.Kind), id.Value)
		}
		return b
	case o.records != nil:
		r := o.records
		b = appendStr(append(b, tagRecords), r.collection)
		b = binary.AppendUvarint(b, uint64(len(r.deletes)))
		for _, k := range r.deletes {
			b = appendStr(b, k)
		}
		b = binary.AppendUvarint(b, uint64(len(r.puts)))
		for _, rec := range r.puts {
			b = appendBytes(appendStr(b, rec.Key), rec.Value)
		}
		return b
	case o.snapshot != nil:
		s := o.snapshot
		b = appendStr(append(b, tagSnapshot), s.customer)
		return appendBytes(binary.AppendUvarint(b, s.seq), s.data)
	default:
		panic("persistence: encoding an op of no known kind")
	}
}

func encodeAppendOp(b []byte, a *appendOp) []byte {
	tag := tagAppend
	if len(a.block) > 0 {
		tag = tagAppendB
	}
	b = appendStr(append(b, tag), a.customer)
	b = binary.AppendUvarint(b, a.prevSeq)
	b = binary.AppendUvarint(b, uint64(len(a.events)))
	for i := range a.events {
		ev := &a.events[i]
		flag := byte(0) // 1: a dedup key; 2: in a dedup block later
		switch {
		case ev.dedup:
			flag = 1
		case ev.inBlock:
			flag = 2
		}
		b = appendStr(append(appendStr(b, ev.id), flag), ev.eventType)
		b = binary.AppendUvarint(binary.AppendUvarint(b, ev.seq), timeToNanos(ev.recordedAt))
		b = appendBytes(b, ev.value)
	}
	for _, due := range [][]DueWork{a.dueDelete, a.dueAdd} {
		b = binary.AppendUvarint(b, uint64(len(due)))
		for _, w := range due {
			b = binary.AppendUvarint(b, timeToNanos(w.At))
			b = appendStr(appendStr(appendStr(b, w.Customer), w.Kind), w.Ref)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(a.marks)))
	for _, m := range a.marks {
		b = appendBytes(appendStr(b, m.Broadcast), m.Value)
	}
	if len(a.block) > 0 {
		b = binary.AppendUvarint(b, uint64(len(a.block)))
		for _, id := range a.block {
			b = binary.BigEndian.AppendUint64(b, id.Digest[0])
			b = binary.BigEndian.AppendUint64(b, id.Digest[1])
			b = binary.AppendUvarint(binary.AppendUvarint(b, id.Seq), uint64(max(id.RecordedAt, 0)))
		}
	}
	return b
}

func appendStr(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// decodeCommand decodes the ops of partition p's entry.
func decodeCommand(p int, data []byte) ([]op, error) {
	if len(data) == 0 || data[0] != commandVersion {
		return nil, fmt.Errorf("persistence: raft command: unknown version")
	}
	d := byteDecoder{b: data[1:]}
	n := d.uvarint()
	if n > uint64(len(data)) {
		return nil, fmt.Errorf("persistence: raft command: %d ops in %d bytes", n, len(data))
	}
	ops := make([]op, 0, n)
	for range n {
		ops = append(ops, decodeOp(p, &d))
		if d.bad {
			break
		}
	}
	if d.bad || len(d.b) != 0 {
		return nil, fmt.Errorf("persistence: raft command: malformed")
	}
	return ops, nil
}

func decodeOp(p int, d *byteDecoder) op {
	switch tag := d.byte(); tag {
	case tagAppend, tagAppendB:
		return op{append: decodeAppendOp(p, d, tag == tagAppendB)}
	case tagClaim:
		return op{claim: &claimOp{partition: p, kind: d.string(), value: d.string(), customer: d.string()}}
	case tagErase:
		e := &eraseOp{partition: p, customer: d.string(), identitiesOnly: d.byte() == 1}
		for n := d.count(); n > 0 && !d.bad; n-- {
			e.identities = append(e.identities, IdentityKey{Kind: d.string(), Value: d.string()})
		}
		return op{erase: e}
	case tagRecords:
		r := &recordsOp{partition: p, collection: d.string()}
		for n := d.count(); n > 0 && !d.bad; n-- {
			r.deletes = append(r.deletes, d.string())
		}
		for n := d.count(); n > 0 && !d.bad; n-- {
			r.puts = append(r.puts, Record{Key: d.string(), Value: d.bytes()})
		}
		return op{records: r}
	case tagSnapshot:
		return op{snapshot: &snapshotOp{partition: p, customer: d.string(), seq: d.uvarint(), data: d.bytes()}}
	default:
		d.bad = true
		return op{}
	}
}

func decodeAppendOp(p int, d *byteDecoder, withBlock bool) *appendOp {
	a := &appendOp{partition: p, customer: d.string(), prevSeq: d.uvarint()}
	for n := d.count(); n > 0 && !d.bad; n-- {
		ev := storedEvent{id: d.string()}
		flag := d.byte()
		ev.dedup, ev.inBlock = flag == 1, flag == 2
		ev.eventType, ev.seq = d.string(), d.uvarint()
		ev.recordedAt = nanosToTime(d.uvarint())
		ev.value = d.bytes()
		a.events = append(a.events, ev)
	}
	for _, due := range []*[]DueWork{&a.dueDelete, &a.dueAdd} {
		for n := d.count(); n > 0 && !d.bad; n-- {
			at := nanosToTime(d.uvarint())
			*due = append(*due, DueWork{At: at, Customer: d.string(), Kind: d.string(), Ref: d.string()})
		}
	}
	for n := d.count(); n > 0 && !d.bad; n-- {
		a.marks = append(a.marks, Mark{Broadcast: d.string(), Value: d.bytes()})
	}
	if withBlock {
		n := d.count()
		if n == 0 || n > DedupBlockMax {
			d.bad = true
		}
		for ; n > 0 && !d.bad; n-- {
			if len(d.b) < 16 {
				d.bad = true
				break
			}
			id := journey.DedupID{Digest: [2]uint64{binary.BigEndian.Uint64(d.b), binary.BigEndian.Uint64(d.b[8:])}}
			d.b = d.b[16:]
			id.Seq, id.RecordedAt = d.uvarint(), int64(d.uvarint())
			a.block = append(a.block, id)
		}
	}
	return a
}

// count reads a count of items that each take at least one byte: a count
// past the bytes left is malformed.
func (d *byteDecoder) count() uint64 {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.bad = true
		return 0
	}
	return n
}
