package channels

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

func TestVisitorToken(t *testing.T) {
	secret := []byte("webchat-secret")
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	v := Visitor{ID: "v-123", Identity: map[string]string{"email": "ana@example.com"}, Expires: now.Add(time.Hour).Unix()}
	tok := SignVisitor(secret, v)
	got, err := VerifyVisitor(secret, tok, now)
	if err != nil || got.ID != "v-123" || got.Identity["email"] != "ana@example.com" {
		t.Fatalf("%+v %v", got, err)
	}
	body, sig, _ := strings.Cut(tok, ".")
	other := SignVisitor(secret, Visitor{ID: "v-999", Expires: v.Expires})
	otherBody, _, _ := strings.Cut(other, ".")
	for name, bad := range map[string]string{
		"missing": "", "no signature": body, "tampered": otherBody + "." + sig,
		"another secret": SignVisitor([]byte("other"), v), "garbage": "a.b.c",
	} {
		if _, err := VerifyVisitor(secret, bad, now); !errors.Is(err, ErrVisitorToken) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := VerifyVisitor(secret, tok, now.Add(time.Hour)); !errors.Is(err, ErrVisitorToken) {
		t.Error("an expired token was taken")
	}
}

func TestWebchatFrame(t *testing.T) {
	f, err := DecodeWebchatFrame([]byte(`{"type":"message","id":"m1","text":"hi there"}`))
	if err != nil {
		t.Fatal(err)
	}
	e := WebchatEvent(Visitor{ID: "v-123", Identity: map[string]string{"email": "Ana@Example.com"}}, f)
	if rej := journey.ValidateInbound(&e); rej != nil || e.ID != "wc:v-123:m1" || e.Channel != "web" || e.Identity["web"] != "v-123" || e.Identity["email"] != "ana@example.com" {
		t.Errorf("%+v %v", e, rej)
	}
	for _, bad := range []string{`{"type":"message","id":"m1","text":"  "}`, `{"type":"typing"}`, `{"type":"message","text":"x"}`, `nope`} {
		if _, err := DecodeWebchatFrame([]byte(bad)); err == nil {
			t.Errorf("%s was taken", bad)
		}
	}
}

func FuzzVisitorToken(f *testing.F) {
	secret := []byte("s")
	f.Add(SignVisitor(secret, Visitor{ID: "v", Expires: 1 << 40}))
	f.Add("x.y")
	f.Fuzz(func(t *testing.T, tok string) {
		v, err := VerifyVisitor(secret, tok, time.Unix(0, 0))
		if err == nil && (v.ID == "" || SignVisitor(secret, v) == "") {
			t.Fatal("a token without visitor verified")
		}
	})
}

func FuzzWebchatFrame(f *testing.F) {
	f.Add([]byte(`{"type":"message","id":"m1","text":"hi"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		fr, err := DecodeWebchatFrame(raw)
		if err != nil {
			return
		}
		e := WebchatEvent(Visitor{ID: "v-1"}, fr)
		if journey.ValidateID("id", e.ID) != nil {
			t.Fatalf("bad id %q", e.ID)
		}
	})
}
