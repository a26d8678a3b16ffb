package journey

import (
	"sort"
	"strings"
)

// IdentityRef is one identity: its kind as the client named it (phone,
// whatsapp, email, ...) and its normalized value.
type IdentityRef struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

// IndexKind is the kind under which an identity is indexed: phone and
// whatsapp numbers are one person's number, so both index as "phone" (a
// kind whose values are always normalized, whoever sends it).
func IndexKind(kind string) string {
	if kind == "whatsapp" {
		return "phone"
	}
	return kind
}

// identityRank orders identities for resolution (PROTOCOL section 1):
// external, email, phone, whatsapp, web, then the rest alphabetically.
var identityRank = map[string]int{"external": 0, "email": 1, "phone": 2, "whatsapp": 3, "web": 4}

// OrderIdentities returns the identities of an event in resolution order.
// The values must already be normalized (ValidateInbound does it).
func OrderIdentities(ids map[string]string) []IdentityRef {
	out := make([]IdentityRef, 0, len(ids))
	for k, v := range ids {
		out = append(out, IdentityRef{Kind: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool {
		ri, iok := identityRank[out[i].Kind]
		rj, jok := identityRank[out[j].Kind]
		switch {
		case iok && jok:
			return ri < rj
		case iok != jok:
			return iok
		default:
			return out[i].Kind < out[j].Kind
		}
	})
	return out
}

// NormalizeIdentity validates an identity kind and returns its normalized
// value: phone and whatsapp numbers in E.164 ("+" and digits; a WhatsApp
// wa_id without "+" is the same number), emails trimmed and lowercased,
// anything else trimmed.
func NormalizeIdentity(kind, value string) (string, *Rejection) {
	if !isWord(kind, 32) {
		return "", reject(CodeBadRequest, "identity kind %q is not a lowercase word", kind)
	}
	var v string
	switch kind {
	case "phone", "whatsapp":
		n, ok := normalizePhone(value)
		if !ok {
			return "", reject(CodeBadRequest, "identity %s is not a phone number in international form", kind)
		}
		v = n
	case "email":
		v = strings.ToLower(strings.TrimSpace(value))
		at := strings.IndexByte(v, '@')
		if at <= 0 || at == len(v)-1 || strings.ContainsAny(v, " \t\r\n") {
			return "", reject(CodeBadRequest, "identity email is not an email address")
		}
	default:
		v = strings.TrimSpace(value)
		if !isPrintable(v) {
			return "", reject(CodeBadRequest, "identity %s must be printable characters", kind)
		}
	}
	if v == "" {
		return "", reject(CodeBadRequest, "identity %s is empty", kind)
	}
	if len(v) > IdentityValueMax {
		return "", reject(CodeBadRequest, "identity %s is longer than %d bytes", kind, IdentityValueMax)
	}
	return v, nil
}

// normalizePhone returns E.164: "+" then 7 to 15 digits. Separators (space,
// dash, dot, parentheses) are dropped; a leading "00" is the international
// prefix; a number without "+" is taken as already carrying its country code
// (WhatsApp's wa_id is written that way).
func normalizePhone(s string) (string, bool) {
	s = strings.TrimSpace(s)
	var b strings.Builder
	b.Grow(16)
	b.WriteByte('+')
	digits := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			b.WriteByte(c)
			digits++
		case c == '+' && i == 0:
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return "", false
		}
	}
	out := b.String()
	if !strings.HasPrefix(s, "+") && strings.HasPrefix(out, "+00") {
		out = "+" + out[3:]
		digits -= 2
	}
	if digits < 7 || digits > 15 || out[1] == '0' {
		return "", false
	}
	return out, true
}
