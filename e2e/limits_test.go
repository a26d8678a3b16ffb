package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestLimitsAndOddIDs: the limits of PROTOCOL section 1 hold exactly at
// their edges, over HTTP and the WebSocket, and ids of any printable
// characters (multi-byte, slashes, spaces) work end to end.
func TestLimitsAndOddIDs(t *testing.T) {
	s := startServer(t, serverOptions{})

	// withData is an event whose data object encodes to exactly n bytes.
	withData := func(id string, n int) string {
		const pre, post = `{"pad":"`, `"}`
		return `{"id":"` + id + `","customer":"lim","type":"page.viewed","data":` + pre + strings.Repeat("d", n-len(pre)-len(post)) + post + `}`
	}
	// withSize is an event of exactly n bytes.
	withSize := func(id string, n int) string {
		head := `{"id":"` + id + `","customer":"lim","text":"`
		return head + strings.Repeat("t", n-len(head)-2) + `"}`
	}
	okHTTP := func(t *testing.T, body string) {
		t.Helper()
		var out struct{ Ack *ack }
		s.with(t).call("POST", "/v1/events", tokChannel, body, nil).wantStatus(t, 200).decode(t, &out)
		if out.Ack == nil || out.Ack.Duplicate {
			t.Fatalf("ack %+v", out.Ack)
		}
	}
	okWS := func(t *testing.T, c *wsClient, body string) {
		t.Helper()
		if err := c.sendRaw([]byte(`{"type":"event","event":` + body + `}`)); err != nil {
			t.Fatal(err)
		}
		if f := c.expect("ack"); f.Duplicate {
			t.Fatalf("ack %s", f.raw)
		}
	}
	errWS := func(t *testing.T, c *wsClient, body, code string) {
		t.Helper()
		if err := c.sendRaw([]byte(`{"type":"event","event":` + body + `}`)); err != nil {
			t.Fatal(err)
		}
		wantErrorFrame(t, "limit", c.expect("error"), code)
	}

	t.Run("data of 16 KiB", func(t *testing.T) {
		s := s.with(t)
		c := dialWS(t, s, tokChannel)
		okHTTP(t, withData("data-http", 16<<10))
		okWS(t, c, withData("data-ws", 16<<10))
		s.call("POST", "/v1/events", tokChannel, withData("data-http-2", 16<<10+1), nil).wantError(t, 413, "too_large")
		errWS(t, c, withData("data-ws-2", 16<<10+1), "too_large")
	})
	t.Run("event of 64 KiB", func(t *testing.T) {
		s := s.with(t)
		c := dialWS(t, s, tokChannel)
		if b := withSize("size-http", 64<<10); len(b) != 64<<10 || !json.Valid([]byte(b)) {
			t.Fatalf("test event of %d bytes", len(b))
		}
		okHTTP(t, withSize("size-http", 64<<10))
		okWS(t, c, withSize("size-ws", 64<<10))
		s.call("POST", "/v1/events", tokChannel, withSize("size-http-2", 64<<10+1), nil).wantError(t, 413, "too_large")
		errWS(t, c, withSize("size-ws-2", 64<<10+1), "too_large")
	})

	t.Run("ids of 128 characters, multi-byte", func(t *testing.T) {
		s := s.with(t)
		c := dialWS(t, s, tokChannel)
		id := strings.Repeat("é", 127) + "✓" // 128 characters, 257 bytes
		customer := strings.Repeat("ü", 128)
		a := c.sendEvent(event{ID: id, Customer: customer, Type: "page.viewed"})
		if a.Customer != customer || a.Seq != 1 {
			t.Fatalf("ack %s", a.raw)
		}
		if d := s.postEvent(event{ID: id, Customer: customer, Type: "page.viewed"}); !d.Duplicate || d.Seq != 1 {
			t.Fatalf("the same id again: %+v, want duplicate of seq 1", d)
		}
		events := s.timeline(customer, 10)
		if len(events) != 1 || events[0].ID != id {
			t.Fatalf("stored %+v", events)
		}
		if ctx := s.context(customer); ctx.Seq != 1 {
			t.Fatalf("context seq %d", ctx.Seq)
		}
		errWS(t, c, `{"id":"`+id+`x","customer":"lim","type":"page.viewed"}`, "bad_request")
		errWS(t, c, `{"id":"x","customer":"`+customer+`x","type":"page.viewed"}`, "bad_request")
		errWS(t, c, `{"id":"bell\u0007","customer":"lim","type":"page.viewed"}`, "bad_request")
	})

	t.Run("customer ids with slashes, spaces and query characters", func(t *testing.T) {
		s := s.with(t)
		c := dialWS(t, s, tokChannel)
		for _, customer := range []string{"tenant/42", "a b", "what?x=1", "100%", "#hash", ".", "..", "üser/ü", "%2F"} {
			a := c.sendEvent(event{ID: "odd-" + customer, Customer: customer, Type: "page.viewed"})
			if a.Customer != customer {
				t.Fatalf("ack %s for customer %q", a.raw, customer)
			}
			path := customerPath(customer)
			var ctx journeyContext
			r := s.call("GET", path, tokSupervisor, nil, nil)
			if r.status != 200 {
				t.Errorf("GET %s (customer %q): %d %s", path, customer, r.status, r.body)
				continue
			}
			r.decode(t, &ctx)
			if ctx.Customer != customer || ctx.Seq != 1 {
				t.Errorf("GET %s: customer %q seq %d, want %q seq 1", path, ctx.Customer, ctx.Seq, customer)
			}
			var p timelinePage
			s.call("GET", path+"/timeline", tokSupervisor, nil, nil).wantStatus(t, 200).decode(t, &p)
			if len(p.Events) != 1 || p.Events[0].ID != "odd-"+customer {
				t.Errorf("timeline of %q: %+v", customer, p.Events)
			}
		}
	})

	t.Run("CloudEvent source and id of exactly 128 characters", func(t *testing.T) {
		s := s.with(t)
		source := "/" + strings.Repeat("s", 128-len("/")-len("/e-1"))
		ce := map[string]any{"specversion": "1.0", "id": "e-1", "source": source, "type": "a.b", "subject": "ce-edge"}
		var out struct{ Ack *ack }
		s.call("POST", "/v1/events", tokChannel, ce, map[string]string{"Content-Type": "application/cloudevents+json"}).wantStatus(t, 200).decode(t, &out)
		events := s.timeline("ce-edge", 10)
		if len(events) != 1 || events[0].ID != source+"/e-1" || events[0].Data["ce_source"] != nil {
			t.Fatalf("stored %+v, want id %s kept as is", events, source+"/e-1")
		}
	})

	t.Run("CloudEvents batch over 1000", func(t *testing.T) {
		s := s.with(t)
		batch := make([]map[string]any, 1001)
		for i := range batch {
			batch[i] = map[string]any{"specversion": "1.0", "id": fmt.Sprint(i), "source": "/s", "type": "a.b", "subject": "ce-over"}
		}
		s.call("POST", "/v1/events", tokChannel, batch, map[string]string{"Content-Type": "application/cloudevents-batch+json"}).wantError(t, 413, "too_large")
		s.call("GET", "/v1/customers/ce-over", tokSupervisor, nil, nil).wantError(t, 404, "not_found")
	})

	t.Run("too many identities", func(t *testing.T) {
		s := s.with(t)
		ids := map[string]string{}
		for i := 0; i < 17; i++ {
			ids[fmt.Sprintf("kind%c", 'a'+i)] = "v"
		}
		s.call("POST", "/v1/events", tokChannel, event{ID: "many-ids", Identity: ids, Type: "a.b"}, nil).wantError(t, 400, "bad_request")
	})

	t.Run("hello", func(t *testing.T) {
		s := s.with(t)
		c := dialWS(t, s, tokChannel)
		c.mustSend(map[string]any{"type": "hello", "channels": []string{"sms", "whatsapp"}})
		c.expect("ready")
		c.mustSend(map[string]any{"type": "hello", "channels": []string{"SMS!"}})
		wantErrorFrame(t, "hello with a bad channel", c.expect("error"), "bad_request")
		c.sendEvent(event{ID: "after-hello", Customer: "lim", Type: "page.viewed"})
	})
}
