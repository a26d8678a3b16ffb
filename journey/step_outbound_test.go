package journey_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

// answered is a run whose bot answered the first message at t0; it returns
// the message.sent.
func answered(t *testing.T) (*journeyRun, journey.Event) {
	t.Helper()
	r := newRun(t, botPolicy())
	d := r.botAnswer(r.msg("my card payment failed"), good("Try the card again"))
	return r, eventOf(t, d, journey.TypeMessageSent)
}

func TestStepOutboundIsSentAndScheduled(t *testing.T) {
	r := newRun(t, botPolicy())
	r.c.Apply(&journey.Event{ID: "rt-x", Customer: "c-42", Type: journey.TypeIdentityLinked, Seq: 1, Actor: journey.ActorSystem,
		RecordedAt: t0, Data: json.RawMessage(`{"identities":[{"kind":"phone","value":"+15551230000"}]}`)})
	d := r.botAnswer(r.msg("my card payment failed"), good("Try the card again"))
	sent := eventOf(t, d, journey.TypeMessageSent)
	id := journey.OutboundID("c-42", sent.Seq)
	if data := dataOf(t, sent); data["outbound"] != id || data["conversation"] != r.c.Conversation.ID || mustJSON(t, data["to"]) != `{"phone":"+15551230000"}` {
		t.Errorf("message.sent data %s", sent.Data)
	}
	if due := dueOf(t, d.DueAdd, journey.DueOutbound); !due.At.Equal(t0.Add(journey.OutboundRetryDefault)) || due.Ref != seqRef(sent.Seq) {
		t.Errorf("due %+v", due)
	}
	want := journey.Outbound{ID: id, Customer: "c-42", Seq: sent.Seq, Channel: "sms", To: map[string]string{"phone": "+15551230000"},
		Text: "Try the card again", Actor: journey.ActorAI, Data: json.RawMessage("{}")}
	if len(d.Outbounds) != 1 || mustJSON(t, d.Outbounds[0]) != mustJSON(t, want) {
		t.Errorf("outbounds %+v, want %+v", d.Outbounds, want)
	}
}

func TestStepOutboundRedelivery(t *testing.T) {
	r, sent := answered(t)
	ref := seqRef(sent.Seq)
	first := journey.Due{At: t0.Add(30 * time.Second), Kind: journey.DueOutbound, Ref: ref}
	r.at(31 * time.Second)
	d := r.due(first)
	if len(d.Events) != 0 || len(d.Outbounds) != 1 || d.Outbounds[0].ID != journey.OutboundID("c-42", sent.Seq) || d.Outbounds[0].Text != "Try the card again" {
		t.Fatalf("redelivery: events %v outbounds %+v", types(d.Events), d.Outbounds)
	}
	second := journey.Due{At: t0.Add(61 * time.Second), Kind: journey.DueOutbound, Ref: ref}
	if !slices.Equal(d.DueDone, []journey.Due{first}) || !slices.Equal(d.DueAdd, []journey.Due{second}) {
		t.Errorf("due done %+v add %+v, want %+v then %+v", d.DueDone, d.DueAdd, first, second)
	}
	// The same key again, or a key already rescheduled: only discharged.
	for _, stale := range []journey.Due{first, {At: t0.Add(45 * time.Second), Kind: journey.DueOutbound, Ref: ref}} {
		d := r.due(stale)
		if len(d.Events) != 0 || len(d.Outbounds) != 0 || len(d.DueAdd) != 0 || !slices.Equal(d.DueDone, []journey.Due{stale}) {
			t.Errorf("stale due %+v: %+v", stale, d)
		}
	}
	// Accepted: redelivery stops, nothing recorded or written (the due
	// work discharges itself when it comes).
	d = r.step(&journey.Receipt{Outbound: journey.OutboundID("c-42", sent.Seq), Kind: journey.ReceiptAccepted})
	if len(d.Events) != 0 || d.Reject != nil || len(d.DueDone) != 0 {
		t.Errorf("accepted: %+v", d)
	}
	r.at(61 * time.Second)
	if d := r.due(second); len(d.Outbounds) != 0 || len(d.DueAdd) != 0 || len(d.Events) != 0 || !slices.Equal(d.DueDone, []journey.Due{second}) {
		t.Errorf("due after accepted: %+v", d)
	}
	// Delivered later: recorded, and the outbound is confirmed.
	r.at(time.Hour)
	d = r.step(&journey.Receipt{Outbound: journey.OutboundID("c-42", sent.Seq), Kind: journey.ReceiptDelivered})
	wantTypes(t, d, journey.TypeMessageDelivered)
	if data := dataOf(t, d.Events[0]); data["outbound"] != journey.OutboundID("c-42", sent.Seq) || d.Events[0].Actor != journey.ActorSystem || len(d.DueDone) != 0 {
		t.Errorf("delivered %s by %s, due done %+v", d.Events[0].Data, d.Events[0].Actor, d.DueDone)
	}
	if len(r.c.Outbounds) != 0 {
		t.Errorf("still pending: %+v", r.c.Outbounds)
	}
}

func TestStepOutboundReceipts(t *testing.T) {
	t.Run("delivered without accepted stops redelivery", func(t *testing.T) {
		r, sent := answered(t)
		id := journey.OutboundID("c-42", sent.Seq)
		d := r.step(&journey.Receipt{Outbound: id, Kind: journey.ReceiptDelivered})
		wantTypes(t, d, journey.TypeMessageDelivered)
		if !slices.Equal(d.DueDone, []journey.Due{{At: t0.Add(30 * time.Second), Kind: journey.DueOutbound, Ref: seqRef(sent.Seq)}}) {
			t.Errorf("due done %+v", d.DueDone)
		}
		// A late or repeated receipt records nothing.
		for _, kind := range []string{journey.ReceiptDelivered, journey.ReceiptFailed, journey.ReceiptAccepted} {
			if d := r.step(&journey.Receipt{Outbound: id, Kind: kind}); len(d.Events) != 0 || d.Reject != nil || len(d.DueDone) != 0 {
				t.Errorf("late %s: %+v", kind, d)
			}
		}
		// Its due, still in the store, is only discharged.
		r.at(30 * time.Second)
		if d := r.due(journey.Due{At: t0.Add(30 * time.Second), Kind: journey.DueOutbound, Ref: seqRef(sent.Seq)}); len(d.Outbounds) != 0 || len(d.DueAdd) != 0 || len(d.Events) != 0 {
			t.Errorf("due after delivered: %+v", d)
		}
	})
	t.Run("failed with its reason", func(t *testing.T) {
		r, sent := answered(t)
		id := journey.OutboundID("c-42", sent.Seq)
		d := r.step(&journey.Receipt{Outbound: id, Kind: journey.ReceiptFailed, Reason: "number unreachable"})
		wantTypes(t, d, journey.TypeMessageFailed)
		if data := dataOf(t, d.Events[0]); data["outbound"] != id || data["reason"] != "number unreachable" || d.Events[0].Channel != "sms" {
			t.Errorf("failed %+v %s", d.Events[0], d.Events[0].Data)
		}
		// A reason is recorded cut to ReasonMaxChars.
		r.at(time.Minute)
		d = r.botAnswer(r.msg("again"), good("answer"))
		long := strings.Repeat("é", journey.ReasonMaxChars+10)
		id = journey.OutboundID("c-42", eventOf(t, d, journey.TypeMessageSent).Seq)
		d = r.step(&journey.Receipt{Outbound: id, Kind: journey.ReceiptFailed, Reason: long})
		if reason := dataOf(t, eventOf(t, d, journey.TypeMessageFailed))["reason"]; reason != long[:2*journey.ReasonMaxChars] {
			t.Errorf("long reason recorded as %d bytes", len(fmt.Sprint(reason)))
		}
	})
	t.Run("unknown ids are refused", func(t *testing.T) {
		r, sent := answered(t)
		for _, id := range []string{"out-99-c-42", journey.OutboundID("c-7", sent.Seq), "nonsense", "out-0-c-42", ""} {
			d := r.step(&journey.Receipt{Outbound: id, Kind: journey.ReceiptDelivered})
			if code(d.Reject) != journey.CodeBadRequest || len(d.Events) != 0 {
				t.Errorf("receipt for %q: reject %v events %v", id, d.Reject, types(d.Events))
			}
		}
		d := r.step(&journey.Receipt{Outbound: journey.OutboundID("c-42", sent.Seq), Kind: "read"})
		if code(d.Reject) != journey.CodeBadRequest || len(d.Events) != 0 {
			t.Errorf("unknown receipt kind: reject %v events %v", d.Reject, types(d.Events))
		}
	})
}

func TestStepOutboundExpires(t *testing.T) {
	r, sent := answered(t)
	id := journey.OutboundID("c-42", sent.Seq)
	due := journey.Due{At: t0.Add(30 * time.Second), Kind: journey.DueOutbound, Ref: seqRef(sent.Seq)}
	// Redelivered until just before the expiry, then given up.
	r.at(journey.OutboundExpiryDefault - time.Second)
	d := r.due(due)
	if len(d.Outbounds) != 1 || len(d.DueAdd) != 1 {
		t.Fatalf("before expiry: %+v", d)
	}
	r.at(journey.OutboundExpiryDefault + 29*time.Second)
	d = r.due(d.DueAdd[0])
	wantTypes(t, d, journey.TypeMessageFailed)
	if data := dataOf(t, d.Events[0]); data["outbound"] != id || data["reason"] != journey.FailedExpired {
		t.Errorf("expired %s", d.Events[0].Data)
	}
	if len(d.Outbounds) != 0 || len(d.DueAdd) != 0 || len(r.c.Outbounds) != 0 {
		t.Errorf("after expiry: outbounds %+v due %+v pending %+v", d.Outbounds, d.DueAdd, r.c.Outbounds)
	}
	// A late delivered receipt for it records nothing.
	if d := r.step(&journey.Receipt{Outbound: id, Kind: journey.ReceiptDelivered}); len(d.Events) != 0 || d.Reject != nil {
		t.Errorf("late receipt: %+v", d)
	}
}

// pendingRun is a run holding n unconfirmed bot messages, one a minute.
func pendingRun(t *testing.T, n int) (*journeyRun, []journey.Event) {
	r := newRun(t, botPolicy())
	var sent []journey.Event
	for i := range n {
		r.at(time.Duration(i) * time.Minute)
		d := r.botAnswer(r.msg(fmt.Sprintf("question %d", i)), good(fmt.Sprintf("answer %d", i)))
		sent = append(sent, eventOf(t, d, journey.TypeMessageSent))
	}
	return r, sent
}

func TestStepOutboundOverflow(t *testing.T) {
	r, sent := pendingRun(t, journey.OutboundsPendingMax)
	if len(r.c.Outbounds) != journey.OutboundsPendingMax {
		t.Fatalf("%d pending", len(r.c.Outbounds))
	}
	r.at(2 * time.Hour)
	d := r.botAnswer(r.msg("one more"), good("answer"))
	wantTypes(t, d, journey.TypeAIKBSearched, journey.TypeMessageFailed, journey.TypeAIReplied, journey.TypeMessageSent)
	oldest := journey.OutboundID("c-42", sent[0].Seq)
	if data := dataOf(t, d.Events[1]); data["outbound"] != oldest || data["reason"] != journey.FailedOverflow {
		t.Errorf("overflow %s", d.Events[1].Data)
	}
	if !slices.Contains(d.DueDone, journey.Due{At: sent[0].RecordedAt.Add(30 * time.Second), Kind: journey.DueOutbound, Ref: seqRef(sent[0].Seq)}) {
		t.Errorf("the oldest's due is kept: %+v", d.DueDone)
	}
	if len(r.c.Outbounds) != journey.OutboundsPendingMax || r.c.Outbounds[0].Seq != sent[1].Seq {
		t.Errorf("pending %d from seq %d", len(r.c.Outbounds), r.c.Outbounds[0].Seq)
	}
	// The reply names the message that carries it.
	newSent := d.Events[3]
	if got := dataOf(t, d.Events[2])["outbound"]; got != journey.OutboundID("c-42", newSent.Seq) {
		t.Errorf("ai.replied outbound %v, message.sent is %s", got, journey.OutboundID("c-42", newSent.Seq))
	}
}

// TestStepOutboundAfterReload: a pending outbound's due still re-sends after
// a snapshot round trip or a rebuild from the events (NextAt unknown).
func TestStepOutboundAfterReload(t *testing.T) {
	for _, how := range []string{"snapshot", "rebuild"} {
		t.Run(how, func(t *testing.T) {
			r, sent := answered(t)
			first := journey.Due{At: t0.Add(30 * time.Second), Kind: journey.DueOutbound, Ref: seqRef(sent.Seq)}
			r.at(30 * time.Second)
			d := r.due(first) // rescheduled at 60s
			key := d.DueAdd[0]
			switch how {
			case "snapshot":
				c, err := journey.DecodeSnapshot(r.c.EncodeSnapshot())
				if err != nil {
					t.Fatal(err)
				}
				r.c = c
			case "rebuild":
				r.c = rebuild(t, "c-42", nil, r.all)
			}
			r.at(time.Minute)
			d = r.due(key)
			if len(d.Outbounds) != 1 || d.Outbounds[0].ID != journey.OutboundID("c-42", sent.Seq) || len(d.DueAdd) != 1 || !d.DueAdd[0].At.Equal(t0.Add(90*time.Second)) {
				t.Fatalf("after %s: %+v", how, d)
			}
			// The new key is known again: its repeat only discharges.
			if d := r.due(key); len(d.Outbounds) != 0 || len(d.DueAdd) != 0 {
				t.Errorf("repeat after %s re-sent: %+v", how, d)
			}
			// A receipt still confirms it.
			if d := r.step(&journey.Receipt{Outbound: journey.OutboundID("c-42", sent.Seq), Kind: journey.ReceiptDelivered}); len(d.Events) != 1 {
				t.Errorf("receipt after %s: %+v", how, d)
			}
		})
	}
}
