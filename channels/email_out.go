package channels

import (
	"bytes"
	"encoding/json"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"

	"github.com/throughline/throughline/journey"
)

// Email out: an outbound rendered as an RFC 5322 message, threaded into its
// case (In-Reply-To and References) with a Message-ID derived from the
// outbound id, so a redelivered outbound is the same message to the
// receiver.

// EmailSubjectDefault is the subject of a message that answers no thread.
const EmailSubjectDefault = "Your message"

// OutgoingEmail is an outbound ready for SMTP.
type OutgoingEmail struct {
	From      string // envelope sender (the address of from)
	To        string // envelope recipient
	MessageID string // without brackets
	Message   []byte // the whole message, CRLF line ends
}

// ComposeEmail renders an email outbound from from (an RFC 5322 address,
// "Support <support@example.com>" or a bare address) at now.
func ComposeEmail(from string, o journey.Outbound, now time.Time) (OutgoingEmail, error) {
	sender, err := mail.ParseAddress(from)
	if err != nil {
		return OutgoingEmail{}, badf("email from %q: %v", from, err)
	}
	to := o.To["email"]
	rcpt, err := mail.ParseAddress(to)
	if to == "" || err != nil {
		return OutgoingEmail{}, badf("outbound %s has no email address", o.ID)
	}
	_, domain, _ := strings.Cut(sender.Address, "@")
	var d struct {
		Thread *journey.EmailThread `json:"thread"`
	}
	_ = json.Unmarshal(o.Data, &d)
	th := d.Thread
	if th == nil {
		th = &journey.EmailThread{}
	}
	msgID := o.ID + "@" + domain
	subject := th.Subject
	if subject == "" {
		subject = EmailSubjectDefault
	}
	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("From", sender.String())
	header("To", rcpt.String())
	header("Subject", mime.QEncoding.Encode("utf-8", subject))
	header("Date", now.UTC().Format(time.RFC1123Z))
	header("Message-ID", "<"+msgID+">")
	if th.InReplyTo != "" {
		header("In-Reply-To", "<"+threadID(th.InReplyTo, domain)+">")
	}
	if len(th.References) > 0 {
		refs := make([]string, len(th.References))
		for i, r := range th.References {
			refs[i] = "<" + threadID(r, domain) + ">"
		}
		header("References", strings.Join(refs, "\r\n "))
	}
	if o.Actor == journey.ActorAI {
		header("Auto-Submitted", "auto-replied")
	}
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(strings.ReplaceAll(strings.ReplaceAll(o.Text, "\r\n", "\n"), "\n", "\r\n")))
	_ = qp.Close()
	b.WriteString("\r\n")
	return OutgoingEmail{From: sender.Address, To: rcpt.Address, MessageID: msgID, Message: b.Bytes()}, nil
}

// threadID renders a thread id as a Message-ID: an outbound id (no "@") at
// the sender's domain.
func threadID(id, domain string) string {
	if strings.Contains(id, "@") {
		return id
	}
	return id + "@" + domain
}
