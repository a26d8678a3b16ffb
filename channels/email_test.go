package channels

import (
	"encoding/json"
	"io"
	"mime"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

// A reply from Gmail: multipart/alternative, quoted-printable, non-ASCII
// headers (RFC 2047 in Latin-1 and UTF-8), an attribution over two lines and
// the quoted earlier message.
const emailReplySample = "Return-Path: <andre@example.org>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Date: Sun, 22 Nov 2026 10:05:00 +0100\r\n" +
	"References: <CAF=first@mail.gmail.com> <out-12-c-9@support.example.com>\r\n" +
	"In-Reply-To: <out-12-c-9@support.example.com>\r\n" +
	"Message-ID: <CAF=second+q@mail.gmail.com>\r\n" +
	"Subject: =?UTF-8?B?UmU6IFLDvGNrZXJzdGF0dHVuZyBmw7xyIEJlc3RlbGx1bmc=?=\r\n" +
	"From: =?ISO-8859-1?Q?Andr=E9_M=FCller?= <Andre@Example.org>\r\n" +
	"To: Support <support@example.com>\r\n" +
	"Content-Type: multipart/alternative; boundary=\"000000000000abcdef\"\r\n" +
	"\r\n" +
	"--000000000000abcdef\r\n" +
	"Content-Type: text/plain; charset=\"UTF-8\"\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"Still no refund =E2=80=94 it has been a week. Can you check order 4411?\r\n" +
	"\r\n" +
	"On Sat, Nov 21, 2026 at 9:00 AM Support <support@example.com>\r\n" +
	"wrote:\r\n" +
	"\r\n" +
	"> Refunds take 3 days.\r\n" +
	"> Your order is on its way back to us.\r\n" +
	"\r\n" +
	"--000000000000abcdef\r\n" +
	"Content-Type: text/html; charset=\"UTF-8\"\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"<div dir=3D\"ltr\">Still no refund =E2=80=94 it has been a week.</div><div class=3D\"gmail_quote\">On Sat wrote:<blockquote>Refunds take 3 days.</blockquote></div>\r\n" +
	"--000000000000abcdef--\r\n"

func TestParseEmailReply(t *testing.T) {
	e, err := ParseEmail([]byte(emailReplySample))
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != "email:CAF=second+q@mail.gmail.com" || e.Channel != "email" || e.Type != journey.TypeMessageReceived {
		t.Errorf("event %+v", e)
	}
	if want := "Still no refund — it has been a week. Can you check order 4411?"; e.Text != want {
		t.Errorf("text %q, want %q", e.Text, want)
	}
	if rej := journey.ValidateInbound(&e); rej != nil || e.Identity["email"] != "andre@example.org" {
		t.Errorf("validate %v identity %v", rej, e.Identity)
	}
	var d struct {
		journey.EmailData
		FromName string `json:"from_name"`
	}
	if err := json.Unmarshal(e.Data, &d); err != nil {
		t.Fatal(err)
	}
	if d.Subject != "Re: Rückerstattung für Bestellung" || d.FromName != "André Müller" || d.MessageID != "CAF=second+q@mail.gmail.com" ||
		d.InReplyTo != "out-12-c-9@support.example.com" || len(d.References) != 2 || d.References[0] != "CAF=first@mail.gmail.com" {
		t.Errorf("data %+v", d)
	}
}

// An HTML-only mail in Latin-1 with a Gmail quote: rendered as text, the
// quote left out.
func TestParseEmailHTMLOnly(t *testing.T) {
	raw := "From: ana@example.com\r\nSubject: Card\r\nMessage-ID: <h1@x>\r\n" +
		"Content-Type: text/html; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"<html><body><p>My card was declined at the caf=E9.</p><p>Please <b>help</b>.</p>" +
		"<div class=3D\"gmail_quote\"><blockquote>old text</blockquote></div></body></html>\r\n"
	e, err := ParseEmail([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.Text, "My card was declined at the café.") || !strings.Contains(e.Text, "Please help.") || strings.Contains(e.Text, "old text") || strings.Contains(e.Text, "<") {
		t.Errorf("text %q", e.Text)
	}
}

func TestParseEmailBase64AndFlowedAndNoID(t *testing.T) {
	raw := "From: Bob <bob@example.com>\r\nSubject: hi\r\n" +
		"Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\n" +
		"Content-Type: text/plain; charset=utf-8; format=flowed\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		"VGhpcyBpcyBhIGxvbmcgbGluZSB0aGF0IAp3YXMgd3JhcHBlZC4KCi0tIApCb2IK\r\n" +
		"--b1\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\nattached\r\n--b1--\r\n"
	e, err := ParseEmail([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if e.Text != "This is a long line that was wrapped." {
		t.Errorf("text %q", e.Text)
	}
	again, _ := ParseEmail([]byte(raw))
	if !strings.HasPrefix(e.ID, "email:sha256-") || again.ID != e.ID {
		t.Errorf("ids %q %q: a mail without Message-ID must get one from its bytes", e.ID, again.ID)
	}
	if _, err := ParseEmail([]byte("Subject: no from\r\n\r\nx")); err == nil {
		t.Error("a mail without From was taken")
	}
}

func TestStripQuoted(t *testing.T) {
	for in, want := range map[string]string{
		"Thanks!\n\n-----Original Message-----\nFrom: x\nold":   "Thanks!",
		"Ja.\n\nAm 21.11.2026 um 09:00 schrieb Support:\n> alt": "Ja.",
		"ok\n> quoted\nmore":                                         "ok\nmore",
		"see you\n-- \nBob\nCEO":                                     "see you",
		"Merci\nLe 21 nov. 2026, Support a écrit :\n> x":             "Merci",
		"Sure\n________________________________\nFrom: Support\nold": "Sure",
	} {
		if got := StripQuoted(in); got != want {
			t.Errorf("StripQuoted(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestComposeEmail(t *testing.T) {
	th := journey.EmailThread{Case: "case-2-c-9", Subject: "Re: Rückerstattung", InReplyTo: "CAF=second@mail.gmail.com",
		References: []string{"CAF=first@mail.gmail.com", "out-12-c-9", "CAF=second@mail.gmail.com"}}
	raw, _ := json.Marshal(map[string]any{"thread": th})
	o := journey.Outbound{ID: "out-15-c-9", Channel: "email", To: map[string]string{"email": "andre@example.org"},
		Text: "Your refund was sent today — 120.50 EUR.\nRegards", Actor: journey.ActorAI, Data: raw}
	out, err := ComposeEmail("Support <support@example.com>", o, time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if out.From != "support@example.com" || out.To != "andre@example.org" || out.MessageID != "out-15-c-9@example.com" {
		t.Errorf("%+v", out)
	}
	m, err := mail.ReadMessage(strings.NewReader(string(out.Message)))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if subject != "Re: Rückerstattung" || m.Header.Get("Message-Id") != "<out-15-c-9@example.com>" ||
		m.Header.Get("In-Reply-To") != "<CAF=second@mail.gmail.com>" ||
		m.Header.Get("References") != "<CAF=first@mail.gmail.com> <out-12-c-9@example.com> <CAF=second@mail.gmail.com>" ||
		m.Header.Get("Auto-Submitted") != "auto-replied" {
		t.Errorf("headers %v (subject %q)", m.Header, subject)
	}
	// Parsed back as an inbound mail, the body is the text.
	back, err := ParseEmail(out.Message)
	if err != nil || back.Text != "Your refund was sent today — 120.50 EUR.\nRegards" {
		body, _ := io.ReadAll(m.Body)
		t.Errorf("round trip %q %v\n%s", back.Text, err, body)
	}
}

func FuzzParseEmail(f *testing.F) {
	f.Add([]byte(emailReplySample))
	f.Add([]byte("From: a@b\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\nhi\r\n--x--"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := ParseEmail(raw)
		if err != nil {
			return
		}
		if journey.ValidateID("id", e.ID) != nil || len(e.Text) > TextMaxBytes || !json.Valid(e.Data) {
			t.Fatalf("bad event %+v", e)
		}
	})
}
