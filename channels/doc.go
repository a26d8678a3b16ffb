// Package channels holds the provider formats of PROTOCOL section 9: Twilio
// SMS, status callbacks and Voice (TwiML), the WhatsApp Cloud API, email
// (RFC 5322 in, threaded replies out) and web chat visitor tokens. Each file
// is a pure mapping between a provider's format and journey inputs (inbound
// events, receipts), from outbounds to the provider's request, and its
// signature check.
//
// It sits under the gateway, which mounts the endpoints and runs the
// senders, and imports only journey. Nothing here starts a goroutine, reads
// a clock (times are arguments), or does I/O; every function is safe for
// concurrent use.
package channels
