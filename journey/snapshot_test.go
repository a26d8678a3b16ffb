package journey_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

// history records n inbound events (some linking identities, some profile
// patches) for c-42 and returns the customer and every stored event.
func history(t testing.TB, n int) (*journey.Customer, []journey.Event) {
	t.Helper()
	c := journey.NewCustomer("c-42")
	var all []journey.Event
	for i := range n {
		var in journey.Input = fresh(fmt.Sprintf("gw-%d", i))
		switch {
		case i%7 == 0:
			in.(*journey.Inbound).Linked = []journey.IdentityRef{{Kind: "web", Value: fmt.Sprintf("s-%d", i)}}
		case i%11 == 0:
			in = &journey.ProfilePatch{ID: fmt.Sprintf("p-%d", i), Patch: fmt.Appendf(nil, `{"visits":%d,"consent":{"sms":true}}`, i)}
		}
		d := step(t, c, in, t0.Add(time.Duration(i)*time.Second))
		if d.Ack == nil || d.Ack.Duplicate {
			t.Fatalf("event %d not stored: %+v", i, d)
		}
		all = append(all, d.Events...)
	}
	return c, all
}

// sameCustomer fails unless got and want look the same to every reader and
// decide the same on old, new and runtime ids.
func sameCustomer(t *testing.T, got, want *journey.Customer) {
	t.Helper()
	if got.ID != want.ID || got.Seq != want.Seq || !got.LastAt.Equal(want.LastAt) {
		t.Fatalf("customer %s at seq %d (last %v), want %s at %d (%v)", got.ID, got.Seq, got.LastAt, want.ID, want.Seq, want.LastAt)
	}
	if g, w := mustJSON(t, got.Context(got.Seq)), mustJSON(t, want.Context(want.Seq)); g != w {
		t.Errorf("context\n got %s\nwant %s", g, w)
	}
	if g, w := mustJSON(t, got.Timeline(got.Seq, journey.TimelineMax)), mustJSON(t, want.Timeline(want.Seq, journey.TimelineMax)); g != w {
		t.Errorf("timeline differs")
	}
	for _, id := range []string{"gw-0", "gw-1", fmt.Sprintf("gw-%d", want.Seq/2), fmt.Sprintf("gw-%d", want.Seq+100), "rt-1"} {
		past := want.LastAt.Add(-time.Hour) // a clock gone back
		g, w := journey.Decide(got, inbound(id), past), journey.Decide(want, inbound(id), past)
		if answer(g) != answer(w) || mustJSON(t, g.Events) != mustJSON(t, w.Events) {
			t.Errorf("%s: decides %s %v, want %s %v", id, answer(g), g.Events, answer(w), w.Events)
		}
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	tests := []struct {
		events     int
		incomplete bool // ids have left the ring: one of them needs a look-up, an unknown id none
	}{{0, false}, {1, false}, {30, false}, {journey.TimelineMax + 50, false}, {2*journey.RecentIDsMax + 4*journey.DedupBlockIDs, true}}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.events), func(t *testing.T) {
			c, _ := history(t, tt.events)
			c.Conversation = &journey.Conversation{ID: "conv-1", State: "agent", Channel: "sms", Agent: "alice", Since: t0}
			c.Cases = []journey.Case{{ID: "case-1", Status: "open", Subject: "card", Opened: t0}}
			c.LastAgent = "alice"
			snap := c.EncodeSnapshot()
			decoded, err := journey.DecodeSnapshot(snap)
			if err != nil {
				t.Fatal(err)
			}
			sameCustomer(t, decoded, c)
			rebuilt := rebuild(t, "c-42", snap, nil)
			sameCustomer(t, rebuilt, c)
			if !bytes.Equal(rebuilt.EncodeSnapshot(), snap) {
				t.Errorf("snapshot of the rebuilt customer differs")
			}
			if got := answer(journey.Decide(rebuilt, inbound("never-sent"), t0)); got == "lookup" {
				t.Errorf("unknown id after rebuild: %s; the filters know it was never stored", got)
			}
			if tt.events > 0 {
				if got := answer(journey.Decide(rebuilt, inbound("gw-0"), t0)); (got == "lookup") != tt.incomplete {
					t.Errorf("the first id after rebuild: %s, left the ring %v", got, tt.incomplete)
				}
			}
		})
	}
}

// The events a snapshot covers are skipped; those after it are applied.
func TestRebuildFromSnapshotAndLaterEvents(t *testing.T) {
	c, all := history(t, 140)
	at := journey.NewCustomer("c-42")
	for i := range all[:90] {
		at.Apply(&all[i])
	}
	snap := at.EncodeSnapshot()
	for _, events := range [][]journey.Event{all, all[85:], all[90:]} {
		sameCustomer(t, rebuild(t, "c-42", snap, events), c)
	}
}

func TestRebuildWithoutAUsableSnapshotReplays(t *testing.T) {
	c, all := history(t, 140)
	good := c.EncodeSnapshot()
	other := journey.NewCustomer("c-7")
	step(t, other, inbound("gw-0"), t0)
	tests := map[string][]byte{
		"none":           nil,
		"garbage":        []byte("{not a snapshot"),
		"truncated":      good[:len(good)/2],
		"empty":          {},
		"other version":  append([]byte{1}, good[1:]...),
		"other customer": other.EncodeSnapshot(),
	}
	for name, snap := range tests {
		t.Run(name, func(t *testing.T) {
			if snap != nil && name != "other customer" {
				if _, err := journey.DecodeSnapshot(snap); err == nil {
					t.Errorf("DecodeSnapshot accepted it")
				}
			}
			sameCustomer(t, rebuild(t, "c-42", snap, all), c)
		})
	}
}

// FuzzSnapshotDecode: a snapshot read back from disk may be anything; the
// decoder must refuse or rebuild, never panic, and what it accepts must
// encode back to the same bytes.
func FuzzSnapshotDecode(f *testing.F) {
	c, _ := history(f, 30)
	f.Add(c.EncodeSnapshot())
	f.Add(journey.NewCustomer("c").EncodeSnapshot())
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := journey.DecodeSnapshot(data)
		if err != nil {
			return
		}
		again := got.EncodeSnapshot()
		back, err := journey.DecodeSnapshot(again)
		if err != nil || back.Seq != got.Seq || back.ID != got.ID {
			t.Fatalf("re-encoding a decoded snapshot: %v", err)
		}
	})
}

// A snapshot this version cannot read, with only the events after it, must
// not be applied as if the customer started there.
func TestRebuildReportsAGapAfterAnUnusableSnapshot(t *testing.T) {
	c, all := history(t, 40)
	snap := c.EncodeSnapshot()
	old := append([]byte{1}, snap[1:]...) // another format version
	if _, err := journey.Rebuild("c-42", old, all[30:]); !errors.Is(err, journey.ErrGap) {
		t.Fatalf("Rebuild over an unusable snapshot and a tail: %v, want ErrGap", err)
	}
	sameCustomer(t, rebuild(t, "c-42", old, all), c)
}
