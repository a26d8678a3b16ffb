package channels

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"

	"github.com/inbucket/html2text"
	"github.com/throughline/throughline/journey"
	"golang.org/x/net/html"
	"golang.org/x/text/encoding/htmlindex"
)

// Email in: one raw RFC 5322 message as inbound mail services post it
// (PROTOCOL 9). The standard library parses it (net/mail, mime/multipart,
// mime/quotedprintable, mime's RFC 2047 decoder); x/text decodes charsets
// other than UTF-8; inbucket/html2text renders an HTML-only mail as text.

// Limits of one inbound mail.
const (
	EmailPartsMax     = 64 // MIME parts walked
	EmailDepthMax     = 8  // multipart nesting
	EmailPartMaxBytes = 1 << 20
)

// ParseEmail maps a raw message to a message.received: id
// email:<Message-ID>, identity email From, channel email, text the
// text/plain part (else the HTML part as text) without the quoted earlier
// message, and data subject, message_id, in_reply_to, references
// (journey.EmailData) and from_name. A mail without Message-ID gets one from
// the SHA-256 of its bytes, so a retried post is still one message.
func ParseEmail(raw []byte) (journey.Event, error) {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return journey.Event{}, badf("email: %v", err)
	}
	dec := &mime.WordDecoder{CharsetReader: charsetReader}
	from, err := (&mail.AddressParser{WordDecoder: dec}).Parse(m.Header.Get("From"))
	if err != nil {
		return journey.Event{}, badf("email From: %v", err)
	}
	subject, err := dec.DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		subject = m.Header.Get("Subject")
	}
	d := journey.EmailData{
		Subject:    strings.ToValidUTF8(strings.TrimSpace(subject), "\uFFFD"),
		MessageID:  firstMsgID(m.Header.Get("Message-Id")),
		InReplyTo:  firstMsgID(m.Header.Get("In-Reply-To")),
		References: msgIDs(m.Header.Get("References"), journey.ThreadRefsMax),
	}
	if d.MessageID == "" {
		sum := sha256.Sum256(raw)
		d.MessageID = "sha256-" + hex.EncodeToString(sum[:16]) + "@throughline.invalid"
	}
	w := &partWalker{}
	if err := w.walk(textproto(m.Header), m.Body, 0); err != nil {
		return journey.Event{}, err
	}
	text := StripQuoted(w.plain)
	if w.plain == "" && w.html != "" {
		text = htmlText(w.html)
	}
	body := struct {
		journey.EmailData
		FromName string `json:"from_name,omitempty"`
	}{d, strings.ToValidUTF8(from.Name, "")}
	return journey.Event{
		ID: eventID("email:", d.MessageID), Identity: map[string]string{"email": from.Address},
		Type: journey.TypeMessageReceived, Channel: journey.ChannelEmail, Text: cutText(text), Data: data(body),
	}, nil
}

// headerGetter is what the walker reads of a part's header.
type headerGetter interface{ Get(string) string }

func textproto(h mail.Header) headerGetter { return h }

// partWalker finds the first text/plain and text/html parts that are not
// attachments.
type partWalker struct {
	plain, html string
	parts       int
}

func (w *partWalker) walk(h headerGetter, body io.Reader, depth int) error {
	if w.parts++; w.parts > EmailPartsMax || depth > EmailDepthMax {
		return nil
	}
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain"
	}
	mediaType, params, err := mime.ParseMediaType(ct)
	if err != nil {
		mediaType, params = "text/plain", map[string]string{}
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				if w.plain != "" || w.html != "" {
					return nil // a broken tail after what we need
				}
				return badf("email multipart: %v", err)
			}
			if err := w.walk(p.Header, p, depth+1); err != nil {
				return err
			}
		}
	}
	if disp, _, _ := mime.ParseMediaType(h.Get("Content-Disposition")); disp == "attachment" {
		return nil
	}
	if (mediaType != "text/plain" || w.plain != "") && (mediaType != "text/html" || w.html != "") {
		return nil
	}
	text, err := decodePart(h.Get("Content-Transfer-Encoding"), params["charset"], body)
	if err != nil {
		return err
	}
	if mediaType == "text/plain" {
		if strings.EqualFold(params["format"], "flowed") {
			text = unflow(text, strings.EqualFold(params["delsp"], "yes"))
		}
		w.plain = text
	} else {
		w.html = text
	}
	return nil
}

func decodePart(encoding, charset string, body io.Reader) (string, error) {
	r := io.LimitReader(body, EmailPartMaxBytes)
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, newlineStripper{r})
	}
	raw, err := io.ReadAll(r)
	if err != nil && len(raw) == 0 {
		return "", badf("email part: %v", err)
	}
	if cr, err := charsetReader(charset, bytes.NewReader(raw)); err == nil {
		if b, err := io.ReadAll(cr); err == nil {
			raw = b
		}
	}
	s := strings.ReplaceAll(string(raw), "\r\n", "\n")
	return strings.ToValidUTF8(s, "\uFFFD"), nil
}

// charsetReader decodes a charset x/text knows (UTF-8 and US-ASCII pass
// through).
func charsetReader(charset string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(strings.TrimSpace(charset)) {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		return r, nil
	}
	enc, err := htmlindex.Get(charset)
	if err != nil {
		return nil, fmt.Errorf("charset %q: %w", charset, err)
	}
	return enc.NewDecoder().Reader(r), nil
}

// newlineStripper drops CR and LF, which base64 bodies carry.
type newlineStripper struct{ r io.Reader }

func (n newlineStripper) Read(p []byte) (int, error) {
	for {
		k, err := n.r.Read(p)
		j := 0
		for _, b := range p[:k] {
			if b != '\r' && b != '\n' {
				p[j] = b
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

// unflow joins the soft line breaks of format=flowed (RFC 3676): a line
// ending in a space continues on the next; space-stuffing is removed.
func unflow(s string, delsp bool) string {
	var b strings.Builder
	for line := range strings.SplitSeq(s, "\n") {
		if line != "-- " {
			line = strings.TrimPrefix(line, " ")
		}
		if strings.HasSuffix(line, " ") && line != "-- " && !strings.HasPrefix(line, ">") {
			if delsp {
				line = line[:len(line)-1]
			}
			b.WriteString(line)
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// firstMsgID is the first <msg-id> of a header, without brackets.
func firstMsgID(h string) string {
	if ids := msgIDs(h, 1); len(ids) > 0 {
		return ids[0]
	}
	return ""
}

// msgIDs are the message ids of a header (In-Reply-To, References) without
// brackets, at most n; a header with no brackets is one id.
func msgIDs(h string, n int) []string {
	var ids []string
	rest := h
	for len(ids) < n {
		i := strings.IndexByte(rest, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '>')
		if j < 0 {
			break
		}
		if id := strings.TrimSpace(rest[i+1 : i+j]); id != "" && !strings.ContainsAny(id, " \t<") {
			ids = append(ids, id)
		}
		rest = rest[i+j+1:]
	}
	if len(ids) == 0 {
		if id := strings.TrimSpace(h); id != "" && !strings.ContainsAny(id, " \t<>") && n > 0 {
			ids = append(ids, id)
		}
	}
	return ids
}

// quoteHeads start the quoted earlier message in a reply.
var quoteHeads = []string{"-----Original Message-----", "________________________________", "-------- Original Message --------", "-------- Forwarded Message --------"}

// StripQuoted removes the quoted earlier message from a plain-text reply:
// from an attribution line ("On ... wrote:", two lines at most, and its
// German and French forms) or a separator of Outlook and Thunderbird on,
// quoted lines ("> ..."), and a signature after "-- ".
func StripQuoted(s string) string {
	lines := strings.Split(s, "\n")
	var kept []string
	for i := 0; i < len(lines); i++ {
		line := strings.TrimRight(lines[i], " \t\r")
		if line == "--" && i > 0 && strings.TrimRight(lines[i], "\r") == "-- " {
			break // a signature
		}
		if isAttribution(line) || (i+1 < len(lines) && isAttribution(line+" "+strings.TrimSpace(lines[i+1]))) {
			break
		}
		if isQuoteHead(line) {
			break
		}
		if strings.HasPrefix(line, ">") {
			continue
		}
		kept = append(kept, line)
	}
	return strings.TrimSpace(strings.Join(kept, "\n"))
}

func isAttribution(line string) bool {
	l := strings.TrimSpace(line)
	switch {
	case strings.HasPrefix(l, "On ") && strings.HasSuffix(l, "wrote:"):
		return true
	case strings.HasPrefix(l, "Am ") && strings.HasSuffix(l, ":") && strings.Contains(l, " schrieb"):
		return true
	case strings.HasPrefix(l, "Le ") && (strings.HasSuffix(l, "a écrit :") || strings.HasSuffix(l, "a écrit:")):
		return true
	}
	return false
}

func isQuoteHead(line string) bool {
	l := strings.TrimSpace(line)
	for _, h := range quoteHeads {
		if strings.HasPrefix(l, h) {
			return true
		}
	}
	return false
}

// htmlText renders an HTML body as text without its quoted earlier message
// (blockquotes and the quote containers of Gmail, Outlook and Yahoo).
func htmlText(src string) string {
	doc, err := html.Parse(strings.NewReader(src))
	if err != nil {
		return ""
	}
	pruneQuotes(doc)
	text, err := html2text.FromHTMLNode(doc, html2text.Options{TextOnly: true})
	if err != nil {
		return ""
	}
	return StripQuoted(text)
}

func pruneQuotes(n *html.Node) {
	for c := n.FirstChild; c != nil; {
		next := c.NextSibling
		if c.Type == html.ElementNode && isQuoteNode(c) {
			n.RemoveChild(c)
		} else {
			pruneQuotes(c)
		}
		c = next
	}
}

func isQuoteNode(n *html.Node) bool {
	if n.Data == "blockquote" {
		return true
	}
	for _, a := range n.Attr {
		switch {
		case a.Key == "class" && (strings.Contains(a.Val, "gmail_quote") || strings.Contains(a.Val, "yahoo_quoted") || strings.Contains(a.Val, "moz-cite-prefix")):
			return true
		case a.Key == "id" && (a.Val == "divRplyFwdMsg" || a.Val == "appendonsend"):
			return true
		}
	}
	return false
}
