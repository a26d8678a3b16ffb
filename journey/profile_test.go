package journey_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/throughline/throughline/journey"
)

func TestDecideProfilePatchMerges(t *testing.T) {
	c := journey.NewCustomer("c-42")
	steps := []struct{ patch, want string }{
		{`{"tier":"gold","consent":{"sms":true}}`, `{"consent":{"sms":true},"tier":"gold"}`},
		{`{"tier":"vip","consent":{"email":false}}`, `{"consent":{"email":false,"sms":true},"tier":"vip"}`},
		{`{"consent":{"sms":null},"tier":null}`, `{"consent":{"email":false}}`},
		{`{"timezone":"Europe/Berlin","tags":["a"]}`, `{"consent":{"email":false},"tags":["a"],"timezone":"Europe/Berlin"}`},
		{`{"consent":"none","missing":null}`, `{"consent":"none","tags":["a"],"timezone":"Europe/Berlin"}`},
		{`{}`, `{"consent":"none","tags":["a"],"timezone":"Europe/Berlin"}`},
	}
	for i, s := range steps {
		id := fmt.Sprintf("p-%d", i)
		d := step(t, c, &journey.ProfilePatch{ID: id, Patch: []byte(s.patch)}, t0)
		seq := uint64(i + 1)
		if d.Reject != nil || d.Ack == nil || *d.Ack != (journey.Ack{ID: id, Customer: "c-42", Seq: seq}) {
			t.Fatalf("patch %s: %+v", s.patch, d)
		}
		if len(d.Events) != 1 || d.Events[0].Type != journey.TypeProfileUpdated || d.Events[0].Seq != seq ||
			string(d.Events[0].Data) != s.patch {
			t.Errorf("patch %s recorded as %+v", s.patch, d.Events)
		}
		if got := mustJSON(t, c.Profile); got != s.want {
			t.Errorf("after %s: profile %s, want %s", s.patch, got, s.want)
		}
	}
}

func TestDecideProfilePatchRejects(t *testing.T) {
	tests := []struct {
		name, id, patch string
		want            journey.Code
	}{
		{"null", "p-1", `null`, bad},
		{"array", "p-1", `[{"tier":"vip"}]`, bad},
		{"string", "p-1", `"vip"`, bad},
		{"number", "p-1", `1`, bad},
		{"empty", "p-1", ``, bad},
		{"not JSON", "p-1", `{"tier":`, bad},
		{"no id", "", `{"tier":"vip"}`, bad},
		{"larger than data", "p-1", string(dataOfSize(journey.DataMaxBytes + 1)), tooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := journey.NewCustomer("c-42")
			step(t, c, &journey.ProfilePatch{ID: "p-0", Patch: []byte(`{"tier":"gold"}`)}, t0)
			d := step(t, c, &journey.ProfilePatch{ID: tt.id, Patch: []byte(tt.patch)}, t0)
			if code(d.Reject) != tt.want || d.Ack != nil || len(d.Events) != 0 {
				t.Errorf("decision %+v, want a %s rejection and nothing else", d, tt.want)
			}
			if c.Seq != 1 || mustJSON(t, c.Profile) != `{"tier":"gold"}` {
				t.Errorf("rejected patch changed the customer: seq %d profile %v", c.Seq, c.Profile)
			}
		})
	}
}

// Patches each under the data limit cannot grow the profile past its own.
func TestDecideProfilePatchTooLargeProfile(t *testing.T) {
	c := journey.NewCustomer("c-42")
	big := strings.Repeat("x", 15<<10)
	for i := range 5 {
		patch, _ := json.Marshal(map[string]string{fmt.Sprintf("k%d", i): big})
		d := step(t, c, &journey.ProfilePatch{ID: fmt.Sprintf("p-%d", i), Patch: patch}, t0)
		fits := (i+1)*len(big) < journey.ProfileMaxBytes
		if fits != (d.Reject == nil) {
			t.Fatalf("patch %d (%d bytes in the profile): %v", i, (i+1)*len(big), d.Reject)
		}
		if !fits && code(d.Reject) != tooLarge {
			t.Errorf("patch %d: %v, want too_large", i, d.Reject)
		}
	}
	if len(c.Profile) != 4 {
		t.Errorf("profile has %d keys, want the 4 that fit", len(c.Profile))
	}
}
