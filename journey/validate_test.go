package journey_test

import (
	"strings"
	"testing"

	"github.com/throughline/throughline/journey"
)

const bad, tooLarge = journey.CodeBadRequest, journey.CodeTooLarge

// dataOfSize is a JSON object of exactly n bytes.
func dataOfSize(n int) []byte {
	return []byte(`{"k":"` + strings.Repeat("x", n-8) + `"}`)
}

func TestValidateInbound(t *testing.T) {
	tests := []struct {
		name string
		edit func(e *journey.Event)
		want journey.Code // "" when accepted
	}{
		{"minimal", func(e *journey.Event) {}, ""},
		{"id missing", func(e *journey.Event) { e.ID = "" }, bad},
		{"id 128 ascii", func(e *journey.Event) { e.ID = strings.Repeat("a", 128) }, ""},
		{"id 129 ascii", func(e *journey.Event) { e.ID = strings.Repeat("a", 129) }, bad},
		{"id 128 é (256 bytes)", func(e *journey.Event) { e.ID = strings.Repeat("é", 128) }, ""},
		{"id 129 é", func(e *journey.Event) { e.ID = strings.Repeat("é", 129) }, bad},
		{"id with newline", func(e *journey.Event) { e.ID = "gw\n1" }, bad},
		{"id with NUL", func(e *journey.Event) { e.ID = "gw\x001" }, bad},
		{"id not UTF-8", func(e *journey.Event) { e.ID = "gw\xff" }, bad},
		{"identity without customer", func(e *journey.Event) {
			e.Customer, e.Identity = "", map[string]string{"phone": "+15551230000"}
		}, ""},
		{"neither customer nor identity", func(e *journey.Event) { e.Customer = "" }, bad},
		{"empty identity map only", func(e *journey.Event) { e.Customer, e.Identity = "", map[string]string{} }, bad},
		{"customer 129 chars", func(e *journey.Event) { e.Customer = strings.Repeat("c", 129) }, bad},
		{"customer not printable", func(e *journey.Event) { e.Customer = "c\t42" }, bad},
		{"bad identity value", func(e *journey.Event) { e.Identity = map[string]string{"phone": "call me"} }, bad},
		{"bad identity kind", func(e *journey.Event) { e.Identity = map[string]string{"Phone": "+15551230000"} }, bad},
		{"17 identities", func(e *journey.Event) {
			e.Identity = map[string]string{}
			for i := range 17 {
				e.Identity["k"+string(rune('a'+i))] = "v"
			}
		}, bad},
		{"no type, no text", func(e *journey.Event) { e.Type = "" }, bad},
		{"custom type", func(e *journey.Event) { e.Type = "cart.abandoned" }, ""},
		{"type with _ and -", func(e *journey.Event) { e.Type = "order_2.line-item.added" }, ""},
		{"type single word", func(e *journey.Event) { e.Type = "ping" }, ""},
		{"type 128 chars", func(e *journey.Event) { e.Type = strings.Repeat("a", 128) }, ""},
		{"type 129 chars", func(e *journey.Event) { e.Type = strings.Repeat("a", 129) }, bad},
		{"type uppercase", func(e *journey.Event) { e.Type = "Payment.failed" }, bad},
		{"type double dot", func(e *journey.Event) { e.Type = "payment..failed" }, bad},
		{"type leading dot", func(e *journey.Event) { e.Type = ".payment" }, bad},
		{"type trailing dash", func(e *journey.Event) { e.Type = "payment-" }, bad},
		{"type with space", func(e *journey.Event) { e.Type = "payment failed" }, bad},
		{"type with slash", func(e *journey.Event) { e.Type = "payment/failed" }, bad},
		{"type non-ASCII", func(e *journey.Event) { e.Type = "paiement.échoué" }, bad},
		{"channel sms", func(e *journey.Event) { e.Channel = "sms" }, ""},
		{"channel other word", func(e *journey.Event) { e.Channel = "line_app-2" }, ""},
		{"channel uppercase", func(e *journey.Event) { e.Channel = "SMS" }, bad},
		{"channel with space", func(e *journey.Event) { e.Channel = "web chat" }, bad},
		{"channel starting with digit", func(e *journey.Event) { e.Channel = "2way" }, bad},
		{"channel 33 chars", func(e *journey.Event) { e.Channel = strings.Repeat("c", 33) }, bad},
		{"data object", func(e *journey.Event) { e.Data = []byte(`{"amount":120.5}`) }, ""},
		{"data object after spaces", func(e *journey.Event) { e.Data = []byte(` {"amount":1}`) }, ""},
		{"data array", func(e *journey.Event) { e.Data = []byte(`[1,2]`) }, bad},
		{"data string", func(e *journey.Event) { e.Data = []byte(`"x"`) }, bad},
		{"data number", func(e *journey.Event) { e.Data = []byte(`12`) }, bad},
		{"data 16 KiB", func(e *journey.Event) { e.Data = dataOfSize(journey.DataMaxBytes) }, ""},
		{"data 16 KiB + 1", func(e *journey.Event) { e.Data = dataOfSize(journey.DataMaxBytes + 1) }, tooLarge},
		{"text not UTF-8", func(e *journey.Event) { e.Text = "caf\xe9" }, bad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := journey.Event{ID: "gw-7f3a-000123", Customer: "c-42", Type: "payment.failed"}
			tt.edit(&e)
			if got := code(journey.ValidateInbound(&e)); got != tt.want {
				t.Fatalf("ValidateInbound = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestValidateInboundReservedTypes(t *testing.T) {
	refused := []string{"message.sent", "message.delivered", "message.failed", "profile.updated", "identity.linked"}
	for _, p := range []string{"journey.", "routing.", "agent.", "ai.", "proactive.", "workflow.", "profile.", "identity.", "customer."} {
		refused = append(refused, p+"anything")
	}
	accepted := []string{
		"payment.failed", "cart.abandoned", "page.viewed", "message.received", "message.read",
		"air.quality", "agents", "journey", "profiles.merged", "customers-imported",
	}
	for _, typ := range refused {
		e := journey.Event{ID: "e-1", Customer: "c-42", Type: typ}
		if got := code(journey.ValidateInbound(&e)); got != bad {
			t.Errorf("type %q: got %q, want %q", typ, got, bad)
		}
	}
	for _, typ := range accepted {
		e := journey.Event{ID: "e-1", Customer: "c-42", Type: typ}
		if r := journey.ValidateInbound(&e); r != nil {
			t.Errorf("type %q refused: %v", typ, r)
		}
	}
}

func TestValidateInboundNormalizes(t *testing.T) {
	e := journey.Event{
		ID: "e-1", Identity: map[string]string{"email": " Ana@Example.COM ", "whatsapp": "15551230000", "web": " s-1 "},
		Text: "my card payment failed again", Data: []byte(" null "),
		Seq: 99, Actor: "agent:alice", RecordedAt: t0,
	}
	if r := journey.ValidateInbound(&e); r != nil {
		t.Fatal(r)
	}
	if e.Type != "message.received" {
		t.Errorf("type = %q, want message.received by default when text is present", e.Type)
	}
	if e.Data != nil {
		t.Errorf("null data kept: %q", e.Data)
	}
	if e.Seq != 0 || e.Actor != "" || !e.RecordedAt.IsZero() {
		t.Errorf("client-set fields kept: seq %d actor %q recorded_at %v", e.Seq, e.Actor, e.RecordedAt)
	}
	want := map[string]string{"email": "ana@example.com", "whatsapp": "+15551230000", "web": "s-1"}
	if mustJSON(t, e.Identity) != mustJSON(t, want) {
		t.Errorf("identity = %v, want %v", e.Identity, want)
	}
}
