package e2e

import (
	"testing"
	"time"
)

// privacySections queue payment.failed in billing (a callback offered
// after 1 s) and arm a timer rule due after 1 s.
const privacySections = `queues:
  - {name: billing, callback_after: 1s}
rules:
  - id: to-billing
    when: "event.type == 'payment.failed'"
    do: [{route: {queue: billing, bypass_bot: true}}]
  - id: nudge
    when: "event.type == 'payment.failed'"
    after: 1s
    do: [{tag: nudged}]
`

func billingWaiting(s *server) int {
	s.t.Helper()
	var out struct {
		Queues []struct {
			Name    string `json:"name"`
			Waiting int    `json:"waiting"`
		} `json:"queues"`
	}
	s.call("GET", "/v1/queues", tokSupervisor, nil, nil).wantStatus(s.t, 200).decode(s.t, &out)
	for _, q := range out.Queues {
		if q.Name == "billing" {
			return q.Waiting
		}
	}
	s.t.Fatal("no billing queue")
	return 0
}

// An erased customer stays erased across a restart: nothing of it fires or
// is queued again, its phone makes a new customer, and the audit entry of
// the erase (with the token's name) is still there.
func TestEraseAndAuditSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	opts := serverOptions{dataDir: dir, sections: privacySections, tokens: []string{"{token: dpo-secret, role: admin, name: dpo}"}}
	s := startServer(t, opts)
	phone := map[string]string{"phone": "+15557654321"}
	a := s.postEvent(event{ID: "pay-1", Identity: phone, Type: "payment.failed", Channel: "sms"})
	eventually(t, 5*time.Second, "the customer queued", func() bool { return billingWaiting(s) == 1 })

	s.call("DELETE", customerPath(a.Customer), "dpo-secret", nil, nil).wantStatus(t, 204)
	if n := billingWaiting(s); n != 0 {
		t.Fatalf("billing lists %d waiting after the erase", n)
	}
	s.stop()

	s = startServer(t, opts)
	pause(1500 * time.Millisecond) // past the callback and the timer
	s.call("GET", customerPath(a.Customer), tokSupervisor, nil, nil).wantError(t, 404, "not_found")
	if n := billingWaiting(s); n != 0 {
		t.Fatalf("billing lists %d waiting after a restart", n)
	}
	s.call("POST", "/v1/events", tokChannel, event{ID: "pay-1", Customer: a.Customer, Type: "payment.failed"}, nil).
		wantError(t, 409, "conflict")
	if b := s.postEvent(event{ID: "hi-2", Identity: phone, Text: "hello"}); b.Customer == a.Customer {
		t.Fatal("the erased customer's phone resolved to it again")
	}

	var audit struct {
		Entries []struct{ Token, Role, Action, Target, Result string } `json:"entries"`
	}
	s.call("GET", "/v1/audit", "dpo-secret", nil, nil).wantStatus(t, 200).decode(t, &audit)
	if len(audit.Entries) != 1 {
		t.Fatalf("audit entries %+v, want the erase", audit.Entries)
	}
	if e := audit.Entries[0]; e.Token != "dpo" || e.Role != "admin" || e.Action != "erase" || e.Target != a.Customer || e.Result != "ok" {
		t.Fatalf("audit entry %+v", e)
	}
}
