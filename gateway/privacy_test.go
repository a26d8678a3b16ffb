package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/throughline/throughline/journey"
)

// call makes one HTTP request with a bearer token and returns the status
// and body.
func call(t *testing.T, method, url, token, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// postMany stores n events for a customer, in batches of 1000.
func postMany(t *testing.T, base, customer string, n int) {
	t.Helper()
	for start := 0; start < n; start += 1000 {
		var events []map[string]any
		for i := start; i < min(start+1000, n); i++ {
			events = append(events, map[string]any{"id": fmt.Sprintf("e-%d", i), "customer": customer, "text": "hello", "channel": "sms",
				"identity": map[string]string{"phone": "+15551230000"}})
		}
		body, _ := json.Marshal(map[string]any{"events": events})
		if status, b := call(t, "POST", base+"/v1/events", "gw", string(body)); status != 200 {
			t.Fatalf("post events: %d %s", status, b)
		}
	}
}

type exportBody struct {
	Customer   string              `json:"customer"`
	Identities map[string][]string `json:"identities"`
	Profile    map[string]any      `json:"profile"`
	Events     []journey.Event     `json:"events"`
}

// The export carries every event (more than one store page), in seq order,
// with the identities and profile; erase leaves nothing to read, and both
// are in the audit log with the token's name, as is a refused request.
func TestExportEraseAndAudit(t *testing.T) {
	base := "http://" + startServer(t)
	const n = 2*exportPageEvents + 17
	postMany(t, base, "c-big", n)
	if status, b := call(t, "PATCH", base+"/v1/customers/c-big/profile", "sup", `{"tier":"vip"}`); status != 200 {
		t.Fatalf("patch: %d %s", status, b)
	}

	status, b := call(t, "GET", base+"/v1/customers/c-big/export", "adm-secret", "")
	if status != 200 {
		t.Fatalf("export: %d %s", status, b)
	}
	var x exportBody
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&x); err != nil {
		t.Fatalf("export is not JSON: %v", err)
	}
	if x.Customer != "c-big" || x.Profile["tier"] != "vip" || len(x.Identities["phone"]) != 1 {
		t.Fatalf("export head: %s %v %v", x.Customer, x.Profile, x.Identities)
	}
	// n events, the identity link and the profile patch.
	if len(x.Events) != n+2 {
		t.Fatalf("export has %d events, want %d", len(x.Events), n+2)
	}
	for i, e := range x.Events {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
	}
	if status, _ := call(t, "GET", base+"/v1/customers/c-big/export", "sup", ""); status != 403 {
		t.Fatalf("a supervisor's export answered %d, want 403", status)
	}

	if status, b := call(t, "DELETE", base+"/v1/customers/c-big", "adm-secret", ""); status != 204 {
		t.Fatalf("erase: %d %s", status, b)
	}
	for _, path := range []string{"/v1/customers/c-big", "/v1/customers/c-big/timeline"} {
		if status, _ := call(t, "GET", base+path, "sup", ""); status != 404 {
			t.Fatalf("GET %s after erase: %d, want 404", path, status)
		}
	}
	if status, _ := call(t, "GET", base+"/v1/customers/c-big/export", "adm-secret", ""); status != 404 {
		t.Fatalf("export after erase: %d, want 404", status)
	}
	// A late retry of an erased id answers conflict.
	late := `{"id":"e-3","customer":"c-big","text":"hello"}`
	if status, b := call(t, "POST", base+"/v1/events", "gw", late); status != 409 {
		t.Fatalf("late retry: %d %s, want 409", status, b)
	}

	status, b = call(t, "GET", base+"/v1/audit?limit=10", "adm-secret", "")
	if status != 200 {
		t.Fatalf("audit: %d %s", status, b)
	}
	if bytes.Contains(b, []byte("adm-secret")) {
		t.Fatal("the audit log shows a token")
	}
	var audit struct {
		Entries []struct{ Token, Role, Action, Target, Result string } `json:"entries"`
	}
	if err := json.Unmarshal(b, &audit); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"supervisor supervisor profile.patch c-big ok",
		"ops admin export c-big ok",
		"supervisor supervisor refused GET /v1/customers/c-big/export forbidden",
		"ops admin erase c-big ok",
		"ops admin export c-big not_found",
	}
	var got []string
	for _, e := range audit.Entries {
		got = append(got, strings.Join([]string{e.Token, e.Role, e.Action, e.Target, e.Result}, " "))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if status, _ := call(t, "GET", base+"/v1/audit?since=yesterday", "adm-secret", ""); status != 400 {
		t.Fatalf("a bad since answered %d", status)
	}
	status, b = call(t, "GET", base+"/v1/audit?limit=2", "adm-secret", "")
	if err := json.Unmarshal(b, &audit); status != 200 || err != nil || len(audit.Entries) != 2 || audit.Entries[0].Action != "erase" || audit.Entries[1].Result != "not_found" {
		t.Fatalf("the last 2 entries: %d %s", status, b)
	}
}
