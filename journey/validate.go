package journey

import (
	"bytes"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// reservedPrefixes are the runtime's own event namespaces (PROTOCOL section 1).
var reservedPrefixes = []string{"journey.", "routing.", "agent.", "ai.", "proactive.", "workflow.", "profile.", "identity.", "customer."}

var reservedTypes = map[string]bool{"message.sent": true, "message.delivered": true, "message.failed": true}

// ValidateInbound checks a client's event against PROTOCOL section 1 and
// normalizes it in place: the type defaults to message.received when text is
// present, identity values are normalized, and the fields clients cannot set
// (seq, actor, recorded_at) are cleared. The size of the whole event is the
// gateway's to check on the raw bytes (EventMaxBytes).
func ValidateInbound(e *Event) *Rejection {
	e.Seq, e.Actor, e.RecordedAt = 0, "", time.Time{}
	if r := ValidateID("id", e.ID); r != nil {
		return r
	}
	if e.Customer == "" && len(e.Identity) == 0 {
		return reject(CodeBadRequest, "event %s names neither customer nor identity", e.ID)
	}
	if e.Customer != "" {
		if r := ValidateID("customer", e.Customer); r != nil {
			return r
		}
	}
	if len(e.Identity) > IdentitiesPerEvent {
		return reject(CodeBadRequest, "event has more than %d identities", IdentitiesPerEvent)
	}
	for k, v := range e.Identity {
		n, r := NormalizeIdentity(k, v)
		if r != nil {
			return r
		}
		e.Identity[k] = n
	}
	if e.Type == "" {
		if e.Text == "" {
			return reject(CodeBadRequest, "event %s has no type and no text", e.ID)
		}
		e.Type = "message.received"
	}
	if r := ValidateType(e.Type); r != nil {
		return r
	}
	if IsReservedType(e.Type) {
		return reject(CodeBadRequest, "event type %q is the runtime's own", e.Type)
	}
	if e.Channel != "" && !isWord(e.Channel, ChannelMaxChars) {
		return reject(CodeBadRequest, "channel %q is not a lowercase word", e.Channel)
	}
	if len(e.Data) > 0 {
		if len(e.Data) > DataMaxBytes {
			return reject(CodeTooLarge, "data is larger than %d bytes", DataMaxBytes)
		}
		d := bytes.TrimSpace(e.Data)
		if bytes.Equal(d, []byte("null")) {
			e.Data = nil
		} else if len(d) == 0 || d[0] != '{' {
			return reject(CodeBadRequest, "data must be an object")
		}
	}
	if !utf8.ValidString(e.Text) {
		return reject(CodeBadRequest, "text is not UTF-8")
	}
	return nil
}

// ValidateID checks an id: 1 to 128 printable characters.
func ValidateID(field, id string) *Rejection {
	if id == "" {
		return reject(CodeBadRequest, "%s is required", field)
	}
	if utf8.RuneCountInString(id) > IDMaxChars {
		return reject(CodeBadRequest, "%s is longer than %d characters", field, IDMaxChars)
	}
	if !isPrintable(id) {
		return reject(CodeBadRequest, "%s must be printable characters", field)
	}
	return nil
}

// ValidateType checks an event type name: ^[a-z0-9]+([._-][a-z0-9]+)*$, at
// most 128 characters.
func ValidateType(t string) *Rejection {
	if len(t) == 0 || len(t) > TypeMaxChars {
		return reject(CodeBadRequest, "event type must be 1 to %d characters", TypeMaxChars)
	}
	prevSep := true
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			prevSep = false
		case c == '.' || c == '_' || c == '-':
			if prevSep {
				return reject(CodeBadRequest, "event type %q is not of the form name.name", t)
			}
			prevSep = true
		default:
			return reject(CodeBadRequest, "event type %q is not of the form name.name", t)
		}
	}
	if prevSep {
		return reject(CodeBadRequest, "event type %q is not of the form name.name", t)
	}
	return nil
}

// IsReservedType reports whether a type is the runtime's own.
func IsReservedType(t string) bool {
	if reservedTypes[t] {
		return true
	}
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}

// isWord: a lowercase word ([a-z][a-z0-9_-]*) of at most max bytes.
func isWord(s string, max int) bool {
	if s == "" || len(s) > max || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func isPrintable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
