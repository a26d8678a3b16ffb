package journey_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

// t0 is the clock of the tests.
var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// inbound is a validated client event for customer c-42.
func inbound(id string) *journey.Inbound {
	return &journey.Inbound{Event: journey.Event{ID: id, Customer: "c-42", Type: "message.received", Text: "hi"}}
}

// fresh is inbound(id) with the store's answer that it never saw id, for
// customers whose ids have left memory.
func fresh(id string) *journey.Inbound {
	in := inbound(id)
	in.Stored = &journey.StoredID{}
	return in
}

// step decides in at now and applies the events at once, as the customer
// actor does.
func step(t testing.TB, c *journey.Customer, in journey.Input, now time.Time) journey.Decision {
	t.Helper()
	d := journey.Decide(c, in, now)
	for i := range d.Events {
		c.Apply(&d.Events[i])
	}
	return d
}

// code is the rejection's code, "" for none.
func code(r *journey.Rejection) journey.Code {
	if r == nil {
		return ""
	}
	return r.Code
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rebuild is journey.Rebuild that must succeed.
func rebuild(t testing.TB, id string, snap []byte, events []journey.Event) *journey.Customer {
	t.Helper()
	c, err := journey.Rebuild(id, snap, events)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
