package gateway

import (
	"encoding/json"
	"testing"

	"github.com/throughline/throughline/journey"
)

// outboundFrame is what appendOutboundFrame writes, for encoding/json.
type outboundFrame struct {
	Type string `json:"type"`
	journey.Outbound
}

// The hand-written outbound frame is what encoding/json writes.
func TestOutboundFrameMatchesEncodingJSON(t *testing.T) {
	for _, o := range []journey.Outbound{
		{},
		{ID: "o-1", Customer: "c-1", Seq: 7, Channel: "sms", To: map[string]string{"phone": "+15550001"}, Text: "We know <about> it & more\u2028", Actor: "broadcast:bc-1", Data: json.RawMessage(`{"broadcast":"bc-1","callback_offer":true}`)},
		{ID: "o-2", Customer: "c\"2", Seq: 1 << 62, Channel: "email", To: map[string]string{"email": "a@b", "phone": "+1"}, Text: "bad\xff", Data: json.RawMessage(` { "thread" : ["<m1>"] } `)},
	} {
		want, err := json.Marshal(outboundFrame{Type: "outbound", Outbound: o})
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendOutboundFrame(nil, &o)
		if err != nil || string(got) != string(want) {
			t.Errorf("appendOutboundFrame = %s, %v\nencoding/json      %s", got, err, want)
		}
	}
}

// outboundFrameSize covers a frame none of whose strings needs escaping, so
// its array is allocated once.
func TestOutboundFrameSize(t *testing.T) {
	for _, o := range []journey.Outbound{
		{},
		{ID: "c-1:o:18446744073709551615", Customer: "c-1", Seq: 1<<64 - 1, Channel: "whatsapp", To: map[string]string{"whatsapp": "+15550001", "phone": "+15550002"}, Text: "Payments are down", Actor: "broadcast:bc-1", Data: json.RawMessage(`{"broadcast":"bc-1"}`)},
	} {
		got, err := appendOutboundFrame(nil, &o)
		if err != nil {
			t.Fatal(err)
		}
		if n := outboundFrameSize(&o); n < len(got) {
			t.Errorf("outboundFrameSize = %d, the frame is %d bytes: %s", n, len(got), got)
		}
	}
}
