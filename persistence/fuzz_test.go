package persistence

import (
	"bytes"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/throughline/throughline/journey"
)

// FuzzRaftCommand feeds raft entries' commands, real and mutated, to the
// state machine's decoder (a replica decodes what its leader sent): it
// must never panic, and what it accepts re-encodes to the same bytes.
func FuzzRaftCommand(f *testing.F) {
	req := &AppendRequest{Customer: "c/1", PrevSeq: 4, Events: events("c/1", 4, 2, t0),
		DueAdd:      []DueWork{{At: t0.Add(time.Hour), Customer: "c/1", Kind: "offer", Ref: "o"}},
		Marks:       []Mark{{Broadcast: "bc", Value: []byte("sent")}},
		IDsInBlocks: true, DedupBlock: []journey.DedupID{{Digest: [2]uint64{1, 2}, Seq: 3, RecordedAt: 7}}}
	a := prepareAppend(3, req, func(error) {})
	a.done = nil
	seed := encodeCommand(nil, []op{
		{append: a},
		{claim: &claimOp{partition: 3, kind: "phone", value: "+1", customer: "c/1"}},
		{records: &recordsOp{partition: 3, collection: "audit", puts: []Record{{"k", []byte("v")}}, deletes: []string{"d"}}},
		{snapshot: &snapshotOp{partition: 3, customer: "c/1", seq: 5, data: []byte("s")}},
		{erase: &eraseOp{partition: 3, customer: "c/1", identities: []IdentityKey{{"email", "a@b"}}}},
	})
	f.Add(seed)
	for i := 1; i < len(seed); i += 5 {
		f.Add(seed[:i])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ops, err := decodeCommand(3, data)
		if err != nil {
			return
		}
		if again := encodeCommand(nil, ops); !bytes.Equal(again, data) {
			// Uvarints have one shortest encoding; a longer one may decode.
			if ops2, err := decodeCommand(3, again); err != nil || len(ops2) != len(ops) {
				t.Fatalf("accepted %x, re-encoded %x does not decode the same: %v", data, again, err)
			}
		}
		var l raft.Log
		_ = decodeRaftLog(1, data, &l)
	})
}

// FuzzStoredValues feeds stored values of every kind to their decoders
// (a corrupt sstable block reaches them): never a panic.
func FuzzStoredValues(f *testing.F) {
	ev := events("c", 0, 1, t0)[0]
	if v, err := encodeEvent(&ev); err == nil {
		f.Add(v)
	}
	f.Add(encodeDedup(7, t0))
	f.Add(encodeTime(t0))
	f.Add(encodeSnapshot(&Snapshot{Seq: 3, Data: []byte("state")}))
	f.Add(encodePartitions(64))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeEvent(b)
		_, _ = decodeEventHead(b)
		_, _ = decodeTime(b)
		_, _, _ = decodeDedup(b)
		_, _ = decodeSnapshot(b)
		_, _ = decodePartitions(b)
	})
}
