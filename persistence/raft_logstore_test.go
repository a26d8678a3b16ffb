package persistence

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
	"github.com/throughline/throughline/journey"
)

// The raft log and stable stores keep each partition's entries apart,
// durable across a reopen, and answer raft's "not found" conventions.
func TestRaftStore(t *testing.T) {
	fs := vfs.NewMem()
	e := openPebble(t, fs, "db", Options{Partitions: 4})
	s1, s2 := &raftStore{e: e.(*pebbleEngine), p: 1}, &raftStore{e: e.(*pebbleEngine), p: 2}
	if first, _ := s1.FirstIndex(); first != 0 {
		t.Fatalf("empty log first index %d", first)
	}
	at := time.Unix(1700000000, 123)
	var logs []*raft.Log
	for i := uint64(1); i <= 10; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 3, Type: raft.LogCommand, Data: []byte{byte(i)}, Extensions: []byte("x"), AppendedAt: at})
	}
	if err := s1.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := s2.StoreLog(&raft.Log{Index: 100, Term: 1, Type: raft.LogNoop}); err != nil {
		t.Fatal(err)
	}
	var got raft.Log
	if err := s1.GetLog(7, &got); err != nil || !reflect.DeepEqual(&got, logs[6]) {
		t.Errorf("GetLog(7) = %+v, %v", got, err)
	}
	if err := s1.GetLog(100, &got); !errors.Is(err, raft.ErrLogNotFound) {
		t.Errorf("another partition's entry: %v", err)
	}
	if err := s1.DeleteRange(1, 4); err != nil {
		t.Fatal(err)
	}
	first, _ := s1.FirstIndex()
	last, _ := s1.LastIndex()
	if first != 5 || last != 10 {
		t.Errorf("after DeleteRange(1, 4): first %d last %d", first, last)
	}
	if first, _ := s2.FirstIndex(); first != 100 {
		t.Errorf("partition 2 first %d", first)
	}
	if _, err := s1.Get([]byte("CurrentTerm")); err == nil || err.Error() != "not found" {
		t.Errorf("missing stable key: %v", err)
	}
	if err := s1.SetUint64([]byte("CurrentTerm"), 9); err != nil {
		t.Fatal(err)
	}
	if err := s1.Set([]byte("LastVoteCand"), []byte("n2")); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e = openPebble(t, fs, "db", Options{Partitions: 4})
	s1 = &raftStore{e: e.(*pebbleEngine), p: 1}
	if v, err := s1.GetUint64([]byte("CurrentTerm")); err != nil || v != 9 {
		t.Errorf("term after reopen: %d %v", v, err)
	}
	if v, _ := s1.Get([]byte("LastVoteCand")); !bytes.Equal(v, []byte("n2")) {
		t.Errorf("vote after reopen: %q", v)
	}
	if last, _ := s1.LastIndex(); last != 10 {
		t.Errorf("last index after reopen %d", last)
	}
	if err := s1.DeleteRange(5, ^uint64(0)); err != nil {
		t.Fatal(err)
	}
	if last, _ := s1.LastIndex(); last != 0 {
		t.Errorf("after deleting all: last %d", last)
	}
	if st := e.Stats(); st.Commits == 0 {
		t.Error("raft writes did not go through the writer's commits")
	}
}

func TestRaftLogCodecMalformed(t *testing.T) {
	good := encodeRaftLog(&raft.Log{Index: 1, Term: 2, Data: []byte("abc")})
	for _, b := range [][]byte{nil, {raftLogVersion}, {9, 0, 0}, good[:len(good)-1], append(slices.Clone(good), 0)} {
		var l raft.Log
		if err := decodeRaftLog(1, b, &l); err == nil {
			t.Errorf("decoded %x", b)
		}
	}
}

// A command's ops decode to what was encoded, and no prefix or extension of
// a command decodes.
func TestCommandRoundTrip(t *testing.T) {
	req := &AppendRequest{Customer: "c/1", PrevSeq: 4, Events: events("c/1", 4, 2, t0),
		DueAdd:    []DueWork{{At: t0.Add(time.Hour), Customer: "c/1", Kind: "offer", Ref: "o"}},
		DueDelete: []DueWork{{At: t0, Customer: "c/1", Kind: "after", Ref: ""}},
		Marks:     []Mark{{Broadcast: "bc", Value: []byte("sent")}},
		// Its ids in dedup blocks, and one (tag 'B'), with recorded_at.
		IDsInBlocks: true, DedupBlock: []journey.DedupID{{Digest: [2]uint64{1, 2}, Seq: 2, RecordedAt: 7}, {Digest: [2]uint64{3, 4}, Seq: 4, RecordedAt: 9}}}
	a := prepareAppend(3, req, func(error) {})
	a.done = nil
	ops := []op{
		{append: a},
		{claim: &claimOp{partition: 3, kind: "phone", value: "+1", customer: "c/1"}},
		{records: &recordsOp{partition: 3, collection: "audit", puts: []Record{{"k", []byte("v")}}, deletes: []string{"d"}}},
		{snapshot: &snapshotOp{partition: 3, customer: "c/1", seq: 5, data: []byte("s")}},
		{erase: &eraseOp{partition: 3, customer: "c/1", identities: []IdentityKey{{"email", "a@b"}}, identitiesOnly: true}},
	}
	b := encodeCommand(nil, ops)
	// The block is in the encoding raft logs already hold: a count, then
	// each id's digest, seq and recorded_at.
	var block []byte
	block = binary.AppendUvarint(block, 2)
	for _, id := range req.DedupBlock {
		block = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(block, id.Digest[0]), id.Digest[1])
		block = binary.AppendUvarint(binary.AppendUvarint(block, id.Seq), uint64(id.RecordedAt))
	}
	if one := encodeCommand(nil, ops[:1]); !bytes.HasSuffix(one, block) {
		t.Errorf("an append's block is not in its logged encoding: %x", one)
	}
	got, err := decodeCommand(3, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ops) {
		t.Fatalf("%d ops", len(got))
	}
	ga := got[0].append
	for i := range ga.events {
		if !ga.events[i].recordedAt.Equal(a.events[i].recordedAt) {
			t.Errorf("event %d recorded at %v", i, ga.events[i].recordedAt)
		}
		ga.events[i].recordedAt = a.events[i].recordedAt
	}
	// Where a prepared op keeps its events and their encodings: storage,
	// not the command.
	ga.many, ga.values = a.many, a.values
	if !reflect.DeepEqual(ga, a) {
		t.Errorf("append: %+v\nwant %+v", ga, a)
	}
	for i := 1; i < len(ops); i++ {
		if !reflect.DeepEqual(got[i], ops[i]) {
			t.Errorf("op %d: %+v, want %+v", i, got[i], ops[i])
		}
	}
	for n := range len(b) {
		if _, err := decodeCommand(3, b[:n]); err == nil {
			t.Fatalf("a %d-byte prefix of %d decoded", n, len(b))
		}
	}
	if _, err := decodeCommand(3, append(slices.Clone(b), 0)); err == nil {
		t.Error("trailing byte decoded")
	}
}
