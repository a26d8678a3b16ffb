package journey

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Email threads (PROTOCOL section 9): the first message of a thread opens a
// case; a message whose In-Reply-To or References names a message of an open
// case continues it; the replies sent on email carry the case's thread.

// ChannelEmail is the channel of mail.
const ChannelEmail = "email"

// Limits of email threads.
const (
	// ThreadMax bounds the message ids a case keeps; past it the oldest
	// give way (a reply naming only those opens a new case).
	ThreadMax = 32
	// ThreadRefsMax bounds the references of one inbound message that are
	// matched against the cases.
	ThreadRefsMax = 64
)

// EmailData is the data of an inbound email's message.received (the
// fields threading reads; channels/email writes them). Message ids are
// without angle brackets.
type EmailData struct {
	Subject    string   `json:"subject,omitempty"`
	MessageID  string   `json:"message_id,omitempty"`
	InReplyTo  string   `json:"in_reply_to,omitempty"`
	References []string `json:"references,omitempty"`
}

// EmailThread is what an email outbound carries to be threaded: its case,
// the subject, the message it answers and the thread's ids, oldest first.
// An id without "@" is an outbound id of a reply sent earlier: the sender
// renders it as a Message-ID of its own domain.
type EmailThread struct {
	Case       string   `json:"case"`
	Subject    string   `json:"subject,omitempty"`
	InReplyTo  string   `json:"in_reply_to,omitempty"`
	References []string `json:"references,omitempty"`
}

// emailOf reads an inbound email's threading data; false when the event is
// not a customer's email message.
func emailOf(e *Event) (EmailData, bool) {
	if e.Actor != ActorCustomer || e.Type != TypeMessageReceived || e.Channel != ChannelEmail {
		return EmailData{}, false // before d: its address escapes, to the heap
	}
	var d EmailData
	if json.Unmarshal(e.Data, &d) != nil || d.MessageID == "" {
		return d, false
	}
	return d, true
}

// threadCase is the open case whose thread names one of refs, nil when none.
func (c *Customer) threadCase(refs []string) *Case {
	refs = refs[:min(len(refs), ThreadRefsMax)]
	for i := len(c.Cases) - 1; i >= 0; i-- {
		k := &c.Cases[i]
		if k.Status != "open" {
			continue
		}
		for _, ref := range refs {
			if k.hasThreadID(ref) {
				return k
			}
		}
	}
	return nil
}

// hasThreadID: ref is one of the case's ids, or a reply sent from it (an
// outbound id before the "@" of the Message-ID it was sent with).
func (k *Case) hasThreadID(ref string) bool {
	if ref == "" {
		return false
	}
	local, _, _ := strings.Cut(ref, "@")
	return slices.Contains(k.Thread, ref) || (local != ref && slices.Contains(k.Thread, local))
}

func (k *Case) addThreadID(id string, at time.Time) {
	if !slices.Contains(k.Thread, id) {
		if len(k.Thread) >= ThreadMax {
			k.Thread = k.Thread[1:]
		}
		k.Thread = append(k.Thread, id)
	}
	k.ThreadAt = at
}

// applyEmail keeps the cases' threads in step with the events: an inbound
// email joins the case it answers; a reply sent on email joins its case.
func (c *Customer) applyEmail(e *Event) {
	if d, ok := emailOf(e); ok {
		if k := c.threadCase(append([]string{d.InReplyTo}, d.References...)); k != nil {
			k.addThreadID(d.MessageID, e.RecordedAt)
		}
		return
	}
	if e.Type == TypeMessageSent && e.Channel == ChannelEmail {
		var d messageSent
		if json.Unmarshal(e.Data, &d) != nil || d.Thread == nil {
			return
		}
		for i := range c.Cases {
			if c.Cases[i].ID == d.Thread.Case {
				c.Cases[i].addThreadID(d.Outbound, e.RecordedAt)
			}
		}
	}
}

// emailCase opens a case for an inbound email that continues none.
func (s *stepper) emailCase(e Event) {
	d, ok := emailOf(&e)
	if !ok {
		return
	}
	for _, k := range s.c.Cases {
		if k.Status == "open" && slices.Contains(k.Thread, d.MessageID) {
			return // continued (applyEmail added it)
		}
	}
	subject := d.Subject
	if len(subject) > CaseSubjectMax {
		subject = strings.ToValidUTF8(subject[:CaseSubjectMax], "")
	}
	id := "case-" + strconv.FormatUint(s.c.Seq+1, 10) + "-" + s.c.ID
	s.record(TypeCaseOpened, ActorSystem, caseData{Case: id, Subject: subject, MessageID: d.MessageID}, "", "")
}

// emailThread is the thread a reply on email continues: the open case with
// the latest email, nil when none.
func (c *Customer) emailThread() *EmailThread {
	var k *Case
	for i := range c.Cases {
		if c.Cases[i].Status == "open" && len(c.Cases[i].Thread) > 0 && (k == nil || !c.Cases[i].ThreadAt.Before(k.ThreadAt)) {
			k = &c.Cases[i]
		}
	}
	if k == nil {
		return nil
	}
	t := &EmailThread{Case: k.ID, Subject: k.Subject, References: slices.Clone(k.Thread)}
	t.InReplyTo = k.Thread[len(k.Thread)-1]
	if t.Subject != "" && !strings.HasPrefix(strings.ToLower(t.Subject), "re:") {
		t.Subject = "Re: " + t.Subject
	}
	return t
}
