package journey_test

import (
	"strings"
	"testing"

	"github.com/throughline/throughline/journey"
)

func TestNormalizeIdentity(t *testing.T) {
	tests := []struct {
		kind, value string
		want        string // "" when refused with bad_request
	}{
		{"phone", "+1 (555) 123-0000", "+15551230000"},
		{"phone", "+15551230000", "+15551230000"},
		{"phone", " +44.20.7946.0958 ", "+442079460958"},
		{"phone", "0044 20 7946 0958", "+442079460958"},
		{"phone", "+1234567", "+1234567"},                 // 7 digits
		{"phone", "+123456789012345", "+123456789012345"}, // 15 digits
		{"whatsapp", "15551230000", "+15551230000"},       // wa_id
		{"whatsapp", "+1 555 123 0000", "+15551230000"},
		{"email", " Ana@Example.COM ", "ana@example.com"},
		{"web", "  sess-1 ", "sess-1"},
		{"external", "CRM-9", "CRM-9"},
		{"loyalty_card", "L-1", "L-1"},
		{"web", strings.Repeat("w", 256), strings.Repeat("w", 256)},

		{"phone", "555-CALL-NOW", ""},
		{"phone", "+1 555", ""},             // too short
		{"phone", "+123456", ""},            // 6 digits
		{"phone", "+1234567890123456", ""},  // 16 digits
		{"phone", "05551230000", ""},        // national form
		{"phone", "+0044 20 7946 0958", ""}, // no country code starts with 0
		{"phone", "+1+5551230000", ""},      // a second +
		{"phone", "+1/555/1230000", ""},     // odd separator
		{"phone", "", ""},
		{"whatsapp", "wa:15551230000", ""},
		{"email", "ana", ""},
		{"email", "@example.com", ""},
		{"email", "ana@", ""},
		{"email", "a na@example.com", ""},
		{"email", "   ", ""},
		{"web", "   ", ""},
		{"web", "s\t1", ""},
		{"web", strings.Repeat("w", 257), ""},
		{"Phone", "+15551230000", ""},
		{"EMAIL", "ana@example.com", ""},
		{"1phone", "x", ""},
		{"e mail", "x", ""},
		{"", "x", ""},
		{strings.Repeat("k", 33), "x", ""},
	}
	for _, tt := range tests {
		got, r := journey.NormalizeIdentity(tt.kind, tt.value)
		switch {
		case tt.want == "" && code(r) != journey.CodeBadRequest:
			t.Errorf("NormalizeIdentity(%q, %q) = %q, %v; want bad_request", tt.kind, tt.value, got, r)
		case tt.want != "" && (r != nil || got != tt.want):
			t.Errorf("NormalizeIdentity(%q, %q) = %q, %v; want %q", tt.kind, tt.value, got, r, tt.want)
		}
	}
}

// A phone number and the same number as a WhatsApp wa_id are one identity
// in the index.
func TestIndexKindJoinsPhoneAndWhatsApp(t *testing.T) {
	phone, _ := journey.NormalizeIdentity("phone", "+1 (555) 123-0000")
	wa, _ := journey.NormalizeIdentity("whatsapp", "15551230000")
	if journey.IndexKind("phone") != journey.IndexKind("whatsapp") || phone != wa {
		t.Errorf("phone %s/%s and whatsapp %s/%s index apart",
			journey.IndexKind("phone"), phone, journey.IndexKind("whatsapp"), wa)
	}
	kinds := []string{journey.IndexKind("phone"), journey.IndexKind("email"), journey.IndexKind("web"), journey.IndexKind("external")}
	seen := map[string]bool{}
	for _, k := range kinds {
		if seen[k] {
			t.Errorf("index kind %q shared by two different kinds: %v", k, kinds)
		}
		seen[k] = true
	}
	if journey.IndexKind("loyalty") != "loyalty" {
		t.Errorf("IndexKind(loyalty) = %q", journey.IndexKind("loyalty"))
	}
}

func TestOrderIdentities(t *testing.T) {
	ids := map[string]string{
		"zeta": "z", "web": "w", "apple": "a", "phone": "+15551230000", "crm": "c",
		"whatsapp": "+15551230001", "email": "ana@example.com", "external": "x-1",
	}
	want := "external=x-1 email=ana@example.com phone=+15551230000 whatsapp=+15551230001 web=w apple=a crm=c zeta=z"
	for range 20 { // map order is random; the result must not be
		var got []string
		for _, id := range journey.OrderIdentities(ids) {
			got = append(got, id.Kind+"="+id.Value)
		}
		if strings.Join(got, " ") != want {
			t.Fatalf("OrderIdentities = %v\nwant %s", got, want)
		}
	}
	if got := journey.OrderIdentities(map[string]string{"web": "w", "email": "e@x"}); got[0].Kind != "email" {
		t.Errorf("email does not come before web: %v", got)
	}
}
