package channels

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/throughline/throughline/journey"
)

// Payloads as Meta's Cloud API webhook reference shows them.
const (
	waTextSample = `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{
 "messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},
 "contacts":[{"profile":{"name":"Sheena Nelson"},"wa_id":"16505551234"}],
 "messages":[{"from":"16505551234","id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=","timestamp":"1749416383","type":"text","text":{"body":"Does it come in another color?"}}]},
 "field":"messages"}]}]}`
	waInteractiveSample = `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{
 "messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},
 "contacts":[{"profile":{"name":"Sheena Nelson"},"wa_id":"16505551234"}],
 "messages":[{"context":{"from":"15550783881","id":"wamid.HBgLMTY0NjcwNDM1OTUVAgARGBI1QjJGRjI1RDY0RkE4Nzg4QzcA"},
   "from":"16505551234","id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=","timestamp":"1750025136","type":"interactive",
   "interactive":{"type":"button_reply","button_reply":{"id":"cancel-button","title":"Cancel"}}},
  {"from":"16505551234","id":"wamid.list1","timestamp":"1750025137","type":"interactive",
   "interactive":{"type":"list_reply","list_reply":{"id":"priority-express","title":"Express Shipping","description":"Next day"}}},
  {"from":"16505551234","id":"wamid.button1","timestamp":"1750025138","type":"button","button":{"payload":"Unsubscribe","text":"Stop promotions"}},
  {"from":"16505551234","id":"wamid.image1","timestamp":"1750025139","type":"image","image":{"mime_type":"image/jpeg","id":"1003383421387256"}}]},
 "field":"messages"}]}]}`
	waStatusSample = `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{
 "messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},
 "statuses":[{"id":"wamid.sent1","status":"delivered","timestamp":"1750263773","recipient_id":"16505551234","biz_opaque_callback_data":"out-9-c-1",
   "pricing":{"billable":true,"pricing_model":"PMP","category":"utility"}},
  {"id":"wamid.sent2","status":"failed","timestamp":"1750263774","recipient_id":"16505551234",
   "errors":[{"code":131047,"title":"Re-engagement message","message":"Re-engagement message","error_data":{"details":"Message failed to send because more than 24 hours have passed since the customer last replied to this number."}}]},
  {"id":"wamid.sent3","status":"sent","timestamp":"1750263775","recipient_id":"16505551234"}]},
 "field":"messages"}]}]}`
)

func TestWhatsAppMessages(t *testing.T) {
	w, err := DecodeWhatsApp([]byte(waTextSample))
	if err != nil || len(w.Events) != 1 {
		t.Fatalf("%+v %v", w, err)
	}
	e := w.Events[0]
	if e.ID != "wa:wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=" || e.Identity["whatsapp"] != "16505551234" ||
		e.Channel != "whatsapp" || e.Text != "Does it come in another color?" || w.Names["16505551234"] != "Sheena Nelson" {
		t.Errorf("%+v names %v", e, w.Names)
	}
	if rej := journey.ValidateInbound(&e); rej != nil || e.Identity["whatsapp"] != "+16505551234" {
		t.Errorf("validate: %v %v", rej, e.Identity)
	}
	w, err = DecodeWhatsApp([]byte(waInteractiveSample))
	if err != nil || len(w.Events) != 4 {
		t.Fatalf("%+v %v", w, err)
	}
	wantText := []string{"Cancel", "Express Shipping", "Stop promotions", ""}
	for i, e := range w.Events {
		if e.Text != wantText[i] || e.Type != journey.TypeMessageReceived {
			t.Errorf("message %d: %q, want %q", i, e.Text, wantText[i])
		}
	}
	var d map[string]any
	_ = json.Unmarshal(w.Events[3].Data, &d)
	if d["type"] != "image" {
		t.Errorf("image data %s", w.Events[3].Data)
	}
}

func TestWhatsAppStatuses(t *testing.T) {
	w, err := DecodeWhatsApp([]byte(waStatusSample))
	if err != nil {
		t.Fatal(err)
	}
	want := []WhatsAppStatus{
		{ProviderID: "wamid.sent1", Outbound: "out-9-c-1", Kind: journey.ReceiptDelivered},
		{ProviderID: "wamid.sent2", Kind: journey.ReceiptFailed, Reason: "whatsapp_131047"},
	}
	if len(w.Statuses) != len(want) || w.Statuses[0] != want[0] || w.Statuses[1] != want[1] {
		t.Errorf("statuses %+v, want %+v", w.Statuses, want)
	}
}

func TestWhatsAppSignatureAndVerification(t *testing.T) {
	body := []byte(waTextSample)
	sig := WhatsAppSignature("app-secret", body)
	for _, c := range []struct {
		name, secret, header string
		body                 []byte
		want                 bool
	}{
		{"valid", "app-secret", sig, body, true},
		{"invalid", "app-secret", "sha256=" + strings.Repeat("0", 64), body, false},
		{"missing", "app-secret", "", body, false},
		{"replayed with another body", "app-secret", sig, []byte(waStatusSample), false},
		{"another secret", "other", sig, body, false},
		{"no secret configured", "", sig, body, false},
	} {
		if got := VerifyWhatsApp(c.secret, c.body, c.header); got != c.want {
			t.Errorf("%s: %v", c.name, got)
		}
	}
	q := url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {"vt"}, "hub.challenge": {"1158201444"}}
	if ch, ok := WhatsAppVerify(q, "vt"); !ok || ch != "1158201444" {
		t.Errorf("handshake %q %v", ch, ok)
	}
	if _, ok := WhatsAppVerify(q, "other"); ok {
		t.Error("a wrong verify token passed")
	}
}

func TestWhatsAppMessageRequest(t *testing.T) {
	o := journey.Outbound{ID: "out-9-c-1", To: map[string]string{"whatsapp": "+16505551234"}, Text: "It does: blue and red."}
	endpoint, body, err := WhatsAppMessageRequest(WhatsAppAccount{PhoneNumberID: "106540352242922", APIBase: "https://graph.facebook.com/v21.0"}, o)
	if err != nil || endpoint != "https://graph.facebook.com/v21.0/106540352242922/messages" {
		t.Fatal(endpoint, err)
	}
	var v map[string]any
	_ = json.Unmarshal(body, &v)
	if v["messaging_product"] != "whatsapp" || v["to"] != "16505551234" || v["type"] != "text" ||
		v["text"].(map[string]any)["body"] != o.Text || v["biz_opaque_callback_data"] != "out-9-c-1" {
		t.Errorf("body %s", body)
	}
	ok := WhatsAppSendResult(200, []byte(`{"messaging_product":"whatsapp","contacts":[{"input":"16505551234","wa_id":"16505551234"}],"messages":[{"id":"wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"}]}`))
	bad := WhatsAppSendResult(400, []byte(`{"error":{"message":"(#131030) Recipient phone number not in allowed list","type":"OAuthException","code":131030,"fbtrace_id":"Az8or2yhqkZfEZ-_4Qn_Bam"}}`))
	if !ok.Taken || !strings.HasPrefix(ok.ProviderID, "wamid.") || bad.Taken || bad.Retry || bad.Code != "whatsapp_131030" {
		t.Errorf("ok %+v bad %+v", ok, bad)
	}
}

func FuzzWhatsAppWebhook(f *testing.F) {
	for _, s := range []string{waTextSample, waInteractiveSample, waStatusSample, `{"entry":[{"changes":[{"value":{"messages":[{}]}}]}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		w, err := DecodeWhatsApp(body)
		if err != nil {
			return
		}
		for _, e := range w.Events {
			if journey.ValidateID("id", e.ID) != nil || e.Identity["whatsapp"] == "" || len(e.Text) > TextMaxBytes {
				t.Fatalf("bad event %+v", e)
			}
		}
		if len(w.Events)+len(w.Statuses) > WhatsAppMessagesMax {
			t.Fatal("not bounded")
		}
	})
}

func FuzzWhatsAppSignature(f *testing.F) {
	f.Add("app-secret", []byte(waTextSample), []byte("{}"))
	f.Fuzz(func(t *testing.T, secret string, body, other []byte) {
		if secret == "" {
			return
		}
		sig := WhatsAppSignature(secret, body)
		if !VerifyWhatsApp(secret, body, sig) {
			t.Fatal("its own signature does not verify")
		}
		if string(body) != string(other) && VerifyWhatsApp(secret, other, sig) {
			t.Fatal("another body verifies")
		}
	})
}
