package journey

import (
	"encoding/binary"
	"math/bits"
)

// timeline keeps a customer's latest TimelineMax events as their binary
// records (codec.go), back to back in one byte slice, and decodes them when
// they are read (the context, the bot's history, a snapshot: rarely, next
// to how often events are applied).
//
// A resident customer's events were its largest part in pointers: 168
// bytes and eight pointers a slot, a string, a data and an identity map
// each, all of it for the collector to mark on every cycle. One []byte has
// none: a collection sees one object, and never scans it (bench memory:
// scannable heap per customer, README "Memory").
//
// Each entry is its length (uvarint), a flag byte, a code byte for each
// of type, actor and channel when the flag says it is one of the common
// words (timelineWords), then the record with the coded words and, when
// the flag says owned, the customer field left empty (the customer's own
// id, put back when read). Entries before head have left the timeline; they
// are cut when room is needed and they are a quarter of the buffer or more
// (makeRoom).
type timeline struct {
	buf  []byte
	head int // offset of the oldest kept entry
	n    int // entries kept, at most TimelineMax
}

// Flag bits of a timeline entry.
const (
	entryOwned   = 1 << iota // the customer field is the owner's id
	entryType                // a code byte for the type follows
	entryActor               // ... for the actor
	entryChannel             // ... for the channel

	entryWords = entryType | entryActor | entryChannel
)

// wordField is an event's word that an entry may code, with its flag bit.
type wordField struct {
	f   *string
	bit byte
}

// wordFields are e's coded words, in the order of their codes.
func wordFields(e *Event) [3]wordField {
	return [3]wordField{{&e.Type, entryType}, {&e.Actor, entryActor}, {&e.Channel, entryChannel}}
}

// timelineWords are the words most events carry, coded in one byte each
// (the index + 1) instead of up to 27: the timeline is most of a resident
// customer's memory. Append only: nothing outlives the process, but a
// reorder would be a needless change.
var timelineWords = []string{
	ActorCustomer, ActorSystem, ActorAI,
	"chat", "sms", ChannelEmail, "voice", "web", "whatsapp",
	TypeMessageReceived, TypeMessageSent, TypeMessageDelivered, TypeMessageFailed,
	TypeAIReplied, TypeAIKBSearched, TypeRoutingDecided,
	TypeConversationOpened, TypeConversationClosed, TypeCaseOpened, TypeCaseResolved,
	TypeStageChanged, TypeCallbackOffered, TypeCallbackScheduled, TypeTimerArmed, TypeTimerCancelled,
	TypeRuleFired, TypeCustomerTagged, TypeProactiveSent, TypeProactiveSuppressed, TypeProactiveHeld,
	TypeWorkflowStep, TypeAgentOffered, TypeAgentAssigned, TypeAgentTransferred, TypeAgentWrappedUp,
	TypeProfileUpdated, TypeIdentityLinked, TypeOfferAccepted, TypeOfferDeclined,
}

var timelineCodes = func() map[string]byte {
	m := make(map[string]byte, len(timelineWords))
	for i, w := range timelineWords {
		m[w] = byte(i + 1)
	}
	return m
}()

// push appends e, dropping the oldest event past TimelineMax.
func (t *timeline) push(e *Event, owner string) {
	if t.n == TimelineMax {
		_, next := t.entry(t.head)
		t.head = next
		t.n--
	}
	rec := *e
	var head [4]byte
	codes := head[1:1]
	if rec.Customer == owner {
		rec.Customer, head[0] = "", head[0]|entryOwned
	}
	for _, w := range wordFields(&rec) {
		if code, ok := timelineCodes[*w.f]; ok {
			*w.f, head[0] = "", head[0]|w.bit
			codes = append(codes, code)
		}
	}
	body := 1 + len(codes) + EventRecordSize(&rec)
	need := binary.MaxVarintLen32 + body
	if len(t.buf)+need > cap(t.buf) {
		t.makeRoom(need)
	}
	// The record is written after room for its estimated length's varint
	// (EventRecordSize is an estimate) and moved only when its length
	// takes another number of bytes: moving every record to its length
	// was a tenth of push's time.
	at := len(t.buf)
	guess := uvarintLen(uint64(body))
	t.buf = t.buf[:at+guess]
	t.buf = append(t.buf, head[:1+len(codes)]...)
	t.buf = AppendEventRecord(t.buf, &rec)
	n := len(t.buf) - at - guess
	if w := uvarintLen(uint64(n)); w != guess {
		t.buf = append(t.buf, make([]byte, max(w-guess, 0))...) // room to move up, within need
		copy(t.buf[at+w:], t.buf[at+guess:at+guess+n])
		guess = w
	}
	binary.PutUvarint(t.buf[at:], uint64(n))
	t.buf = t.buf[:at+guess+n]
	t.n++
}

// uvarintLen is how many bytes binary.PutUvarint writes for v.
func uvarintLen(v uint64) int {
	return (bits.Len64(v|1) + 6) / 7
}

// makeRoom makes room for need more bytes: by cutting the entries that
// left when they are a quarter of the buffer or more, else in a new buffer
// that holds the kept entries, this one and a quarter more (at least two
// more like it), not double: most customers are resident with a short
// history, and a doubled buffer is half empty. The buffer's capacity is the
// whole of the allocator's size class, so none of it is idle. Growing by an
// eighth held less, but copied the timeline on most events (a tenth of the
// runtime's CPU with 100,000 customers).
func (t *timeline) makeRoom(need int) {
	live := len(t.buf) - t.head
	if t.head >= cap(t.buf)/4 && live+need <= cap(t.buf) {
		t.buf = t.buf[:copy(t.buf, t.buf[t.head:])]
		t.head = 0
		return
	}
	kept := t.buf[t.head:len(t.buf):len(t.buf)]
	t.buf = append(kept, make([]byte, need+max(live/4, 2*need))...)[:live] // zeroes only the new room
	t.head = 0
}

// entry returns the body of the entry at off and the offset of the next.
func (t *timeline) entry(off int) (body []byte, next int) {
	n, w := binary.Uvarint(t.buf[off:])
	return t.buf[off+w : off+w+int(n)], off + w + int(n)
}

// splitEntry parts an entry's body: its flag, its words' codes and the
// record.
func splitEntry(body []byte) (flag byte, codes, rec []byte) {
	flag = body[0]
	k := 1 + bits.OnesCount8(flag&entryWords)
	return flag, body[1:k], body[k:]
}

// decodeEntry decodes an entry's body.
func decodeEntry(body []byte, owner string) (Event, error) {
	flag, codes, rec := splitEntry(body)
	ev, err := DecodeEventRecord(rec)
	if err != nil {
		return ev, err
	}
	if flag&entryOwned != 0 {
		ev.Customer = owner
	}
	for _, w := range wordFields(&ev) {
		if flag&w.bit != 0 {
			*w.f, codes = timelineWords[codes[0]-1], codes[1:]
		}
	}
	return ev, nil
}

// seqAt reads the seq of the entry at off without decoding the rest.
func (t *timeline) seqAt(off int) uint64 {
	body, _ := t.entry(off)
	_, _, rec := splitEntry(body)
	seq, _ := binary.Uvarint(rec[1:]) // after the record's format byte
	return seq
}

// last returns the latest events with seq <= upTo, oldest first, at most n.
func (t *timeline) last(upTo uint64, n int, owner string) []Event {
	offs := make([]int, 0, t.n)
	for off := t.head; off < len(t.buf); {
		if t.seqAt(off) > upTo {
			break // seqs grow along the buffer
		}
		offs = append(offs, off)
		_, off = t.entry(off)
	}
	offs = offs[max(len(offs)-n, 0):]
	out := make([]Event, len(offs))
	for i, off := range offs {
		body, _ := t.entry(off)
		ev, err := decodeEntry(body, owner)
		if err != nil {
			panic("journey: timeline record of " + owner + ": " + err.Error()) // written by push just before
		}
		out[i] = ev
	}
	return out
}
