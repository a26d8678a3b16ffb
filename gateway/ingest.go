package gateway

import (
	"bytes"
	"context"
	stdjson "encoding/json"
	"github.com/segmentio/encoding/json"
	"sync"
	"time"

	"github.com/throughline/throughline/actors"
	"github.com/throughline/throughline/journey"
)

// inboundWire is an event as a client sends it; fields clients cannot set
// (seq, actor, recorded_at) are not read.
type inboundWire struct {
	ID       string          `json:"id"`
	Customer string          `json:"customer"`
	Identity identityWire    `json:"identity"`
	Type     string          `json:"type"`
	Channel  string          `json:"channel"`
	Text     string          `json:"text"`
	Data     json.RawMessage `json:"data"`
	Time     *time.Time      `json:"time"`
}

var wires = sync.Pool{New: func() any { return new(inboundWire) }}

// identityWire decodes an event's identity object with encoding/json:
// segmentio's decoder makes every map[string]string with room for 64
// entries (about 4.8 KB), which the event keeps, in its customer's
// timeline too; an identity has a few.
type identityWire map[string]string

func (m *identityWire) UnmarshalJSON(b []byte) error {
	var v map[string]string
	if err := stdjson.Unmarshal(b, &v); err != nil {
		return err
	}
	*m = v
	return nil
}

// decodeEvent parses and validates one inbound event. The returned id is
// the event's id as far as it could be read, for the error answer.
func decodeEvent(raw []byte) (journey.Event, *journey.Rejection) {
	// Zero copy: the strings and data point into raw (a frame the reader
	// reuses) until Compact copies them, each event's into two allocations
	// rather than one per field. The wire struct is pooled: decoding into
	// it moves it to the heap.
	w := wires.Get().(*inboundWire)
	defer func() { *w = inboundWire{}; wires.Put(w) }()
	if err := parseJSON(raw, w, json.ZeroCopy); err != nil {
		return journey.Event{}, journey.Rejectf(journey.CodeBadRequest, "event is not a JSON object of event fields: %v", err)
	}
	e := w.event()
	if len(raw) > journey.EventMaxBytes {
		return e, journey.Rejectf(journey.CodeTooLarge, "event is larger than %d bytes", journey.EventMaxBytes)
	}
	// On the raw bytes: the decoder has replaced invalid UTF-8 with U+FFFD.
	if r := journey.CheckJSONUTF8("", raw); r != nil {
		return e, r
	}
	if r := journey.ValidateInbound(&e); r != nil {
		return e, r
	}
	return e, nil
}

// event is the wire's event, copied out of the frame it points into.
func (w *inboundWire) event() journey.Event {
	e := journey.Event{ID: w.ID, Customer: w.Customer, Identity: map[string]string(w.Identity), Type: w.Type,
		Channel: w.Channel, Text: w.Text, Data: w.Data, Time: w.Time}
	e.Compact()
	return e
}

// eventFrameWire is an event frame read in one pass, its event with it:
// clientFrame's fields, the event's decoded instead of kept raw.
type eventFrameWire struct {
	Type     string            `json:"type"`
	ID       string            `json:"id"`
	Event    *inboundWire      `json:"event"`
	Events   []json.RawMessage `json:"events"`
	Channels []string          `json:"channels"`
	Reason   string            `json:"reason"`
}

// eventFramePrefix starts the event frames decodeEventFrame reads: clients
// write the type first, and a frame of any other shape takes the two passes.
var eventFramePrefix = []byte(`{"type":"event",`)

// decodeEventFrame reads an event frame and its event in one pass (two
// passes, decodeFrameInto then decodeEvent, parsed every event twice and
// scanned it three times more: segmentio's input check, twice, and the
// UTF-8 check; ~4% of the server's CPU in bench ingest). ok is false for
// a frame it does not read, to be decoded in two passes: one that does
// not start with eventFramePrefix, is larger than an event may be, fails
// to parse, has no event or one without an id, or holds invalid UTF-8.
// The two passes tell each of those errors apart; a frame read here is
// one they accept, and its event is the one they decode (but for a frame
// with the key "event" twice: JSON leaves that to the reader, and here the
// two objects' fields merge where decodeEvent takes the last).
func decodeEventFrame(data []byte) (e journey.Event, rej *journey.Rejection, ok bool) {
	if !bytes.HasPrefix(data, eventFramePrefix) || len(data) > journey.EventMaxBytes {
		return e, nil, false
	}
	w := wires.Get().(*inboundWire)
	defer func() { *w = inboundWire{}; wires.Put(w) }()
	f := eventFrameWire{Event: w}
	if parseJSON(data, &f, json.ZeroCopy) != nil || f.Type != "event" || f.Event != w || w.ID == "" {
		return e, nil, false
	}
	if journey.CheckJSONUTF8("", data) != nil {
		return e, nil, false
	}
	e = w.event()
	return e, journey.ValidateInbound(&e), true
}

// needsResolve: an event with identities must be resolved (or linked) by
// the identities' partitions before it reaches a customer.
func needsResolve(e *journey.Event) bool { return len(e.Identity) > 0 }

// deliver resolves a validated event when it needs it and hands it to its
// customer. admit takes the customer partition's admission (HTTP) when set.
// done is called exactly once.
func (s *Server) deliver(ctx context.Context, e journey.Event, conn uint64, admit bool, done func(actors.Result)) {
	if rej := s.memoryRefusal("nothing was stored"); rej != nil {
		done(actors.Result{Reject: rej})
		return
	}
	customer := e.Customer
	var linked []journey.IdentityRef
	if needsResolve(&e) {
		if admit {
			// Resolution waits on the identity's partition: it is admitted
			// there, so a flood of HTTP requests cannot queue without bound.
			p := s.rt.IdentityPartition(&e)
			if !s.rt.Admit(p) {
				done(actors.Result{Reject: journey.Rejectf(journey.CodeUnavailable, "partition overloaded; nothing was stored")})
				return
			}
			defer s.rt.Release(p)
		}
		var err error
		customer, linked, err = s.rt.Resolve(ctx, &e)
		if err != nil {
			done(actors.Result{Reject: rejection(err)})
			return
		}
	}
	if admit {
		p := s.rt.PartitionOf(customer)
		if !s.rt.Admit(p) {
			done(actors.Result{Reject: journey.Rejectf(journey.CodeUnavailable, "partition overloaded; nothing was stored")})
			return
		}
		inner := done
		done = func(r actors.Result) { s.rt.Release(p); inner(r) }
	}
	s.rt.IngestFrom(customer, journey.Inbound{Event: e, Linked: linked}, conn, done)
}

// count records the outcome of an event in the metrics.
func (s *Server) count(r actors.Result, start time.Time) {
	switch {
	case r.Reject != nil:
		s.metrics.rejected.WithLabelValues(string(r.Reject.Code)).Inc()
	case r.Ack.Duplicate:
		s.metrics.duplicates.Inc()
	default:
		s.metrics.ingested.Inc()
	}
	s.metrics.ackLatency.Observe(time.Since(start).Seconds())
}
