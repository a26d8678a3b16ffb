package e2e

// HTTP helpers (PROTOCOL section 3): requests, error bodies, journey
// context, timeline paging, metrics.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

var httpClient = &http.Client{Timeout: httpTimeout}

// response is an HTTP answer with its body read.
type response struct {
	status int
	header http.Header
	body   []byte
}

// call makes an HTTP request; an empty token sends no Authorization. body
// may be nil, a []byte, a string or a value to encode as JSON.
func (s *server) call(method, path, token string, body any, header map[string]string) response {
	s.t.Helper()
	r, err := s.tryCall(method, path, token, body, header)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func (s *server) tryCall(method, path, token string, body any, header map[string]string) (response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			return response{}, err
		}
		rd = bytes.NewReader(enc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), httpTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, rd)
	if err != nil {
		return response{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// decode decodes a JSON body into v, failing the test when it is not.
func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body %q is not the expected JSON: %v", r.body, err)
	}
}

// wantStatus fails the test when the status is not want.
func (r response) wantStatus(t *testing.T, want int) response {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d; body %s", r.status, want, r.body)
	}
	return r
}

// wantError checks an error answer: the status, application/json, and the
// body {"error":{"code":code,"message":non-empty}} and nothing else.
func (r response) wantError(t *testing.T, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d (%s); body %s", r.status, status, code, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error Content-Type %q, want application/json", ct)
	}
	var body map[string]json.RawMessage
	r.decode(t, &body)
	if len(body) != 1 || body["error"] == nil {
		t.Fatalf("error body %s: want exactly {\"error\":{...}}", r.body)
	}
	var e map[string]any
	if err := json.Unmarshal(body["error"], &e); err != nil {
		t.Fatalf("error body %s: %v", r.body, err)
	}
	if e["code"] != code {
		t.Fatalf("error code %v, want %q; body %s", e["code"], code, r.body)
	}
	if msg, _ := e["message"].(string); msg == "" {
		t.Fatalf("error body %s has no message", r.body)
	}
}

// postEvent POSTs one event and returns its ack (200 expected).
func (s *server) postEvent(e event) ack {
	s.t.Helper()
	var out struct{ Ack *ack }
	s.call("POST", "/v1/events", tokChannel, e, nil).wantStatus(s.t, 200).decode(s.t, &out)
	if out.Ack == nil || out.Ack.ID != e.ID || out.Ack.Seq == 0 || out.Ack.Customer == "" {
		s.t.Fatalf("POST event %q: ack %+v", e.ID, out.Ack)
	}
	return *out.Ack
}

// customerPath is /v1/customers/{id} with the id escaped as one path
// segment: dots alone are escaped too, or "." and ".." would be cleaned
// away by the server's router.
func customerPath(id string) string {
	seg := url.PathEscape(id)
	if strings.Trim(seg, ".") == "" {
		seg = strings.ReplaceAll(seg, ".", "%2E")
	}
	return "/v1/customers/" + seg
}

// journeyContext is the body of GET /v1/customers/{id}.
type journeyContext struct {
	Customer   string              `json:"customer"`
	Identities map[string][]string `json:"identities"`
	Profile    map[string]any      `json:"profile"`
	Timeline   []storedEvent       `json:"timeline"`
	Seq        uint64              `json:"seq"`
}

func (s *server) context(customer string) journeyContext {
	s.t.Helper()
	var c journeyContext
	s.call("GET", customerPath(customer), tokSupervisor, nil, nil).wantStatus(s.t, 200).decode(s.t, &c)
	if c.Customer != customer {
		s.t.Fatalf("context of %q names customer %q", customer, c.Customer)
	}
	return c
}

// readAvailable GETs path as a supervisor, sending it again while the
// answer is 503 (for up to 15 s): in a cluster a read through a node whose
// leaderships are still moving (after a restart or a healed partition)
// may answer unavailable, and PROTOCOL 8 says to send again. A single
// node answers 503 only when its store is down, and a test reading a
// timeline then fails after the wait as it would have at once.
func (s *server) readAvailable(path string) response {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	r := s.call("GET", path, tokSupervisor, nil, nil)
	for r.status == 503 && time.Now().Before(deadline) {
		pause(100 * time.Millisecond)
		r = s.call("GET", path, tokSupervisor, nil, nil)
	}
	return r
}

// timelinePage is the body of GET /v1/customers/{id}/timeline.
type timelinePage struct {
	Events    []storedEvent `json:"events"`
	NextAfter *uint64       `json:"next_after"`
}

// timeline reads a customer's whole timeline as a supervisor, paging with
// next_after, limit events a page. It checks every page: events in seq
// order, next_after the last seq of the page and present exactly when the
// page is not the last.
func (s *server) timeline(customer string, limit int) []storedEvent {
	s.t.Helper()
	var all []storedEvent
	after := uint64(0)
	for pages := 0; ; pages++ {
		if pages > 100000 {
			s.t.Fatalf("timeline of %s: paging does not end", customer)
		}
		var p timelinePage
		path := fmt.Sprintf("%s/timeline?after=%d&limit=%d", customerPath(customer), after, limit)
		s.readAvailable(path).wantStatus(s.t, 200).decode(s.t, &p)
		if len(p.Events) > limit {
			s.t.Fatalf("%s: %d events, more than the limit", path, len(p.Events))
		}
		for i, e := range p.Events {
			if e.Seq <= after || (i > 0 && e.Seq <= p.Events[i-1].Seq) {
				s.t.Fatalf("%s: seqs out of order at %d (%d after %d)", path, i, e.Seq, after)
			}
			if e.Customer != customer {
				s.t.Fatalf("%s: event %q names customer %q", path, e.ID, e.Customer)
			}
		}
		all = append(all, p.Events...)
		if p.NextAfter == nil {
			return all
		}
		if len(p.Events) == 0 || *p.NextAfter != p.Events[len(p.Events)-1].Seq {
			s.t.Fatalf("%s: next_after %d is not the last seq of a page of %d", path, *p.NextAfter, len(p.Events))
		}
		after = *p.NextAfter
	}
}

// checkGapless fails unless the events' seqs are exactly 1..len, each with
// a recorded_at that does not go back in seq order.
func checkGapless(t *testing.T, customer string, events []storedEvent) {
	t.Helper()
	for i, e := range events {
		if e.Seq != uint64(i+1) {
			t.Fatalf("customer %s: event %d (%q) has seq %d, want %d: seqs are not 1..N", customer, i, e.ID, e.Seq, i+1)
		}
		if e.RecordedAt.IsZero() || (i > 0 && e.RecordedAt.Before(events[i-1].RecordedAt)) {
			t.Fatalf("customer %s: seq %d recorded_at %s, after seq %d at %s", customer, e.Seq, e.RecordedAt, i, events[max(i-1, 0)].RecordedAt)
		}
	}
}

// metric reads a gauge or counter without labels from GET /metrics.
func (s *server) metric(name string) (float64, error) {
	r, err := s.tryCall("GET", "/metrics", "", nil, nil)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(r.body), "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err != nil {
				return 0, err
			}
			return v, nil
		}
	}
	return 0, errors.New("metric " + name + " not found")
}
