package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/throughline/throughline/actors"
	"github.com/throughline/throughline/journey"
)

// postEvents is POST /v1/events: one event, {"events":[...]}, or CloudEvents
// in structured, batch or binary mode (PROTOCOL section 1).
func (s *Server) postEvents(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	body, err := s.readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case mediaType == "application/cloudevents+json":
		ev, ackID, rej := decodeStructuredCloudEvent(body)
		s.answerOne(w, r, ev, ackID, rej, start)
	case mediaType == "application/cloudevents-batch+json":
		s.postCloudEventBatch(w, r, body, start)
	case r.Header.Get("ce-specversion") != "":
		ev, ackID, rej := decodeBinaryCloudEvent(r.Header, body)
		s.answerOne(w, r, ev, ackID, rej, start)
	default:
		s.postJSON(w, r, body, start)
	}
}

func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.BodyMaxBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, journey.Rejectf(journey.CodeTooLarge, "body is larger than %d bytes", s.cfg.BodyMaxBytes)
	case err != nil:
		return nil, journey.Rejectf(journey.CodeBadRequest, "reading body: %v", err)
	}
	return body, nil
}

// postJSON takes one event object or {"events":[...]}.
func (s *Server) postJSON(w http.ResponseWriter, r *http.Request, body []byte, start time.Time) {
	var probe struct {
		Events *[]json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		writeError(w, journey.Rejectf(journey.CodeBadRequest, "body is not a JSON object: %v", err))
		return
	}
	if probe.Events == nil {
		ev, rej := decodeEvent(body)
		s.answerOne(w, r, ev, ev.ID, rej, start)
		return
	}
	raws := *probe.Events
	if len(raws) > journey.BatchMaxEvents {
		writeError(w, journey.Rejectf(journey.CodeTooLarge, "%d events; at most %d", len(raws), journey.BatchMaxEvents))
		return
	}
	events := make([]journey.Event, len(raws))
	rejs := make([]*journey.Rejection, len(raws))
	for i, raw := range raws {
		events[i], rejs[i] = decodeEvent(raw)
	}
	s.answerMany(w, r, events, nil, rejs, start)
}

// answerOne delivers one decoded event and answers 200 {"ack":...} or the
// error. ackID is the id the ack names (a CloudEvent's own id).
func (s *Server) answerOne(w http.ResponseWriter, r *http.Request, ev journey.Event, ackID string, rej *journey.Rejection, start time.Time) {
	if rej != nil {
		s.count(actors.Result{Reject: rej}, start)
		writeError(w, rej)
		return
	}
	res := make(chan actors.Result, 1)
	s.deliver(r.Context(), ev, 0, true, func(x actors.Result) { res <- x })
	out := awaitResult(r.Context(), res)
	s.count(out, start)
	if out.Reject != nil {
		writeError(w, out.Reject)
		return
	}
	ack := *out.Ack
	ack.ID = ackID
	writeJSON(w, http.StatusOK, map[string]journey.Ack{"ack": ack})
}

// answerMany delivers events in order and answers {"acks":[...]}, one item
// per event. ackIDs (nil: the events' ids) name the acks.
func (s *Server) answerMany(w http.ResponseWriter, r *http.Request, events []journey.Event, ackIDs []string, rejs []*journey.Rejection, start time.Time) {
	// The token's rate counts each event: the request was counted as one.
	if wait, rej := principalOf(r).spendEvents(len(events)); rej != nil {
		s.refuseRate(w, wait, rej)
		return
	}
	results := make([]actors.Result, len(events))
	waits := make([]chan actors.Result, len(events))
	for i := range events {
		if rejs[i] != nil {
			results[i] = actors.Result{Reject: rejs[i]}
			continue
		}
		waits[i] = make(chan actors.Result, 1)
		c := waits[i]
		// In order: deliver returns once the event is handed to its
		// customer, so one customer's events get seqs in body order.
		s.deliver(r.Context(), events[i], 0, true, func(x actors.Result) { c <- x })
	}
	ids := make([]string, len(events))
	for i := range events {
		if waits[i] != nil {
			results[i] = awaitResult(r.Context(), waits[i])
		}
		ids[i] = events[i].ID
		if ackIDs != nil {
			ids[i] = ackIDs[i]
		}
		if results[i].Ack != nil && ackIDs != nil {
			a := *results[i].Ack
			a.ID = ackIDs[i]
			results[i].Ack = &a
		}
		s.count(results[i], start)
	}
	body := appendAckItems(append(make([]byte, 0, 16+96*len(ids)), `{"acks":`...), ids, results)
	body = append(body, '}')
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// awaitResult waits for an event's answer, or for the client to go away
// (the answer, when it comes, lands in the buffered channel unread).
func awaitResult(ctx context.Context, res <-chan actors.Result) actors.Result {
	timer := time.NewTimer(answerTimeout)
	defer timer.Stop()
	select {
	case r := <-res:
		return r
	case <-ctx.Done():
	case <-timer.C:
	}
	return actors.Result{Reject: journey.Rejectf(journey.CodeUnavailable, "no answer in time; retry with the same id")}
}

// answerTimeout bounds how long an HTTP request waits for its events.
const answerTimeout = 30 * time.Second
