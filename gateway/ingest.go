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

// frameWire is an event or a batch frame read in one pass, its events
// with it: the frame's events decoded instead of kept raw, and the field
// its type ignores kept raw, as decodeFrameInto keeps it (decoded, an
// ignored "events" of thousands of empty objects in an event frame cost
// megabytes for one token of the connection's rate). An event frame's
// event is decoded into one.
type frameWire struct {
	batch bool
	e     frameFields[*inboundWire, []json.RawMessage]
	b     frameFields[json.RawMessage, []inboundWire]
	one   [1]inboundWire
}

// frameWires are reused: a frameWire keeps the room of its batch's events
// up to frameWireEventsKeepMax (the decoder grows it 10, 20, 40, 80, 160,
// ...: a batch of 100 fills 160).
var frameWires = sync.Pool{New: func() any { return new(frameWire) }}

const frameWireEventsKeepMax = 160

// The frames decodeFrameOnePass reads start with their type: clients write
// it first, and a frame of any other shape takes the two passes.
var (
	eventFramePrefix = []byte(`{"type":"event",`)
	batchFramePrefix = []byte(`{"type":"batch",`)
)

// decodeFrameOnePass reads an event or a batch frame and its events in one
// pass. Two passes (decodeFrameInto, then decodeEvent for each event)
// parsed every event twice and scanned it three times more: segmentio's
// input check, twice, and the UTF-8 check (~4% of the server's CPU in
// bench ingest). ok is false for a frame it does not read, to be decoded
// in two passes: one that does not start with eventFramePrefix or
// batchFramePrefix, is larger than an event may be (so that no event of it
// is), fails to parse, holds invalid UTF-8, is an event frame without an
// event or a batch of none or of more than journey.BatchMaxEvents, or has
// an event without an id. The two passes tell each of those errors apart;
// a frame read here is one they accept, and its events are the ones they
// decode, but for a frame that names its "event" (or a batch its
// "events") twice, in any case or spelling: JSON leaves duplicate names
// to the reader, and here the objects' fields merge where the two passes
// take the last. The caller copies the events out (inboundWire.event)
// while data lives, then gives f back (release).
func decodeFrameOnePass(data []byte) (f *frameWire, ok bool) {
	batch := bytes.HasPrefix(data, batchFramePrefix)
	if !batch && !bytes.HasPrefix(data, eventFramePrefix) || len(data) > journey.EventMaxBytes {
		return nil, false
	}
	f = frameWires.Get().(*frameWire)
	f.batch = batch
	var err error
	if batch {
		err = parseJSON(data, &f.b, json.ZeroCopy)
	} else {
		f.e.Event = &f.one[0]
		err = parseJSON(data, &f.e, json.ZeroCopy)
	}
	if err != nil || !f.whole() || journey.CheckJSONUTF8("", data) != nil {
		f.release()
		return nil, false
	}
	return f, true
}

// whole: the frame decoded is of the type its prefix said, and every event
// it holds has an id.
func (f *frameWire) whole() bool {
	if !f.batch {
		return f.e.Type == "event" && f.e.Event == &f.one[0] && f.one[0].ID != ""
	}
	if f.b.Type != "batch" || len(f.b.Events) == 0 || len(f.b.Events) > journey.BatchMaxEvents {
		return false
	}
	for i := range f.b.Events {
		if f.b.Events[i].ID == "" {
			return false
		}
	}
	return true
}

// events are the frame's events: the batch's, or the event frame's one.
func (f *frameWire) events() []inboundWire {
	if f.batch {
		return f.b.Events
	}
	return f.one[:]
}

// release gives f back to frameWires, holding nothing of its frame. The
// whole room of its batch's events is cleared: a decode that failed may
// have written events past the slice's length, and the next decode into
// the room would merge its events' fields with them.
func (f *frameWire) release() {
	var events []inboundWire
	if cap(f.b.Events) <= frameWireEventsKeepMax {
		events = f.b.Events[:0]
		clear(events[:cap(events)])
	}
	*f = frameWire{}
	f.b.Events = events
	frameWires.Put(f)
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

// count records the outcome of an event in the metrics. (A channel
// WebSocket's acks are counted by its writer: ackTally.)
func (s *Server) count(r actors.Result, start time.Time) {
	var t ackTally
	if r.Reject != nil {
		s.metrics.rejected.WithLabelValues(string(r.Reject.Code)).Inc()
		t.latency(time.Since(start))
	} else {
		t.ack(r.Ack.Duplicate, time.Since(start))
	}
	s.metrics.acks.add(&t)
}
