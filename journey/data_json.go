package journey

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/throughline/throughline/internal/jsonenc"
)

// jsonAppender is event data that writes its own JSON, byte for byte what
// encoding/json writes for it (data_json_test.go compares them): the data
// a broadcast records for every target, 10,000 a second, where
// reflection was a tenth of the step. False when it cannot (a rare field
// set), and encoding/json writes it.
type jsonAppender interface {
	appendJSON(b []byte) ([]byte, bool)
}

// marshalData is the JSON of an event's data. An appender writes it in
// scratch (which keeps the grown array) and the result is a copy of just
// its length: a fresh guess at the size either wasted its rest or grew
// once or twice on the way (a seventh of a broadcast target's bytes).
func marshalData(data any, scratch *[]byte) ([]byte, error) {
	if a, ok := data.(jsonAppender); ok {
		if cap(*scratch) == 0 {
			*scratch = make([]byte, 0, 512)
		}
		if b, ok := a.appendJSON((*scratch)[:0]); ok {
			*scratch = b
			return bytes.Clone(b), nil
		}
	}
	return json.Marshal(data)
}

// object writes a JSON object's fields in order.
type object struct {
	b    []byte
	some bool
}

func (o *object) key(name string) {
	if o.some {
		o.b = append(o.b, ',')
	} else {
		o.b = append(o.b, '{')
	}
	o.some = true
	o.b = append(o.b, '"')
	o.b = append(o.b, name...)
	o.b = append(o.b, '"', ':')
}

func (o *object) str(name, v string) {
	o.key(name)
	o.b = jsonenc.AppendString(o.b, v)
}

func (o *object) strOmit(name, v string) {
	if v != "" {
		o.str(name, v)
	}
}

func (o *object) trueOmit(name string, v bool) {
	if v {
		o.key(name)
		o.b = append(o.b, "true"...)
	}
}

func (o *object) uintOmit(name string, v uint64) {
	if v != 0 {
		o.key(name)
		o.b = strconv.AppendUint(o.b, v, 10)
	}
}

func (o *object) addressOmit(name string, a address) {
	if len(a) > 0 {
		o.key(name)
		o.b = jsonenc.AppendStringMap(o.b, a)
	}
}

// timeOmit writes t as time.Time's MarshalJSON does; false when that
// would fail (a year outside 0-9999, a zone offset of a day or more).
func (o *object) timeOmit(name string, t time.Time) bool {
	if t.IsZero() {
		return true
	}
	if y := t.Year(); y < 0 || y > 9999 {
		return false
	}
	if _, offset := t.Zone(); offset <= -24*3600 || offset >= 24*3600 {
		return false // encoding/json refuses such a zone
	}
	o.key(name)
	o.b = append(o.b, '"')
	o.b = t.AppendFormat(o.b, time.RFC3339Nano)
	o.b = append(o.b, '"')
	return true
}

func (o *object) end() []byte {
	if !o.some {
		return append(o.b, '{', '}')
	}
	return append(o.b, '}')
}

func (d proactiveData) appendJSON(b []byte) ([]byte, bool) {
	o := object{b: b}
	o.strOmit("rule", d.Rule)
	o.strOmit("offer", d.Offer)
	o.strOmit("channel", d.Channel)
	o.addressOmit("to", d.To)
	o.strOmit("reason", d.Reason)
	o.strOmit("outbound", d.Outbound)
	o.uintOmit("held", d.Held)
	if !o.timeOmit("release", d.Release) || !o.timeOmit("expires", d.Expires) {
		return nil, false
	}
	o.strOmit("broadcast", d.Broadcast)
	o.trueOmit("callback_offer", d.CallbackOffer)
	return o.end(), true
}

func (d messageSent) appendJSON(b []byte) ([]byte, bool) {
	if d.Thread != nil {
		return nil, false
	}
	o := object{b: b}
	o.str("outbound", d.Outbound)
	o.strOmit("conversation", d.Conversation)
	o.addressOmit("to", d.To)
	o.trueOmit("proactive", d.Proactive)
	o.trueOmit("redacted", d.Redacted)
	o.strOmit("ref", d.Ref)
	return o.end(), true
}
