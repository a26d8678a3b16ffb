package channels

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/throughline/throughline/journey"
)

// Web chat: signed, expiring visitor tokens and the visitor's frames
// (PROTOCOL 9).

// ChannelWeb is web chat's channel.
const ChannelWeb = "web"

// Limits of web chat.
const (
	VisitorTokenMaxBytes = 4096
	WebchatTextMaxBytes  = 4096 // one message a visitor types
)

// ErrVisitorToken is every refusal of a visitor token.
var ErrVisitorToken = errors.New("channels: invalid visitor token")

// Visitor is what a visitor token says: who the visitor is (the site's id,
// and identities the site vouches for) and until when.
type Visitor struct {
	ID       string            `json:"v"`
	Identity map[string]string `json:"i,omitempty"`
	Expires  int64             `json:"e"` // unix seconds
}

// SignVisitor is a visitor token: base64url(JSON) "." base64url(HMAC-SHA256
// of the first part, keyed by secret).
func SignVisitor(secret []byte, v Visitor) string {
	raw, err := json.Marshal(v)
	if err != nil {
		panic("channels: visitor: " + err.Error())
	}
	body := base64.RawURLEncoding.EncodeToString(raw)
	return body + "." + base64.RawURLEncoding.EncodeToString(visitorMAC(secret, body))
}

func visitorMAC(secret []byte, body string) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(body))
	return mac.Sum(nil)
}

// VerifyVisitor checks a token's signature (constant time) and expiry at
// now.
func VerifyVisitor(secret []byte, token string, now time.Time) (Visitor, error) {
	if len(secret) == 0 || len(token) > VisitorTokenMaxBytes {
		return Visitor{}, ErrVisitorToken
	}
	body, sig, ok := strings.Cut(token, ".")
	if !ok {
		return Visitor{}, ErrVisitorToken
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, visitorMAC(secret, body)) {
		return Visitor{}, ErrVisitorToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return Visitor{}, ErrVisitorToken
	}
	var v Visitor
	if json.Unmarshal(raw, &v) != nil || v.ID == "" {
		return Visitor{}, ErrVisitorToken
	}
	if now.Unix() >= v.Expires {
		return Visitor{}, errors.Join(ErrVisitorToken, errors.New("expired"))
	}
	return v, nil
}

// VisitorIdentity is the identity of a visitor's events: web the visitor id,
// with the identities the token carries.
func VisitorIdentity(v Visitor) map[string]string {
	id := make(map[string]string, len(v.Identity)+1)
	for k, val := range v.Identity {
		id[k] = val
	}
	id["web"] = v.ID
	return id
}

// WebchatFrame is what a visitor's browser sends.
type WebchatFrame struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Text string `json:"text"`
}

// DecodeWebchatFrame parses a visitor's frame; only "message" frames with
// an id and a text are taken.
func DecodeWebchatFrame(raw []byte) (WebchatFrame, error) {
	var f WebchatFrame
	if err := json.Unmarshal(raw, &f); err != nil {
		return f, badf("webchat frame: %v", err)
	}
	switch {
	case f.Type != "message":
		return f, badf("webchat frame type %q", f.Type)
	case f.ID == "" || len(f.ID) > 64:
		return f, badf("webchat message id must be 1 to 64 characters")
	case strings.TrimSpace(f.Text) == "" || len(f.Text) > WebchatTextMaxBytes:
		return f, badf("webchat message text must be 1 to %d bytes", WebchatTextMaxBytes)
	}
	return f, nil
}

// WebchatEvent is a visitor's message as a message.received on web: id
// wc:<visitor>:<message id>.
func WebchatEvent(v Visitor, f WebchatFrame) journey.Event {
	return journey.Event{
		ID: eventID("wc:", v.ID+":"+f.ID), Identity: VisitorIdentity(v),
		Type: journey.TypeMessageReceived, Channel: ChannelWeb, Text: cutText(f.Text),
	}
}
