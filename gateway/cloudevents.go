package gateway

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/throughline/throughline/journey"
)

// cloudEvent is a CloudEvents 1.0 event in structured mode.
type cloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            *time.Time      `json:"time,omitempty"`
	DataContentType string          `json:"datacontenttype,omitempty"`
	Data            json.RawMessage `json:"data,omitempty"`
	DataBase64      string          `json:"data_base64,omitempty"`
	// Extensions on the way out: where the event stands in the journey.
	Seq        uint64     `json:"seq,omitempty"`
	Actor      string     `json:"actor,omitempty"`
	RecordedAt *time.Time `json:"recordedat,omitempty"`
}

// decodeStructuredCloudEvent maps an application/cloudevents+json body to an
// event. ackID is the CloudEvent's own id, which the ack names.
func decodeStructuredCloudEvent(body []byte) (journey.Event, string, *journey.Rejection) {
	var ce cloudEvent
	if err := json.Unmarshal(body, &ce); err != nil {
		return journey.Event{}, "", journey.Rejectf(journey.CodeBadRequest, "not a CloudEvent: %v", err)
	}
	if len(body) > journey.EventMaxBytes {
		return journey.Event{}, ce.ID, journey.Rejectf(journey.CodeTooLarge, "event is larger than %d bytes", journey.EventMaxBytes)
	}
	if r := journey.CheckJSONUTF8("", body); r != nil {
		return journey.Event{}, ce.ID, r
	}
	return fromCloudEvent(ce)
}

// decodeBinaryCloudEvent maps a binary-mode CloudEvent (ce-* headers, the
// body is data) to an event.
func decodeBinaryCloudEvent(h http.Header, body []byte) (journey.Event, string, *journey.Rejection) {
	ce := cloudEvent{
		SpecVersion: h.Get("ce-specversion"), ID: h.Get("ce-id"), Source: h.Get("ce-source"),
		Type: h.Get("ce-type"), Subject: h.Get("ce-subject"), Data: body,
	}
	if len(body) > journey.EventMaxBytes {
		return journey.Event{}, ce.ID, journey.Rejectf(journey.CodeTooLarge, "event is larger than %d bytes", journey.EventMaxBytes)
	}
	for _, k := range []string{"ce-id", "ce-source", "ce-type", "ce-subject"} {
		if r := journey.CheckStringUTF8(k, h.Get(k)); r != nil {
			return journey.Event{}, "", r
		}
	}
	if r := journey.CheckJSONUTF8("data", body); r != nil {
		return journey.Event{}, ce.ID, r
	}
	if t := h.Get("ce-time"); t != "" {
		parsed, err := time.Parse(time.RFC3339Nano, t)
		if err != nil {
			return journey.Event{}, ce.ID, journey.Rejectf(journey.CodeBadRequest, "ce-time is not RFC 3339")
		}
		ce.Time = &parsed
	}
	return fromCloudEvent(ce)
}

// decodeCloudEventBatch maps an application/cloudevents-batch+json body.
func decodeCloudEventBatch(body []byte) ([]json.RawMessage, *journey.Rejection) {
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, journey.Rejectf(journey.CodeBadRequest, "not a JSON array of CloudEvents: %v", err)
	}
	if len(raws) > journey.BatchMaxEvents {
		return nil, journey.Rejectf(journey.CodeTooLarge, "%d events; at most %d", len(raws), journey.BatchMaxEvents)
	}
	return raws, nil
}

// fromCloudEvent: subject is the customer; source + "/" + id the idempotency
// key and the stored id (over 128 characters: "ce:" + base64url of its
// SHA-256, with source kept in data.ce_source); data.text, data.channel and
// data.identity map to the event's fields, the rest of data stays data.
func fromCloudEvent(ce cloudEvent) (journey.Event, string, *journey.Rejection) {
	if ce.SpecVersion != "1.0" {
		return journey.Event{}, ce.ID, journey.Rejectf(journey.CodeBadRequest, "specversion must be 1.0")
	}
	if ce.ID == "" || ce.Source == "" || ce.Type == "" {
		return journey.Event{}, ce.ID, journey.Rejectf(journey.CodeBadRequest, "a CloudEvent needs id, source and type")
	}
	if ce.DataBase64 != "" {
		return journey.Event{}, ce.ID, journey.Rejectf(journey.CodeBadRequest, "data_base64 is not supported; send JSON data")
	}
	data := map[string]json.RawMessage{}
	if len(ce.Data) > 0 && string(ce.Data) != "null" {
		if err := json.Unmarshal(ce.Data, &data); err != nil {
			return journey.Event{}, ce.ID, journey.Rejectf(journey.CodeBadRequest, "CloudEvent data must be a JSON object")
		}
	}
	e := journey.Event{Customer: ce.Subject, Type: ce.Type, Time: ce.Time}
	if err := takeString(data, "text", &e.Text); err != nil {
		return e, ce.ID, err
	}
	if err := takeString(data, "channel", &e.Channel); err != nil {
		return e, ce.ID, err
	}
	if raw, ok := data["identity"]; ok {
		if json.Unmarshal(raw, &e.Identity) != nil {
			return e, ce.ID, journey.Rejectf(journey.CodeBadRequest, "data.identity must be an object of strings")
		}
		delete(data, "identity")
	}
	e.ID = ce.Source + "/" + ce.ID
	if utf8.RuneCountInString(e.ID) > journey.IDMaxChars {
		sum := sha256.Sum256([]byte(e.ID))
		e.ID = "ce:" + base64.RawURLEncoding.EncodeToString(sum[:])
		data["ce_source"], _ = json.Marshal(ce.Source)
	}
	if len(data) > 0 {
		e.Data, _ = json.Marshal(data)
	}
	if r := journey.ValidateInbound(&e); r != nil {
		return e, ce.ID, r
	}
	return e, ce.ID, nil
}

func takeString(data map[string]json.RawMessage, key string, dst *string) *journey.Rejection {
	raw, ok := data[key]
	if !ok {
		return nil
	}
	if json.Unmarshal(raw, dst) != nil {
		return journey.Rejectf(journey.CodeBadRequest, "data.%s must be a string", key)
	}
	delete(data, key)
	return nil
}

// toCloudEvent renders a stored event as a CloudEvent for timeline reads.
func toCloudEvent(e journey.Event) cloudEvent {
	data := map[string]any{}
	if len(e.Data) > 0 {
		_ = json.Unmarshal(e.Data, &data)
	}
	if e.Text != "" {
		data["text"] = e.Text
	}
	if e.Channel != "" {
		data["channel"] = e.Channel
	}
	if len(e.Identity) > 0 {
		data["identity"] = e.Identity
	}
	d, _ := json.Marshal(data)
	recorded := e.RecordedAt
	occurred := &recorded // CloudEvents time: when it happened, the client's time when it gave one
	if e.Time != nil {
		occurred = e.Time
	}
	return cloudEvent{
		SpecVersion: "1.0", ID: e.ID, Source: "/throughline/customers/" + e.Customer, Type: e.Type,
		Subject: e.Customer, Time: occurred, DataContentType: "application/json", Data: d,
		Seq: e.Seq, Actor: e.Actor, RecordedAt: &recorded,
	}
}

// postCloudEventBatch answers a cloudevents-batch body like {"events":[...]}.
func (s *Server) postCloudEventBatch(w http.ResponseWriter, r *http.Request, body []byte, start time.Time) {
	raws, rej := decodeCloudEventBatch(body)
	if rej != nil {
		writeError(w, rej)
		return
	}
	events := make([]journey.Event, len(raws))
	ackIDs := make([]string, len(raws))
	rejs := make([]*journey.Rejection, len(raws))
	for i, raw := range raws {
		events[i], ackIDs[i], rejs[i] = decodeStructuredCloudEvent(raw)
	}
	s.answerMany(w, r, events, ackIDs, rejs, start)
}
