package journey

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// encoding/json replaces invalid UTF-8 (and escaped lone surrogates) with
// U+FFFD without a word, so a client's broken bytes would be stored as
// something it never sent. The gateway checks the raw JSON of every event
// before decoding it, and names the field in its bad_request.

// CheckJSONUTF8 reports the first string of raw (a key or a value, at any
// depth) that is not valid UTF-8 or holds an escaped lone surrogate, as a
// bad_request naming its field: "data.text: invalid UTF-8". prefix is put
// before the field names ("" for an event's own fields). Invalid JSON is not
// its concern: it answers nil for what it cannot walk, and the decoder then
// refuses it.
func CheckJSONUTF8(prefix string, raw []byte) *Rejection {
	if utf8.Valid(raw) && !hasSurrogateEscape(raw) {
		return nil // the common case: one pass, no allocation
	}
	s := utf8Scan{b: raw}
	if prefix != "" {
		s.path = append(s.path, prefix)
	}
	switch {
	case s.value(0) == errBadUTF8:
		return reject(CodeBadRequest, "%s", s.where)
	case utf8.Valid(raw):
		return nil // paired surrogate escapes only, or not JSON: the decoder's to refuse
	case prefix == "":
		prefix = "event"
	}
	return reject(CodeBadRequest, "%s: invalid UTF-8", prefix) // not JSON the walk could follow

}

// CheckStringUTF8 is CheckJSONUTF8 for one string field (a header).
func CheckStringUTF8(field, v string) *Rejection {
	if !utf8.ValidString(v) {
		return reject(CodeBadRequest, "%s: invalid UTF-8", field)
	}
	return nil
}

// JSONDepthMax is the deepest nesting CheckJSONUTF8 walks (encoding/json's
// own limit); deeper input is left to the decoder.
const JSONDepthMax = 10000

// fieldNameMaxBytes bounds a key quoted in an error message.
const fieldNameMaxBytes = 64

func hasSurrogateEscape(b []byte) bool {
	for {
		i := bytes.Index(b, []byte(`\u`))
		if i < 0 || i+3 > len(b) {
			return false
		}
		if c := b[i+2]; c == 'd' || c == 'D' {
			return true
		}
		b = b[i+2:]
	}
}

type scanError string

func (e scanError) Error() string { return string(e) }

const (
	errBadUTF8 = scanError("invalid UTF-8")
	errSyntax  = scanError("not JSON")
)

// utf8Scan walks JSON text; path is the field being read.
type utf8Scan struct {
	b     []byte
	i     int
	path  []string
	where string // the message, once a bad string is found
}

func (s *utf8Scan) ws() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

func (s *utf8Scan) fail(what string) error {
	field := "event"
	if len(s.path) > 0 {
		var sb strings.Builder
		for i, p := range s.path {
			if i > 0 && !strings.HasPrefix(p, "[") {
				sb.WriteByte('.')
			}
			sb.WriteString(p)
		}
		field = sb.String()
	}
	s.where = field + ": " + what
	return errBadUTF8
}

func (s *utf8Scan) value(depth int) error {
	if depth > JSONDepthMax {
		return errSyntax
	}
	s.ws()
	if s.i >= len(s.b) {
		return errSyntax
	}
	switch s.b[s.i] {
	case '{':
		return s.object(depth)
	case '[':
		return s.array(depth)
	case '"':
		ok, err := s.str()
		if err != nil {
			return err
		}
		if !ok {
			return s.fail("invalid UTF-8")
		}
		return nil
	default: // a number, true, false or null
		for s.i < len(s.b) && !bytes.ContainsRune([]byte(",}] \t\r\n"), rune(s.b[s.i])) {
			s.i++
		}
		return nil
	}
}

func (s *utf8Scan) object(depth int) error {
	s.i++ // {
	for {
		s.ws()
		if s.i >= len(s.b) {
			return errSyntax
		}
		if s.b[s.i] == '}' {
			s.i++
			return nil
		}
		if s.b[s.i] == ',' {
			s.i++
			s.ws()
		}
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return errSyntax
		}
		start := s.i
		ok, err := s.str()
		if err != nil {
			return err
		}
		if !ok {
			return s.fail("invalid UTF-8 in a key")
		}
		s.path = append(s.path, keyName(s.b[start:s.i]))
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return errSyntax
		}
		s.i++
		if err := s.value(depth + 1); err != nil {
			return err
		}
		s.path = s.path[:len(s.path)-1]
	}
}

func (s *utf8Scan) array(depth int) error {
	s.i++ // [
	for n := 0; ; n++ {
		s.ws()
		if s.i >= len(s.b) {
			return errSyntax
		}
		if s.b[s.i] == ']' {
			s.i++
			return nil
		}
		if s.b[s.i] == ',' {
			s.i++
		}
		s.path = append(s.path, "["+strconv.Itoa(n)+"]")
		if err := s.value(depth + 1); err != nil {
			return err
		}
		s.path = s.path[:len(s.path)-1]
	}
}

// str reads a string at s.i (its opening quote) and reports whether it is
// valid UTF-8 with no lone surrogate escape.
func (s *utf8Scan) str() (bool, error) {
	s.i++ // "
	valid := true
	pendingHigh := false // the last escape was a high surrogate
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return valid && !pendingHigh, nil
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return false, errSyntax
			}
			if s.b[s.i+1] != 'u' {
				if pendingHigh {
					valid = false
				}
				pendingHigh = false
				s.i += 2
				continue
			}
			if s.i+6 > len(s.b) {
				return false, errSyntax
			}
			r, err := strconv.ParseUint(string(s.b[s.i+2:s.i+6]), 16, 16)
			if err != nil {
				return false, errSyntax
			}
			switch {
			case r >= 0xD800 && r < 0xDC00:
				if pendingHigh {
					valid = false
				}
				pendingHigh = true
			case r >= 0xDC00 && r < 0xE000:
				if !pendingHigh {
					valid = false
				}
				pendingHigh = false
			default:
				if pendingHigh {
					valid = false
				}
				pendingHigh = false
			}
			s.i += 6
		case c < utf8.RuneSelf:
			if pendingHigh {
				valid = false
			}
			pendingHigh = false
			s.i++
		default:
			if pendingHigh {
				valid = false
			}
			pendingHigh = false
			r, size := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && size == 1 {
				valid = false
			}
			s.i += size
		}
	}
	return false, errSyntax
}

// keyName is a valid key's text for a field name, cut to fieldNameMaxBytes.
func keyName(quoted []byte) string {
	var k string
	if err := json.Unmarshal(quoted, &k); err != nil {
		k = string(quoted[1 : len(quoted)-1])
	}
	if len(k) > fieldNameMaxBytes {
		k = strings.ToValidUTF8(k[:fieldNameMaxBytes], "") + "…"
	}
	return k
}
