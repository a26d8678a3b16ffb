package channels

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/throughline/throughline/journey"
)

// ErrBadPayload wraps every decoding failure of a provider's request: the
// gateway answers it 400.
var ErrBadPayload = errors.New("channels: bad payload")

func badf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadPayload, fmt.Sprintf(format, args...))
}

// TextMaxBytes bounds the text taken from a provider's message; the rest is
// cut (an event is at most journey.EventMaxBytes).
const TextMaxBytes = 32 << 10

// eventID is prefix+ref when that is a valid id, else prefix + base64url of
// ref's SHA-256 (provider ids and Message-IDs may be long or odd).
func eventID(prefix, ref string) string {
	id := prefix + ref
	if utf8.RuneCountInString(id) <= journey.IDMaxChars && journey.ValidateID("id", id) == nil {
		return id
	}
	sum := sha256.Sum256([]byte(ref))
	return prefix + base64.RawURLEncoding.EncodeToString(sum[:])
}

// cutText keeps at most TextMaxBytes of valid UTF-8.
func cutText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= TextMaxBytes {
		return s
	}
	s = s[:TextMaxBytes]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// data marshals an event's data object.
func data(v any) json.RawMessage {
	raw, err := json.Marshal(v)
	if err != nil {
		panic("channels: data: " + err.Error())
	}
	return raw
}

// SendResult is what a provider's answer to a send means for the outbound.
type SendResult struct {
	// ProviderID is the provider's id of the message (Twilio's sid,
	// WhatsApp's message id, the Message-ID of a mail), when taken.
	ProviderID string
	// Taken: the provider took the message over (receipt accepted).
	Taken bool
	// Retry: a transient failure (5xx, 429, a timeout): try again later.
	Retry bool
	// Code: the provider's code of a permanent failure (message.failed's
	// reason).
	Code string
}

// classify maps an HTTP status to a SendResult without the body's details.
func classify(status int) SendResult {
	switch {
	case status >= 200 && status < 300:
		return SendResult{Taken: true}
	case status == 429 || status == 408 || status >= 500:
		return SendResult{Retry: true, Code: fmt.Sprintf("http_%d", status)}
	default:
		return SendResult{Code: fmt.Sprintf("http_%d", status)}
	}
}
