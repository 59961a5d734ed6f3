package store

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/funnel-email/funnel/campaign"
)

// jsonEncoder encodes attributes and tags for the JSON columns of an
// import. It writes what encoding/json would (sorted keys, the same number
// format) without reflection, which imports of millions of rows notice.
// Each call returns a new slice that the caller may keep.
type jsonEncoder struct {
	keys []string
	buf  []byte
}

func (e *jsonEncoder) attributes(a campaign.Attributes) []byte {
	e.keys = e.keys[:0]
	for k := range a {
		e.keys = append(e.keys, k)
	}
	slices.Sort(e.keys)
	b := append(e.buf[:0], '{')
	for i, k := range e.keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONValue(b, a[k])
	}
	b = append(b, '}')
	e.buf = b
	return slices.Clone(b)
}

func (e *jsonEncoder) tags(tags []string) []byte {
	b := append(e.buf[:0], '[')
	for i, t := range tags {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, t)
	}
	b = append(b, ']')
	e.buf = b
	return slices.Clone(b)
}

func appendJSONValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case string:
		return appendJSONString(b, v)
	case bool:
		return strconv.AppendBool(b, v)
	case float64:
		if abs := math.Abs(v); v == 0 || (abs >= 1e-6 && abs < 1e21) {
			return strconv.AppendFloat(b, v, 'f', -1, 64)
		}
	}
	// Rare values (exponent notation, other types) take the slow path so
	// the output always matches encoding/json.
	j, err := json.Marshal(v)
	if err != nil {
		panic("store: encode attribute: " + err.Error()) // validated values only
	}
	return append(b, j...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as a JSON string. Invalid UTF-8 becomes
// U+FFFD, as with encoding/json.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
