package journey_test

import (
	"encoding/json"
	"testing"

	"github.com/throughline/throughline/journey"
)

// TestEmailThreadContinuesOneCase: the first email of a thread opens a case,
// the bot's reply carries the thread, and a reply naming either the first
// message or the bot's reply continues the same case; an unrelated email
// opens another.
func TestEmailThreadContinuesOneCase(t *testing.T) {
	r := newRun(t, botPolicy())
	d := r.event(journey.TypeMessageReceived, "email", "my card was charged twice",
		`{"subject":"Double charge","message_id":"m1@mail.example"}`)
	wantTypes(t, d, journey.TypeMessageReceived, journey.TypeCaseOpened, journey.TypeConversationOpened)
	if len(r.c.Cases) != 1 || r.c.Cases[0].Subject != "Double charge" {
		t.Fatalf("cases %+v", r.c.Cases)
	}
	caseID := r.c.Cases[0].ID
	d = r.botAnswer(d, good("Refunds take 3 days"))
	sent := eventOf(t, d, journey.TypeMessageSent)
	var data struct {
		Thread journey.EmailThread `json:"thread"`
	}
	if len(d.Outbounds) != 1 || json.Unmarshal(d.Outbounds[0].Data, &data) != nil {
		t.Fatalf("outbounds %+v", d.Outbounds)
	}
	if th := data.Thread; th.Case != caseID || th.Subject != "Re: Double charge" || th.InReplyTo != "m1@mail.example" || len(th.References) != 1 {
		t.Errorf("thread %+v", th)
	}
	// The customer answers the bot's reply (its Message-ID is the outbound id at the sender's domain).
	out := journey.OutboundID("c-42", sent.Seq)
	d = r.event(journey.TypeMessageReceived, "email", "still not refunded",
		`{"subject":"Re: Double charge","message_id":"m2@mail.example","in_reply_to":"`+out+`@example.com"}`)
	if hasType(d, journey.TypeCaseOpened) || len(r.c.Cases) != 1 {
		t.Fatalf("a reply opened a case: %v, cases %+v", types(d.Events), r.c.Cases)
	}
	if th := r.c.Cases[0].Thread; len(th) != 3 || th[2] != "m2@mail.example" {
		t.Errorf("thread %v", th)
	}
	// By References only.
	r.event(journey.TypeMessageReceived, "email", "hello?", `{"message_id":"m3@mail.example","references":["zz@x","m1@mail.example"]}`)
	// Another subject, no references: a new case.
	d = r.event(journey.TypeMessageReceived, "email", "new card please", `{"subject":"New card","message_id":"m4@mail.example"}`)
	if !hasType(d, journey.TypeCaseOpened) || len(r.c.Cases) != 2 {
		t.Fatalf("unrelated email: %v, cases %+v", types(d.Events), r.c.Cases)
	}
	// A resolved case is not continued.
	r.c.Cases[1].Status = "resolved"
	d = r.event(journey.TypeMessageReceived, "email", "again", `{"message_id":"m5@mail.example","in_reply_to":"m4@mail.example"}`)
	if !hasType(d, journey.TypeCaseOpened) {
		t.Errorf("reply to a resolved case: %v", types(d.Events))
	}
	// The state survives a snapshot.
	snap := r.c.EncodeSnapshot()
	c := rebuild(t, "c-42", snap, nil)
	if len(c.Cases) != 3 || len(c.Cases[0].Thread) != 4 {
		t.Errorf("rebuilt cases %+v", c.Cases)
	}
}

func hasType(d journey.Decision, typ string) bool {
	for _, e := range d.Events {
		if e.Type == typ {
			return true
		}
	}
	return false
}
