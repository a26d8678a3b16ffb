package gateway

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/segmentio/encoding/json"

	"github.com/throughline/throughline/actors"
	"github.com/throughline/throughline/internal/jsonenc"
	"github.com/throughline/throughline/journey"
)

// frameFields are the fields of the frames a channel gateway sends
// (PROTOCOL section 2), with the event of type E and the events of type Es:
// raw (clientFrame), or one of them decoded with the frame (frameWire).
type frameFields[E, Es any] struct {
	Type     string   `json:"type"`
	ID       string   `json:"id"`
	Event    E        `json:"event"`
	Events   Es       `json:"events"`
	Channels []string `json:"channels"`
	Reason   string   `json:"reason"`
}

// clientFrame is any frame a channel gateway sends, its events raw.
type clientFrame = frameFields[json.RawMessage, []json.RawMessage]

// decodeFrame parses a client frame. A frame that is not a JSON object, or
// whose type is missing, is a bad_request.
func decodeFrame(data []byte) (clientFrame, *journey.Rejection) {
	var f clientFrame
	rej := decodeFrameInto(data, &f)
	return f, rej
}

// decodeFrameInto is decodeFrame into f, a connection's own, reused (a
// frame decoded into a new one moved it to the heap, every frame). Its
// events' slice is kept for the next frame unless a large batch grew it.
func decodeFrameInto(data []byte, f *clientFrame) *journey.Rejection {
	events := f.Events[:0]
	if cap(events) > frameEventsKeepMax {
		events = nil
	}
	*f = clientFrame{Events: events}
	// The events are not copied: they point into data, which lives until
	// the frame is handled, and each is decoded (copied) by decodeEvent.
	if err := parseJSON(data, f, json.DontCopyRawMessage); err != nil {
		*f = clientFrame{}
		return journey.Rejectf(journey.CodeBadRequest, "frame is not a JSON object: %v", err)
	}
	if f.Type == "" {
		return journey.Rejectf(journey.CodeBadRequest, "frame has no type")
	}
	// The frame's own strings (type, id, channels, reason); its events are
	// checked one by one, so that a bad one does not refuse the others.
	if r := journey.CheckJSONUTF8("", data); r != nil && !inEvents(r.Message) {
		return r
	}
	return nil
}

// frameEventsKeepMax bounds the batch a connection's decoded frame keeps
// room for (an idle connection stays small).
const frameEventsKeepMax = 16

// parseJSON is json.Unmarshal with segmentio's parse flags (what it may
// leave pointing into data).
func parseJSON(data []byte, v any, flags json.ParseFlags) error {
	rest, err := json.Parse(data, v, flags)
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("invalid character %q after top-level value", rest[0])
	}
	return err
}

// inEvents: a CheckJSONUTF8 message about a field of the frame's event or
// events.
func inEvents(message string) bool {
	return strings.HasPrefix(message, "event.") || strings.HasPrefix(message, "event:") || strings.HasPrefix(message, "events[")
}

// appendAck appends an ack's fields ("id":...,"customer":...,"seq":N,
// "duplicate":B) without braces.
func appendAckFields(b []byte, a *journey.Ack) []byte {
	b = append(b, `"id":`...)
	b = jsonenc.AppendString(b, a.ID)
	b = append(b, `,"customer":`...)
	b = jsonenc.AppendString(b, a.Customer)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, a.Seq, 10)
	b = append(b, `,"duplicate":`...)
	b = strconv.AppendBool(b, a.Duplicate)
	return b
}

func appendErrorFields(b []byte, id string, r *journey.Rejection) []byte {
	b = append(b, `"id":`...)
	b = jsonenc.AppendString(b, id)
	b = append(b, `,"error":{"code":`...)
	b = jsonenc.AppendString(b, string(r.Code))
	b = append(b, `,"message":`...)
	b = jsonenc.AppendString(b, r.Message)
	return append(b, '}')
}

// ackFrame is the frame answering a single event.
func ackFrame(id string, r actors.Result) []byte {
	return appendAckFrame(make([]byte, 0, 128), id, r)
}

// appendAckFrame appends ackFrame's frame to b.
func appendAckFrame(b []byte, id string, r actors.Result) []byte {
	if r.Reject != nil {
		return appendErrorFrame(b, id, r.Reject)
	}
	b = append(b, `{"type":"ack",`...)
	b = appendAckFields(b, r.Ack)
	return append(b, '}')
}

// errorFrame is {"type":"error","id":...,"code":...,"message":...}.
func errorFrame(id string, r *journey.Rejection) []byte {
	return appendErrorFrame(make([]byte, 0, 128), id, r)
}

func appendErrorFrame(b []byte, id string, r *journey.Rejection) []byte {
	b = append(b, `{"type":"error","id":`...)
	b = jsonenc.AppendString(b, id)
	b = append(b, `,"code":`...)
	b = jsonenc.AppendString(b, string(r.Code))
	b = append(b, `,"message":`...)
	b = jsonenc.AppendString(b, r.Message)
	return append(b, '}')
}

// acksFrame answers a batch: one item per event, in order.
func acksFrame(batchID string, ids []string, results []actors.Result) []byte {
	b := make([]byte, 0, 32+96*len(results))
	b = append(b, `{"type":"acks","id":`...)
	b = jsonenc.AppendString(b, batchID)
	b = append(b, `,"acks":`...)
	b = appendAckItems(b, ids, results)
	return append(b, '}')
}

// appendAckItems appends the JSON array of a batch's answers: each an ack's
// fields or {"id":...,"error":{...}}.
func appendAckItems(b []byte, ids []string, results []actors.Result) []byte {
	b = append(b, '[')
	for i, r := range results {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		if r.Reject != nil {
			b = appendErrorFields(b, ids[i], r.Reject)
		} else {
			b = appendAckFields(b, r.Ack)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}
