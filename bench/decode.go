package bench

import "errors"

// Server frame kinds the workload reads (PROTOCOL section 2).
const (
	kindOther = iota // a type added later: ignored
	kindAck
	kindAcks
	kindError
	kindReady
	kindOutbound
)

// nestingMax bounds the depth of a JSON value the decoder skips.
const nestingMax = 64

var errSyntax = errors.New("bench: malformed server frame")

// serverFrame is a decoded server frame. Its byte slices point into the
// message buffer and hold the raw string contents: escapes are not decoded.
// The strings bench compares are ids it made and error codes, which have
// none.
type serverFrame struct {
	kind      int
	id        []byte
	duplicate bool
	code      []byte // error frames
	items     []ackItem
	customer  []byte // outbound frames
	text      []byte // outbound frames, escapes not decoded
}

// ackItem is one item of an `acks` frame.
type ackItem struct {
	id        []byte
	duplicate bool
	failed    bool
	code      []byte
}

// decodeFrame decodes msg into f, reusing f.items. Unknown fields are
// skipped, fields come in any order.
func decodeFrame(msg []byte, f *serverFrame) error {
	*f = serverFrame{items: f.items[:0]}
	s := scanner{b: msg}
	var typ []byte
	s.object(func(key []byte) {
		switch string(key) {
		case "type":
			typ = s.str()
		case "id":
			f.id = s.str()
		case "duplicate":
			f.duplicate = s.boolean()
		case "code":
			f.code = s.str()
		case "customer":
			f.customer = s.str()
		case "text":
			f.text = s.str()
		case "acks":
			f.items = f.items[:0] // a repeated key: the last wins
			s.array(func() {
				var it ackItem
				s.object(func(key []byte) {
					switch string(key) {
					case "id":
						it.id = s.str()
					case "duplicate":
						it.duplicate = s.boolean()
					case "error":
						it.failed = true
						s.object(func(key []byte) {
							if string(key) == "code" {
								it.code = s.str()
							} else {
								s.skip(0)
							}
						})
					default:
						s.skip(0)
					}
				})
				f.items = append(f.items, it)
			})
		default:
			s.skip(0)
		}
	})
	s.space()
	if s.err == nil && s.i != len(s.b) {
		s.err = errSyntax
	}
	if s.err != nil {
		return s.err
	}
	switch string(typ) {
	case "ack":
		f.kind = kindAck
	case "acks":
		f.kind = kindAcks
	case "error":
		f.kind = kindError
	case "ready":
		f.kind = kindReady
	case "outbound":
		f.kind = kindOutbound
	}
	return nil
}

// scanner reads JSON from b. After the first error every method is a no-op
// and err stays set.
type scanner struct {
	b   []byte
	i   int
	err error
}

func (s *scanner) fail() {
	if s.err == nil {
		s.err = errSyntax
	}
	s.i = len(s.b)
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek skips white space and returns the next byte (0 at the end).
func (s *scanner) peek() byte {
	s.space()
	if s.err != nil || s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *scanner) consume(c byte) bool {
	if s.peek() == c {
		s.i++
		return true
	}
	return false
}

// object reads an object, calling member for each key; member must read
// exactly one value. A null reads as an empty object.
func (s *scanner) object(member func(key []byte)) {
	if s.literal("null") {
		return
	}
	if !s.consume('{') {
		s.fail()
		return
	}
	if s.consume('}') {
		return
	}
	for s.err == nil {
		key := s.str()
		if !s.consume(':') {
			s.fail()
			return
		}
		member(key)
		if s.consume(',') {
			continue
		}
		if !s.consume('}') {
			s.fail()
		}
		return
	}
}

// array reads an array, calling elem for each element; elem must read
// exactly one value. A null reads as an empty array.
func (s *scanner) array(elem func()) {
	if s.literal("null") {
		return
	}
	if !s.consume('[') {
		s.fail()
		return
	}
	if s.consume(']') {
		return
	}
	for s.err == nil {
		elem()
		if s.consume(',') {
			continue
		}
		if !s.consume(']') {
			s.fail()
		}
		return
	}
}

// str reads a string and returns its raw contents (escapes not decoded).
func (s *scanner) str() []byte {
	if !s.consume('"') {
		s.fail()
		return nil
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start : s.i-1]
		case c == '\\':
			s.i += 2
		case c < 0x20:
			s.fail()
			return nil
		default:
			s.i++
		}
	}
	s.fail()
	return nil
}

// boolean reads true or false.
func (s *scanner) boolean() bool {
	switch {
	case s.literal("true"):
		return true
	case s.literal("false"):
		return false
	}
	s.fail()
	return false
}

// literal consumes word when it comes next.
func (s *scanner) literal(word string) bool {
	s.space()
	if s.err == nil && len(s.b)-s.i >= len(word) && string(s.b[s.i:s.i+len(word)]) == word {
		s.i += len(word)
		return true
	}
	return false
}

// skip reads and discards one value of any kind.
func (s *scanner) skip(depth int) {
	if depth > nestingMax {
		s.fail()
		return
	}
	switch c := s.peek(); {
	case c == '{':
		s.object(func([]byte) { s.skip(depth + 1) })
	case c == '[':
		s.array(func() { s.skip(depth + 1) })
	case c == '"':
		s.str()
	case c == 't' || c == 'f':
		s.boolean()
	case c == 'n':
		if !s.literal("null") {
			s.fail()
		}
	case c == '-' || (c >= '0' && c <= '9'):
		start := s.i
		for s.i < len(s.b) && isNumberByte(s.b[s.i]) {
			s.i++
		}
		if s.i == start+1 && c == '-' {
			s.fail()
		}
	default:
		s.fail()
	}
}

func isNumberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}
