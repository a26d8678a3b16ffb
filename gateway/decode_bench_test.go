package gateway

import "testing"

func BenchmarkDecodeEventFrame(b *testing.B) {
	frame := []byte(`{"type":"event","event":{"id":"gw-7f3a-000123","customer":"c-42","type":"message.received","channel":"sms","text":"my card payment failed again, I tried three times and it still does not go through, please help me with this now","data":{"amount":120.5}}}`)
	b.ReportAllocs()
	for b.Loop() {
		f, rej := decodeFrame(frame)
		if rej != nil {
			b.Fatal(rej)
		}
		if _, rej := decodeEvent(f.Event); rej != nil {
			b.Fatal(rej)
		}
	}
}

func BenchmarkDecodeEventWithIdentity(b *testing.B) {
	frame := []byte(`{"type":"event","event":{"id":"gw-7f3a-000123","identity":{"phone":"+15551230000","email":"a@example.com"},"type":"message.received","channel":"sms","text":"my card payment failed again"}}`)
	b.ReportAllocs()
	for b.Loop() {
		f, rej := decodeFrame(frame)
		if rej != nil {
			b.Fatal(rej)
		}
		if _, rej := decodeEvent(f.Event); rej != nil {
			b.Fatal(rej)
		}
	}
}
