package e2e

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHTTPIngestIdempotency: POST /v1/events stores an id once, however
// often it is sent, alone or in a batch.
func TestHTTPIngestIdempotency(t *testing.T) {
	s := startServer(t, serverOptions{})
	e := event{ID: "http-1", Customer: "h1", Channel: "web", Text: "first", Data: map[string]any{"n": 1}}
	first := s.postEvent(e)
	if first.Seq != 1 || first.Duplicate || first.Customer != "h1" {
		t.Fatalf("first POST: %+v, want seq 1 new for h1", first)
	}
	again := s.postEvent(e)
	if again.Seq != first.Seq || !again.Duplicate {
		t.Fatalf("second POST of the same event: %+v, want seq %d duplicate", again, first.Seq)
	}
	// The same id with other content is still the first event.
	changed := s.postEvent(event{ID: "http-1", Customer: "h1", Channel: "sms", Text: "changed"})
	if changed.Seq != first.Seq || !changed.Duplicate {
		t.Fatalf("same id, other content: %+v, want duplicate of seq %d", changed, first.Seq)
	}
	// The key is the id for the customer: another customer's same id is
	// another event.
	for _, customer := range []string{"h4", "h5"} {
		if a := s.postEvent(event{ID: "shared-1", Customer: customer, Type: "page.viewed"}); a.Seq != 1 || a.Duplicate || a.Customer != customer {
			t.Errorf("id shared-1 for customer %s: %+v, want a new event at seq 1", customer, a)
		}
	}
	events := s.timeline("h1", 100)
	if len(events) != 1 || events[0].Text != "first" || events[0].Channel != "web" || events[0].Data["n"] != 1.0 ||
		events[0].Actor != "customer" || events[0].RecordedAt.IsZero() {
		t.Fatalf("stored %+v, want the first event once", events)
	}

	// A batch, then the same batch: every item a duplicate with its seq.
	batch := []event{
		{ID: "hb-1", Customer: "h2", Type: "cart.abandoned", Data: map[string]any{"items": 2}},
		{ID: "hb-2", Customer: "h3", Type: "page.viewed"},
		{ID: "hb-3", Customer: "h2", Channel: "web", Text: "hello"},
		{ID: "hb-1", Customer: "h2", Type: "cart.abandoned"}, // repeated inside the batch
	}
	post := func() []ack {
		var out struct{ Acks []ack }
		s.call("POST", "/v1/events", tokChannel, map[string]any{"events": batch}, nil).wantStatus(t, 200).decode(t, &out)
		if len(out.Acks) != len(batch) {
			t.Fatalf("%d acks for %d events", len(out.Acks), len(batch))
		}
		return out.Acks
	}
	acks1 := post()
	want := []ack{{ID: "hb-1", Customer: "h2", Seq: 1}, {ID: "hb-2", Customer: "h3", Seq: 1}, {ID: "hb-3", Customer: "h2", Seq: 2}, {ID: "hb-1", Customer: "h2", Seq: 1, Duplicate: true}}
	for i := range want {
		if acks1[i] != want[i] {
			t.Errorf("batch ack %d: %+v, want %+v", i, acks1[i], want[i])
		}
	}
	acks2 := post()
	for i := range want {
		w := want[i]
		w.Duplicate = true
		if acks2[i] != w {
			t.Errorf("batch sent again, ack %d: %+v, want %+v", i, acks2[i], w)
		}
	}
	if got := clientIDs(s.timeline("h2", 100)); strings.Join(got, ",") != "hb-1,hb-3" {
		t.Errorf("customer h2 stored %q, want hb-1, hb-3", got)
	}
}

// TestCloudEvents: structured, batch and binary CloudEvents are stored under
// source + "/" + id (hashed past 128 characters), acknowledged under the
// CloudEvent's own id, and idempotent; the timeline reads back as
// CloudEvents.
func TestCloudEvents(t *testing.T) {
	s := startServer(t, serverOptions{})
	postCE := func(body any, contentType string, header map[string]string) response {
		t.Helper()
		h := map[string]string{"Content-Type": contentType}
		for k, v := range header {
			h[k] = v
		}
		return s.call("POST", "/v1/events", tokChannel, body, h)
	}
	oneAck := func(r response) ack {
		t.Helper()
		var out struct{ Ack *ack }
		r.wantStatus(t, 200).decode(t, &out)
		if out.Ack == nil {
			t.Fatalf("no ack in %s", r.body)
		}
		return *out.Ack
	}

	t.Run("structured", func(t *testing.T) {
		s := s.with(t)
		ce := map[string]any{
			"specversion": "1.0", "id": "evt-1", "source": "/crm", "type": "order.placed", "subject": "ce-1",
			"time": "2026-01-02T03:04:05Z",
			"data": map[string]any{"text": "I ordered", "channel": "web", "amount": 12.5},
		}
		a := oneAck(postCE(ce, "application/cloudevents+json", nil))
		if a.ID != "evt-1" || a.Customer != "ce-1" || a.Seq != 1 || a.Duplicate {
			t.Fatalf("ack %+v: want id evt-1 (the CloudEvent's), customer ce-1, seq 1", a)
		}
		if d := oneAck(postCE(ce, "application/cloudevents+json; charset=utf-8", nil)); d.ID != "evt-1" || d.Seq != 1 || !d.Duplicate {
			t.Fatalf("the same CloudEvent again: %+v, want duplicate of seq 1", d)
		}
		// Another source with the same id is another event.
		ce["source"] = "/billing"
		if o := oneAck(postCE(ce, "application/cloudevents+json", nil)); o.Seq != 2 || o.Duplicate {
			t.Fatalf("same id from another source: %+v, want a new event at seq 2", o)
		}
		events := s.timeline("ce-1", 100)
		if len(events) != 2 || events[0].ID != "/crm/evt-1" || events[1].ID != "/billing/evt-1" {
			t.Fatalf("stored %+v, want ids /crm/evt-1 and /billing/evt-1", events)
		}
		e := events[0]
		if e.Type != "order.placed" || e.Text != "I ordered" || e.Channel != "web" || e.Data["amount"] != 12.5 || e.Data["text"] != nil {
			t.Errorf("stored %+v: want type order.placed, text and channel from data, amount left in data", e)
		}
	})

	t.Run("batch", func(t *testing.T) {
		s := s.with(t)
		batch := []map[string]any{
			{"specversion": "1.0", "id": "b-1", "source": "/shop", "type": "cart.abandoned", "subject": "ce-2", "data": map[string]any{"items": 3}},
			{"specversion": "0.3", "id": "b-2", "source": "/shop", "type": "cart.abandoned", "subject": "ce-2"},
			{"specversion": "1.0", "id": "b-3", "source": "/shop", "type": "checkout.completed", "subject": "ce-2"},
		}
		var out struct{ Acks []ack }
		postCE(batch, "application/cloudevents-batch+json", nil).wantStatus(t, 200).decode(t, &out)
		if len(out.Acks) != 3 || out.Acks[0].ID != "b-1" || out.Acks[0].Seq != 1 || out.Acks[2].ID != "b-3" || out.Acks[2].Seq != 2 {
			t.Fatalf("acks %+v: want b-1 seq 1, an error, b-3 seq 2", out.Acks)
		}
		if out.Acks[1].Error == nil || out.Acks[1].Error.Code != "bad_request" || out.Acks[1].ID != "b-2" {
			t.Errorf("CloudEvent with specversion 0.3: %+v, want a bad_request item for b-2", out.Acks[1])
		}
		postCE(batch, "application/cloudevents-batch+json", nil).wantStatus(t, 200).decode(t, &out)
		if !out.Acks[0].Duplicate || out.Acks[0].Seq != 1 || !out.Acks[2].Duplicate || out.Acks[2].Seq != 2 {
			t.Errorf("the batch again: %+v, want duplicates of seqs 1 and 2", out.Acks)
		}
		if got := clientIDs(s.timeline("ce-2", 100)); strings.Join(got, ",") != "/shop/b-1,/shop/b-3" {
			t.Errorf("stored %q, want /shop/b-1 and /shop/b-3", got)
		}
		postCE(`{"not":"an array"}`, "application/cloudevents-batch+json", nil).wantError(t, 400, "bad_request")
	})

	t.Run("binary", func(t *testing.T) {
		s := s.with(t)
		h := map[string]string{
			"ce-specversion": "1.0", "ce-id": "bin-1", "ce-source": "urn:ivr", "ce-type": "call.ended",
			"ce-subject": "ce-3", "ce-time": "2026-01-02T03:04:05Z",
		}
		body := `{"text":"call summary","channel":"voice","duration_s":42}`
		a := oneAck(postCE(body, "application/json", h))
		if a.ID != "bin-1" || a.Customer != "ce-3" || a.Seq != 1 || a.Duplicate {
			t.Fatalf("binary ack %+v: want id bin-1, customer ce-3, seq 1", a)
		}
		if d := oneAck(postCE(body, "application/json", h)); !d.Duplicate || d.Seq != 1 || d.ID != "bin-1" {
			t.Fatalf("binary again: %+v, want duplicate of seq 1", d)
		}
		events := s.timeline("ce-3", 100)
		if len(events) != 1 {
			t.Fatalf("stored %+v, want one event", events)
		}
		e := events[0]
		if e.ID != "urn:ivr/bin-1" || e.Type != "call.ended" || e.Text != "call summary" || e.Channel != "voice" || e.Data["duration_s"] != 42.0 {
			t.Errorf("stored %+v", e)
		}
		// A bad ce-time is refused.
		h["ce-time"] = "yesterday"
		h["ce-id"] = "bin-2"
		postCE(body, "application/json", h).wantError(t, 400, "bad_request")
	})

	t.Run("identity in data", func(t *testing.T) {
		s := s.with(t)
		ce := map[string]any{"specversion": "1.0", "id": "id-1", "source": "/web", "type": "page.viewed",
			"data": map[string]any{"identity": map[string]string{"email": "Cy@Example.com"}, "path": "/pricing"}}
		a := oneAck(postCE(ce, "application/cloudevents+json", nil))
		b := s.postEvent(event{ID: "id-2", Identity: map[string]string{"email": "cy@example.com"}, Type: "page.viewed"})
		if a.Customer == "" || b.Customer != a.Customer {
			t.Fatalf("CloudEvent with data.identity reached %q, a plain event with the same email %q", a.Customer, b.Customer)
		}
		wantIdentities(t, s.context(a.Customer), map[string][]string{"email": {"cy@example.com"}})
	})

	t.Run("source and id over 128 characters", func(t *testing.T) {
		s := s.with(t)
		source := "https://events.example.com/" + strings.Repeat("s", 110)
		ce := map[string]any{"specversion": "1.0", "id": "long-1", "source": source, "type": "order.placed", "subject": "ce-4",
			"data": map[string]any{"total": 9}}
		a := oneAck(postCE(ce, "application/cloudevents+json", nil))
		if a.ID != "long-1" || a.Seq != 1 {
			t.Fatalf("ack %+v: want id long-1 seq 1", a)
		}
		sum := sha256.Sum256([]byte(source + "/long-1"))
		wantID := "ce:" + base64.RawURLEncoding.EncodeToString(sum[:])
		events := s.timeline("ce-4", 100)
		if len(events) != 1 || events[0].ID != wantID {
			t.Fatalf("stored %+v, want id %s", events, wantID)
		}
		if events[0].Data["ce_source"] != source || events[0].Data["total"] != 9.0 {
			t.Errorf("stored data %v, want ce_source %q and total 9", events[0].Data, source)
		}
		if d := oneAck(postCE(ce, "application/cloudevents+json", nil)); !d.Duplicate || d.Seq != 1 {
			t.Errorf("long CloudEvent again: %+v, want duplicate of seq 1", d)
		}
	})

	t.Run("bad CloudEvents", func(t *testing.T) {
		s := s.with(t)
		for name, body := range map[string]string{
			"not JSON":         `{"specversion":`,
			"no source":        `{"specversion":"1.0","id":"x","type":"a.b","subject":"ce-5"}`,
			"no id":            `{"specversion":"1.0","source":"/s","type":"a.b","subject":"ce-5"}`,
			"no type":          `{"specversion":"1.0","id":"x","source":"/s","subject":"ce-5"}`,
			"data not object":  `{"specversion":"1.0","id":"x","source":"/s","type":"a.b","subject":"ce-5","data":[1]}`,
			"reserved type":    `{"specversion":"1.0","id":"x","source":"/s","type":"agent.assigned","subject":"ce-5"}`,
			"no customer":      `{"specversion":"1.0","id":"x","source":"/s","type":"a.b"}`,
			"data_base64":      `{"specversion":"1.0","id":"x","source":"/s","type":"a.b","subject":"ce-5","data_base64":"aGk="}`,
			"text not string":  `{"specversion":"1.0","id":"x","source":"/s","type":"a.b","subject":"ce-5","data":{"text":1}}`,
			"specversion 0.3":  `{"specversion":"0.3","id":"x","source":"/s","type":"a.b","subject":"ce-5"}`,
			"bad subject (id)": `{"specversion":"1.0","id":"x","source":"/s","type":"a.b","subject":"` + strings.Repeat("c", 129) + `"}`,
		} {
			r := postCE(body, "application/cloudevents+json", nil)
			t.Run(name, func(t *testing.T) { r.wantError(t, 400, "bad_request") })
		}
		s.call("GET", "/v1/customers/ce-5", tokSupervisor, nil, nil).wantError(t, 404, "not_found")
	})

	t.Run("timeline as CloudEvents", func(t *testing.T) {
		s := s.with(t)
		for i := 0; i < 12; i++ {
			s.postEvent(event{ID: fmt.Sprintf("cet-%02d", i), Customer: "ce-6", Channel: "chat", Text: fmt.Sprintf("line %d", i), Data: map[string]any{"i": i}})
		}
		type ceOut struct {
			SpecVersion     string         `json:"specversion"`
			ID              string         `json:"id"`
			Source          string         `json:"source"`
			Type            string         `json:"type"`
			Subject         string         `json:"subject"`
			Time            time.Time      `json:"time"`
			DataContentType string         `json:"datacontenttype"`
			Data            map[string]any `json:"data"`
			Seq             uint64         `json:"seq"`
		}
		var all []ceOut
		after := "0"
		for page := 0; ; page++ {
			r := s.call("GET", "/v1/customers/ce-6/timeline?limit=5&after="+after, tokSupervisor, nil,
				map[string]string{"Accept": "application/cloudevents-batch+json"}).wantStatus(t, 200)
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/cloudevents-batch+json") {
				t.Fatalf("Content-Type %q, want application/cloudevents-batch+json", ct)
			}
			var ces []ceOut
			r.decode(t, &ces)
			all = append(all, ces...)
			next := r.header.Get("Throughline-Next-After")
			if page < 2 {
				if len(ces) != 5 || next != strconv.FormatUint(ces[4].Seq, 10) {
					t.Fatalf("page %d: %d CloudEvents, Throughline-Next-After %q; want 5 and the last seq", page, len(ces), next)
				}
				after = next
				continue
			}
			if len(ces) != 2 || next != "" {
				t.Fatalf("last page: %d CloudEvents, Throughline-Next-After %q; want 2 and no header", len(ces), next)
			}
			break
		}
		for i, ce := range all {
			if ce.SpecVersion != "1.0" || ce.ID != fmt.Sprintf("cet-%02d", i) || ce.Type != "message.received" || ce.Subject != "ce-6" ||
				ce.Source == "" || ce.Time.IsZero() || ce.Seq != uint64(i+1) || ce.DataContentType != "application/json" ||
				ce.Data["text"] != fmt.Sprintf("line %d", i) || ce.Data["channel"] != "chat" || ce.Data["i"] != float64(i) {
				t.Errorf("CloudEvent %d: %+v", i, ce)
			}
		}
	})
}

// TestTimelinePaging: limit, the default of 100, the cap of 1000, and
// next_after present exactly when later events exist.
func TestTimelinePaging(t *testing.T) {
	s := startServer(t, serverOptions{})
	postN := func(customer string, from, n int) {
		t.Helper()
		events := make([]event, n)
		for i := range events {
			events[i] = event{ID: fmt.Sprintf("%s-%04d", customer, from+i), Customer: customer, Type: "page.viewed", Data: map[string]any{"i": from + i}}
		}
		var out struct{ Acks []ack }
		s.call("POST", "/v1/events", tokChannel, map[string]any{"events": events}, nil).wantStatus(t, 200).decode(t, &out)
		for i, a := range out.Acks {
			if a.Error != nil || a.Seq != uint64(from+i+1) {
				t.Fatalf("ack %+v, want seq %d", a, from+i+1)
			}
		}
	}
	page := func(customer, query string) timelinePage {
		t.Helper()
		var p timelinePage
		s.call("GET", "/v1/customers/"+customer+"/timeline"+query, tokSupervisor, nil, nil).wantStatus(t, 200).decode(t, &p)
		return p
	}
	wantPage := func(p timelinePage, first uint64, n int, next uint64) {
		t.Helper()
		if len(p.Events) != n {
			t.Fatalf("page of %d events, want %d", len(p.Events), n)
		}
		if n > 0 && (p.Events[0].Seq != first || p.Events[n-1].Seq != first+uint64(n)-1) {
			t.Fatalf("page seqs %d..%d, want %d..%d", p.Events[0].Seq, p.Events[n-1].Seq, first, first+uint64(n)-1)
		}
		switch {
		case next == 0 && p.NextAfter != nil:
			t.Fatalf("next_after %d on the last page", *p.NextAfter)
		case next != 0 && (p.NextAfter == nil || *p.NextAfter != next):
			t.Fatalf("next_after %v, want %d", p.NextAfter, next)
		}
	}

	postN("pager", 0, 20)
	wantPage(page("pager", "?limit=10"), 1, 10, 10)
	wantPage(page("pager", "?after=10&limit=10"), 11, 10, 0) // ends exactly at the last event
	wantPage(page("pager", "?after=20&limit=10"), 0, 0, 0)
	wantPage(page("pager", "?after=500"), 0, 0, 0)
	wantPage(page("pager", "?after=19"), 20, 1, 0)
	postN("pager", 20, 5)
	wantPage(page("pager", "?after=10&limit=10"), 11, 10, 20)
	wantPage(page("pager", "?after=20&limit=10"), 21, 5, 0)
	// An empty page has "events":[] rather than null.
	r := s.call("GET", "/v1/customers/pager/timeline?after=25", tokSupervisor, nil, nil).wantStatus(t, 200)
	if !strings.Contains(string(r.body), `"events":[]`) {
		t.Errorf("empty page %s: want \"events\":[]", r.body)
	}

	postN("long", 0, 1000)
	postN("long", 1000, 5)
	wantPage(page("long", ""), 1, 100, 100)                      // default limit 100
	wantPage(page("long", "?limit=5000"), 1, 1000, 1000)         // capped at 1000
	wantPage(page("long", "?after=1000&limit=5000"), 1001, 5, 0) // the rest
	wantPage(page("long", "?after=990&limit=1000"), 991, 15, 0)  // exactly to the end
	all := s.timeline("long", 1000)
	checkGapless(t, "long", all)
	if len(all) != 1005 {
		t.Fatalf("%d events, want 1005", len(all))
	}
	for i, e := range all {
		if e.ID != fmt.Sprintf("long-%04d", i) {
			t.Fatalf("seq %d is %q", e.Seq, e.ID)
		}
	}
	// The context shows the latest events, newest last, and the seq.
	ctx := s.context("long")
	if ctx.Seq != 1005 || len(ctx.Timeline) < 50 || ctx.Timeline[len(ctx.Timeline)-1].Seq != 1005 {
		t.Errorf("context seq %d with %d events, want seq 1005, at least 50 events, newest last", ctx.Seq, len(ctx.Timeline))
	}
}
