package bench

import (
	"encoding/json"
	"strings"
	"testing"
)

type clientFrame struct {
	Type   string        `json:"type"`
	ID     string        `json:"id"`
	Event  *clientEvent  `json:"event"`
	Events []clientEvent `json:"events"`
}

type clientEvent struct {
	ID       string `json:"id"`
	Customer string `json:"customer"`
	Type     string `json:"type"`
	Channel  string `json:"channel"`
	Text     string `json:"text"`
}

func TestEncoderSingleFrames(t *testing.T) {
	cfg := Default()
	cfg.Connections, cfg.Customers, cfg.EventBytes = 3, 10, 50
	enc := newFrameEncoder("n0nce", 1, &cfg)
	var customers []string
	for i := range 8 {
		frame, number, _ := enc.next()
		var f clientFrame
		if err := json.Unmarshal(frame, &f); err != nil {
			t.Fatalf("frame %d is not JSON: %v\n%s", i, err, frame)
		}
		if f.Type != "event" || f.Event == nil || number != uint64(i) {
			t.Fatalf("frame %d (number %d) = %s", i, number, frame)
		}
		ev := f.Event
		if ev.Type != "message.received" || ev.Channel != "chat" || len(ev.Text) != 50 || strings.TrimSpace(ev.Text) == "" {
			t.Fatalf("event %d = %+v", i, ev)
		}
		if n, ok := parseEventID([]byte(ev.ID), enc.idPrefix); !ok || n != uint64(i) || !strings.HasPrefix(ev.ID, "n0nce-1-") {
			t.Fatalf("event id %q parses as %d, %v", ev.ID, n, ok)
		}
		customers = append(customers, ev.Customer)
	}
	// Connection 1 of 3 owns c-1, c-4, c-7 of c-0..c-9, in turn.
	want := []string{"c-1", "c-4", "c-7", "c-1", "c-4", "c-7", "c-1", "c-4"}
	if strings.Join(customers, " ") != strings.Join(want, " ") {
		t.Fatalf("customers %v, want %v", customers, want)
	}
}

func TestEncoderBatchFrames(t *testing.T) {
	cfg := Default()
	cfg.Connections, cfg.Customers, cfg.BatchSize = 2, 4, 3
	enc := newFrameEncoder("x", 0, &cfg)
	for m := range 3 {
		frame, number, _ := enc.next()
		var f clientFrame
		if err := json.Unmarshal(frame, &f); err != nil {
			t.Fatalf("batch %d is not JSON: %v", m, err)
		}
		if f.Type != "batch" || len(f.Events) != 3 || number != uint64(m) {
			t.Fatalf("batch %d (number %d) = %s", m, number, frame)
		}
		if got, ok := batchNumber([]byte(f.ID)); !ok || got != number {
			t.Fatalf("batch id %q parses as %d, %v", f.ID, got, ok)
		}
		for i, ev := range f.Events {
			n, ok := parseEventID([]byte(ev.ID), enc.idPrefix)
			if !ok || n/3 != number || n != uint64(m*3+i) {
				t.Fatalf("event %q of batch %d", ev.ID, m)
			}
		}
	}
}

func TestParseIDsRejectForeignIDs(t *testing.T) {
	prefix := []byte("abcd-2-")
	for _, id := range []string{"", "abcd-2-", "abcd-3-1", "abcd-2-1x", "abcd-2-99999999999999999999", "zz"} {
		if n, ok := parseEventID([]byte(id), prefix); ok {
			t.Errorf("parseEventID(%q) = %d, want refused", id, n)
		}
	}
	for _, id := range []string{"", "b-", "b-x", "c-1", "b--1"} {
		if n, ok := batchNumber([]byte(id)); ok {
			t.Errorf("batchNumber(%q) = %d, want refused", id, n)
		}
	}
}
