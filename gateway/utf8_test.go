package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/gorilla/websocket"
)

// Invalid UTF-8 in any string of an event is refused with bad_request
// naming the field, never stored with U+FFFD in its place.
func TestInvalidUTF8RefusedOverHTTP(t *testing.T) {
	addr := startServer(t)
	cases := []struct {
		name, body, contentType, want string
		header                        http.Header
	}{
		{name: "text", body: "{\"id\":\"u1\",\"customer\":\"c-1\",\"text\":\"caf\xe9\"}", want: "text: invalid UTF-8"},
		{name: "nested data", body: "{\"id\":\"u2\",\"customer\":\"c-1\",\"type\":\"order.placed\",\"data\":{\"lines\":[{\"sku\":\"\xff\"}]}}", want: "data.lines[0].sku: invalid UTF-8"},
		{name: "identity value", body: "{\"id\":\"u3\",\"identity\":{\"email\":\"a\xc3@b.c\"},\"text\":\"hi\"}", want: "identity.email: invalid UTF-8"},
		{name: "batch item", body: "{\"events\":[{\"id\":\"u4\",\"customer\":\"c-1\",\"text\":\"\xfe\"}]}", want: "text: invalid UTF-8"},
		{name: "cloudevent", contentType: "application/cloudevents+json",
			body: "{\"specversion\":\"1.0\",\"id\":\"u5\",\"source\":\"s\",\"type\":\"t.x\",\"subject\":\"c-1\",\"data\":{\"text\":\"\xff\"}}", want: "data.text: invalid UTF-8"},
		{name: "binary cloudevent", contentType: "application/json", header: http.Header{"Ce-Specversion": {"1.0"}, "Ce-Id": {"u6"}, "Ce-Source": {"s"}, "Ce-Type": {"t.x"}, "Ce-Subject": {"c-1"}},
			body: "{\"text\":\"\xff\"}", want: "data.text: invalid UTF-8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", "http://"+addr+"/v1/events", bytes.NewBufferString(c.body))
			req.Header.Set("Authorization", "Bearer gw")
			ct := c.contentType
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
			for k, v := range c.header {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var single struct {
				Error errorBody `json:"error"`
			}
			var batch struct {
				Acks []struct {
					Error errorBody `json:"error"`
				} `json:"acks"`
			}
			_ = json.Unmarshal(raw, &single)
			_ = json.Unmarshal(raw, &batch)
			got := single.Error
			if len(batch.Acks) == 1 {
				got = batch.Acks[0].Error
			} else if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d: %s", resp.StatusCode, raw)
			}
			if got.Code != "bad_request" || got.Message != c.want {
				t.Fatalf("got %s, want bad_request %q", raw, c.want)
			}
		})
	}
	// A profile patch too.
	req, _ := http.NewRequest("PATCH", "http://"+addr+"/v1/customers/c-9/profile", bytes.NewBufferString("{\"address\":{\"city\":\"M\xfcnchen\"}}"))
	req.Header.Set("Authorization", "Bearer gw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(raw, []byte(`"profile.address.city: invalid UTF-8"`)) {
		t.Fatalf("profile patch: %d %s", resp.StatusCode, raw)
	}
	// Nothing of it was stored.
	req, _ = http.NewRequest("GET", "http://"+addr+"/v1/customers/c-1/timeline", nil)
	req.Header.Set("Authorization", "Bearer sup")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("customer c-1 exists after only refused events: %d", resp.StatusCode)
	}
}

func TestInvalidUTF8RefusedOverWebSocket(t *testing.T) {
	ws := dialChannel(t, startServer(t))
	send := func(frame string) map[string]any {
		t.Helper()
		if err := ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
			t.Fatal(err)
		}
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(msg, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := send("{\"type\":\"event\",\"event\":{\"id\":\"w1\",\"customer\":\"c-2\",\"text\":\"ok\",\"data\":{\"profile\":{\"name\":\"\xc0\xaf\"}}}}")
	if m["type"] != "error" || m["id"] != "w1" || m["code"] != "bad_request" || m["message"] != "data.profile.name: invalid UTF-8" {
		t.Fatalf("event frame: %v", m)
	}
	// In a batch, the bad event is refused and the good one stored.
	m = send("{\"type\":\"batch\",\"id\":\"b1\",\"events\":[{\"id\":\"w2\",\"customer\":\"c-2\",\"text\":\"\xff\"},{\"id\":\"w3\",\"customer\":\"c-2\",\"text\":\"fine\"}]}")
	acks, _ := m["acks"].([]any)
	if m["type"] != "acks" || len(acks) != 2 {
		t.Fatalf("batch: %v", m)
	}
	bad, _ := acks[0].(map[string]any)["error"].(map[string]any)
	if bad["code"] != "bad_request" || bad["message"] != "text: invalid UTF-8" {
		t.Fatalf("batch item 0: %v", acks[0])
	}
	if seq := acks[1].(map[string]any)["seq"]; seq != float64(1) {
		t.Fatalf("batch item 1: %v", acks[1])
	}
	// The frame's own strings are checked too; the connection stays open.
	m = send("{\"type\":\"batch\",\"id\":\"b\xff\",\"events\":[{\"id\":\"w4\",\"customer\":\"c-2\",\"text\":\"x\"}]}")
	if m["type"] != "error" || m["message"] != "id: invalid UTF-8" {
		t.Fatalf("frame id: %v", m)
	}
	m = send(`{"type":"event","event":{"id":"w5","customer":"c-2","text":"still open"}}`)
	if m["type"] != "ack" {
		t.Fatalf("after refusals: %v", m)
	}
}
