package journey

import (
	"encoding/json"
	"testing"
	"time"
)

// The data that writes its own JSON writes what encoding/json writes.
func TestDataJSONMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 12, 4, 15, 4, 5, 123456789, time.FixedZone("", -5*3600))
	var values []any
	for _, to := range []address{nil, {}, {"phone": "+1<555>"}, {"phone": "+1", "email": "a&b"}} {
		values = append(values,
			proactiveData{},
			proactiveData{Rule: "r\"1", Offer: "gold", Channel: "sms", To: to, Reason: "quiet_hours", Outbound: "o-1", Held: 9,
				Release: at, Expires: at.UTC(), Broadcast: "bc-1", CallbackOffer: true},
			proactiveData{Channel: "email", To: to, Expires: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
			messageSent{},
			messageSent{Outbound: "o-2", Conversation: "cv-1", To: to, Proactive: true, Redacted: true, Ref: "desk-\u2028"},
		)
	}
	for _, v := range values {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := v.(jsonAppender).appendJSON(nil)
		if !ok || string(got) != string(want) {
			t.Errorf("%T appendJSON = %s (%v)\nencoding/json = %s", v, got, ok, want)
		}
	}
	// What it cannot write, encoding/json does.
	for _, v := range []any{proactiveData{Release: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, messageSent{Thread: &EmailThread{}},
		proactiveData{Expires: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 25*3600))}} {
		if _, ok := v.(jsonAppender).appendJSON(nil); ok {
			t.Errorf("%+v: written by hand", v)
		}
	}
}
