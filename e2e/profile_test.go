package e2e

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestProfilePatch: PATCH /v1/customers/{id}/profile merges an object into
// the profile (null removes a key, objects merge key by key), answers the
// profile, records profile.updated, and the journey context shows it.
func TestProfilePatch(t *testing.T) {
	s := startServer(t, serverOptions{})
	s.postEvent(event{ID: "pp-1", Customer: "pp", Channel: "web", Text: "hello"})
	patch := func(token, body string) map[string]any {
		t.Helper()
		var p map[string]any
		s.call("PATCH", "/v1/customers/pp/profile", token, body, nil).wantStatus(t, 200).decode(t, &p)
		return p
	}
	want := func(got map[string]any, wantJSON string) {
		t.Helper()
		var w map[string]any
		if err := json.Unmarshal([]byte(wantJSON), &w); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, w) {
			g, _ := json.Marshal(got)
			t.Fatalf("profile %s, want %s", g, wantJSON)
		}
	}

	p := patch(tokChannel, `{"tier":"vip","timezone":"Europe/Berlin","consent":{"sms":true,"email":false},"tags":["a","b"]}`)
	want(p, `{"tier":"vip","timezone":"Europe/Berlin","consent":{"sms":true,"email":false},"tags":["a","b"]}`)
	p = patch(tokSupervisor, `{"tier":null,"preferred_channel":"whatsapp","consent":{"email":true,"sms":null},"tags":["c"]}`)
	const merged = `{"timezone":"Europe/Berlin","preferred_channel":"whatsapp","consent":{"email":true},"tags":["c"]}`
	want(p, merged)
	want(s.context("pp").Profile, merged)
	// Removing a key that is not there, and an empty patch, change nothing.
	want(patch(tokChannel, `{"nothing":null}`), merged)
	want(patch(tokChannel, `{}`), merged)

	// Each patch is a profile.updated event by the system, after the
	// customer's own events.
	events := s.timeline("pp", 100)
	checkGapless(t, "pp", events)
	if len(events) != 5 {
		t.Fatalf("%d events, want the message and 4 profile.updated", len(events))
	}
	for _, e := range events[1:] {
		if e.Type != "profile.updated" || e.Actor != "system" || e.ID == "" {
			t.Errorf("event %+v: want profile.updated by system", e)
		}
	}
	if events[1].Data["tier"] != "vip" {
		t.Errorf("first profile.updated data %v, want the patch", events[1].Data)
	}
	if ctx := s.context("pp"); ctx.Seq != 5 {
		t.Errorf("context seq %d, want 5", ctx.Seq)
	}

	// A patch of a customer not seen before creates it.
	var fresh map[string]any
	s.call("PATCH", "/v1/customers/pp-new/profile", tokChannel, `{"tier":"gold"}`, nil).wantStatus(t, 200).decode(t, &fresh)
	want(fresh, `{"tier":"gold"}`)
	want(s.context("pp-new").Profile, `{"tier":"gold"}`)

	// Bodies that are not an object are refused and change nothing.
	for _, body := range []string{`[1,2]`, `"vip"`, `42`, `null`, `true`, `{"tier":`, `not json`, ``} {
		r := s.call("PATCH", "/v1/customers/pp/profile", tokChannel, body, nil)
		t.Run("body "+body, func(t *testing.T) { r.wantError(t, 400, "bad_request") })
	}
	s.call("PATCH", "/v1/customers/pp/profile", tokChannel, `{"notes":"`+strings.Repeat("n", 17<<10)+`"}`, nil).wantError(t, 413, "too_large")
	ctx := s.context("pp")
	want(ctx.Profile, merged)
	if ctx.Seq != 5 {
		t.Errorf("refused patches changed the seq to %d", ctx.Seq)
	}
}
