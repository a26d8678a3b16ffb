package journey_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

func TestDecideNewInboundsGetGaplessSeqs(t *testing.T) {
	c := journey.NewCustomer("c-42")
	berlin := time.FixedZone("CET", 3600)
	for i := 1; i <= 3; i++ {
		now := t0.Add(time.Duration(i) * time.Minute).In(berlin)
		in := inbound(fmt.Sprintf("gw-%d", i))
		d := step(t, c, in, now)
		if d.Reject != nil || d.NeedLookup || d.Ack == nil {
			t.Fatalf("event %d: %+v", i, d)
		}
		want := journey.Ack{ID: in.Event.ID, Customer: "c-42", Seq: uint64(i)}
		if *d.Ack != want {
			t.Errorf("ack = %+v, want %+v", *d.Ack, want)
		}
		if len(d.Events) != 1 {
			t.Fatalf("%d events, want 1", len(d.Events))
		}
		e := d.Events[0]
		if e.Seq != uint64(i) || e.Actor != journey.ActorCustomer || e.Customer != "c-42" || e.Text != "hi" {
			t.Errorf("stored event = %+v", e)
		}
		if !e.RecordedAt.Equal(now) || e.RecordedAt.Location() != time.UTC {
			t.Errorf("recorded_at = %v, want %v in UTC", e.RecordedAt, now)
		}
	}
	if c.Seq != 3 {
		t.Errorf("customer seq = %d, want 3", c.Seq)
	}
}

func TestDecideRecordedAtNeverGoesBack(t *testing.T) {
	c := journey.NewCustomer("c-42")
	clock := []time.Time{t0.Add(10 * time.Minute), t0, t0.Add(-time.Hour), t0.Add(20 * time.Minute)}
	want := []time.Time{t0.Add(10 * time.Minute), t0.Add(10 * time.Minute), t0.Add(10 * time.Minute), t0.Add(20 * time.Minute)}
	for i, now := range clock {
		var in journey.Input = inbound(fmt.Sprintf("gw-%d", i))
		if i == 2 {
			in = &journey.ProfilePatch{ID: "p-1", Patch: []byte(`{"tier":"vip"}`)}
		}
		d := step(t, c, in, now)
		if got := d.Events[0].RecordedAt; !got.Equal(want[i]) {
			t.Errorf("step %d at %v: recorded_at %v, want %v", i, now, got, want[i])
		}
	}
}

func TestDecideDuplicate(t *testing.T) {
	c := journey.NewCustomer("c-42")
	step(t, c, inbound("a"), t0)
	withLink := inbound("b")
	withLink.Linked = []journey.IdentityRef{{Kind: "phone", Value: "+15551230000"}}
	step(t, c, withLink, t0) // identity.linked at 2, b at 3
	step(t, c, inbound("c"), t0)

	for _, tt := range []struct {
		id   string
		want uint64
	}{{"a", 1}, {"b", 3}, {"c", 4}} {
		again := inbound(tt.id)
		again.Event.Text = "sent again, other text"
		d := step(t, c, again, t0.Add(time.Hour))
		want := journey.Ack{ID: tt.id, Customer: "c-42", Seq: tt.want, Duplicate: true}
		if d.Ack == nil || *d.Ack != want || len(d.Events) != 0 || d.NeedLookup || d.Reject != nil {
			t.Errorf("%s again: %+v, ack %+v; want %+v and no events", tt.id, d, d.Ack, want)
		}
	}
	if c.Seq != 4 {
		t.Errorf("duplicates changed seq to %d", c.Seq)
	}
}

func linkedIdentities(t *testing.T, e journey.Event) []journey.IdentityRef {
	t.Helper()
	var d struct{ Identities []journey.IdentityRef }
	if err := json.Unmarshal(e.Data, &d); err != nil {
		t.Fatalf("identity.linked data %s: %v", e.Data, err)
	}
	return d.Identities
}

func TestDecideLinksNewIdentitiesOnly(t *testing.T) {
	phone := journey.IdentityRef{Kind: "phone", Value: "+15551230000"}
	email := journey.IdentityRef{Kind: "email", Value: "ana@example.com"}
	tests := []struct {
		name   string
		held   []journey.IdentityRef
		linked []journey.IdentityRef
		want   []journey.IdentityRef // in the identity.linked event; nil: no event
	}{
		{"new customer", nil, []journey.IdentityRef{phone, email}, []journey.IdentityRef{phone, email}},
		{"all held", []journey.IdentityRef{phone}, []journey.IdentityRef{phone}, nil},
		{"one held", []journey.IdentityRef{phone}, []journey.IdentityRef{phone, email}, []journey.IdentityRef{email}},
		{"none", nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := journey.NewCustomer("c-42")
			if tt.held != nil {
				in := inbound("first")
				in.Linked = tt.held
				step(t, c, in, t0)
			}
			before := c.Seq
			in := inbound("gw-1")
			in.Linked = tt.linked
			d := step(t, c, in, t0.Add(time.Minute))

			last := d.Events[len(d.Events)-1]
			if last.ID != "gw-1" || last.Seq != d.Ack.Seq || d.Ack.Duplicate {
				t.Errorf("ack %+v does not name the inbound %s at seq %d", d.Ack, last.ID, last.Seq)
			}
			if tt.want == nil {
				if len(d.Events) != 1 {
					t.Fatalf("%d events, want only the inbound", len(d.Events))
				}
				return
			}
			if len(d.Events) != 2 {
				t.Fatalf("%d events, want identity.linked then the inbound", len(d.Events))
			}
			link := d.Events[0]
			if link.Type != journey.TypeIdentityLinked || link.Actor != journey.ActorSystem ||
				link.Seq != before+1 || last.Seq != before+2 || !link.RecordedAt.Equal(last.RecordedAt) {
				t.Errorf("link event %+v, inbound seq %d", link, last.Seq)
			}
			if got := linkedIdentities(t, link); mustJSON(t, got) != mustJSON(t, tt.want) {
				t.Errorf("linked %v, want %v", got, tt.want)
			}
			for _, id := range tt.linked {
				if !c.HasIdentity(id) {
					t.Errorf("customer does not hold %v after Apply: %v", id, c.Identities)
				}
			}
		})
	}
}

// The runtime's identity.linked event has an id of its own; a client that
// happens to send that id is not told its event is a duplicate.
func TestDecideRuntimeIDsAreNotIdempotencyKeys(t *testing.T) {
	c := journey.NewCustomer("c-42")
	in := inbound("gw-1")
	in.Linked = []journey.IdentityRef{{Kind: "web", Value: "s-1"}}
	d := step(t, c, in, t0)
	d = step(t, c, inbound(d.Events[0].ID), t0)
	if d.Ack.Duplicate || d.Ack.Seq != 3 {
		t.Errorf("client id %q equal to the runtime's: ack %+v", d.Events[0].ID, d.Ack)
	}
}

func TestApplyIdentityLinkedKeepsNewestPerKind(t *testing.T) {
	c := journey.NewCustomer("c-42")
	n := journey.IdentitiesPerKind + 2
	for i := range n {
		in := inbound(fmt.Sprintf("gw-%d", i))
		in.Linked = []journey.IdentityRef{{Kind: "web", Value: fmt.Sprintf("s-%d", i)}}
		step(t, c, in, t0)
	}
	got := c.Identities["web"]
	if len(got) != journey.IdentitiesPerKind || got[0] != "s-2" || got[len(got)-1] != fmt.Sprintf("s-%d", n-1) {
		t.Errorf("web identities = %v, want the newest %d, oldest first", got, journey.IdentitiesPerKind)
	}
}

func TestDecideDue(t *testing.T) {
	c := journey.NewCustomer("c-42")
	step(t, c, inbound("gw-1"), t0)
	due := journey.Due{At: t0, Kind: "unknown_kind", Ref: "r-1"}
	d := step(t, c, &due, t0.Add(time.Hour))
	if len(d.DueDone) != 1 || d.DueDone[0] != due {
		t.Errorf("DueDone = %v, want [%v]", d.DueDone, due)
	}
	if len(d.Events) != 0 || d.Ack != nil || d.Reject != nil || len(d.DueAdd) != 0 || c.Seq != 1 {
		t.Errorf("due work made %+v, seq %d", d, c.Seq)
	}
}

// Apply takes events in seq order only; anything else is a broken invariant.
func TestApplyOutOfOrderPanics(t *testing.T) {
	for _, seq := range []uint64{1, 3} { // a repeat, a gap
		c := customerWith(t, 1)
		e := journey.Event{ID: "x", Type: "page.viewed", Seq: seq, Actor: journey.ActorCustomer, RecordedAt: t0}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Apply of seq %d at seq 1 did not panic", seq)
				}
			}()
			c.Apply(&e)
		}()
	}
}

// An inbound stored alone goes into the caller's room when it gives one
// (Inbound.Into): the decision's event and ack are the room's.
func TestDecideIntoTheCallersRoom(t *testing.T) {
	c := journey.NewCustomer("c-42")
	var room journey.EventAck
	in := inbound("gw-1")
	in.Into = &room
	d := step(t, c, in, t0)
	if d.Reject != nil || len(d.Events) != 1 || d.Ack == nil {
		t.Fatalf("decision: %+v", d)
	}
	if &d.Events[0] != &room.Events[0] || d.Ack != &room.Ack {
		t.Fatal("the decision's event and ack are not in the room")
	}
	if room.Ack.Seq != 1 || room.Events[0].Seq != 1 || room.Events[0].Customer != "c-42" {
		t.Fatalf("room: %+v", room)
	}
}
