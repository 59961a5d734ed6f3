package templates

import (
	"bytes"
	"html"
	"slices"
	"strings"
	"unicode/utf8"
)

// htmlToText turns rendered HTML into a readable plain-text part: block
// elements become lines and paragraphs, list items get "- ", links are
// written "text (url)", entities are decoded, and head, style, script and
// hidden elements (the preheader) are left out. Like the link rewriter it
// scans tags instead of building a tree.
func htmlToText(src string) string {
	var w textWriter
	return string(w.convert(src))
}

// convert is htmlToText into w's reused buffer: the result is valid until
// the next call.
func (w *textWriter) convert(src string) []byte {
	w.b = slices.Grow(w.b[:0], len(src)/2)
	w.space, w.newlines, w.skip, w.depth, w.href, w.inLink = false, 0, "", 0, "", false
	for i := 0; i < len(src); {
		lt := strings.IndexByte(src[i:], '<')
		if lt < 0 {
			w.text(src[i:])
			break
		}
		w.text(src[i : i+lt])
		i += lt
		if strings.HasPrefix(src[i:], "<!--") {
			end := strings.Index(src[i+4:], "-->")
			if end < 0 {
				break
			}
			i += 4 + end + 3
			continue
		}
		name, closing, nameEnd := tagName(src, i+1)
		if name == "" {
			w.text("<")
			i++
			continue
		}
		end, attrs := nameEnd+1, w.attrs[:0]
		if nameEnd >= len(src) || src[nameEnd] != '>' { // a tag without attributes needs no scan
			if end, attrs = scanTag(src, nameEnd, attrs); end < 0 {
				break
			}
			w.attrs = attrs
		}
		w.tag(strings.ToLower(name), closing, attrs) // no copy when already lower case
		i = end
	}
	return append(bytes.TrimSpace(w.b), '\n')
}

// tagName reads the name of a tag starting at i (after '<').
func tagName(s string, i int) (name string, closing bool, end int) {
	if i < len(s) && (s[i] == '/' || s[i] == '!') {
		closing = s[i] == '/'
		i++
	}
	start := i
	for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9' && i > start) {
		i++
	}
	return s[start:i], closing, i
}

type textWriter struct {
	b        []byte
	space    bool // a space is pending
	newlines int  // line breaks are pending
	skip     string
	depth    int    // nesting of skip inside itself
	href     string // the open link's URL
	linkAt   int    // where the open link's text starts in b
	inLink   bool
	attrs    []attr // scratch for scanTag
}

func (w *textWriter) text(s string) {
	if w.skip != "" || s == "" {
		return
	}
	if strings.IndexByte(s, '&') >= 0 {
		s = html.UnescapeString(s)
	}
	// Runs of ASCII words with single spaces between them are copied at
	// once (a single space is what flush would write between them): this
	// loop sees every byte of every message whose text part is generated.
	for i := 0; i < len(s); {
		c := s[i]
		if c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' {
			w.space = true
			i++
			continue
		}
		j := i + 1
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if j = i + n; r == '\u00a0' {
				w.space = true
				i = j
				continue
			}
		} else {
			for j+8 <= len(s) && plainWords8(load64(s, j)) && (s[j] != ' ' || s[j-1] != ' ') {
				j += 8
			}
			if s[j-1] == ' ' {
				j-- // the byte loop checks what follows a space
			}
			for j < len(s) {
				if c := s[j]; c > ' ' && c < utf8.RuneSelf {
					j++
				} else if c == ' ' && j+1 < len(s) && s[j+1] > ' ' && s[j+1] < utf8.RuneSelf {
					j += 2
				} else {
					break
				}
			}
		}
		if w.space || w.newlines > 0 {
			w.flush()
		}
		w.b = append(w.b, s[i:j]...)
		i = j
	}
}

// flush writes pending breaks or the pending space before new text.
func (w *textWriter) flush() {
	switch {
	case w.newlines > 0 && len(w.b) > 0:
		for range w.newlines {
			w.b = append(w.b, '\n')
		}
	case w.space && len(w.b) > 0 && w.b[len(w.b)-1] != '\n':
		w.b = append(w.b, ' ')
	}
	w.newlines, w.space = 0, false
}

func (w *textWriter) brk(n int) {
	w.newlines = max(w.newlines, n)
	w.space = false
}

// hiddenElement reports whether an element's content is never shown.
func hiddenElement(name string) bool {
	switch name {
	case "head", "style", "script", "title", "template":
		return true
	}
	return false
}

func (w *textWriter) tag(name string, closing bool, attrs []attr) {
	if w.skip != "" {
		if name == w.skip && closing {
			w.depth--
		} else if name == w.skip {
			w.depth++
		}
		if w.depth == 0 {
			w.skip = ""
		}
		return
	}
	if !closing && (hiddenElement(name) || hidden(attrs)) && !voidElement(name) {
		w.skip, w.depth = name, 1
		return
	}
	switch name {
	case "br":
		w.brk(1)
	case "p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "blockquote", "hr", "pre":
		w.brk(2)
	case "div", "tr", "section", "article", "header", "footer", "center", "dl", "dt", "dd":
		w.brk(1)
	case "li":
		if !closing {
			w.brk(1)
			w.flush()
			w.b = append(w.b, "- "...)
		}
	case "td", "th":
		w.space = true
	case "a":
		w.link(closing, attrs)
	case "img":
		if w.inLink {
			w.text(attrValue(attrs, "alt"))
		}
	}
}

func (w *textWriter) link(closing bool, attrs []attr) {
	if !closing {
		w.flush()
		w.inLink, w.linkAt = true, len(w.b)
		w.href = strings.TrimSpace(html.UnescapeString(attrValue(attrs, "href")))
		return
	}
	if !w.inLink {
		return
	}
	w.inLink = false
	u := w.href
	shown := strings.TrimPrefix(u, "mailto:")
	if !hasHTTPScheme(u) && !strings.HasPrefix(u, "mailto:") {
		return
	}
	label := bytes.TrimSpace(w.b[w.linkAt:])
	switch {
	case len(label) == 0:
		w.b = append(w.b, u...)
	case string(label) != shown && string(label) != u:
		w.b = append(w.b, " ("...)
		w.b = append(w.b, shown...)
		w.b = append(w.b, ')')
	}
}

func attrValue(attrs []attr, name string) string {
	for _, a := range attrs {
		if strings.EqualFold(a.name, name) {
			return a.val
		}
	}
	return ""
}

// hidden reports whether an element is meant to be invisible: the
// preheader, the honeypot and anything marked aria-hidden or display:none.
func hidden(attrs []attr) bool {
	for _, a := range attrs {
		// The length picks the one name an attribute can be, before the
		// costlier comparison.
		switch {
		case len(a.name) == 11 && strings.EqualFold(a.name, "aria-hidden") && strings.EqualFold(a.val, "true"):
			return true
		case len(a.name) == 6 && strings.EqualFold(a.name, "hidden"):
			return true
		case len(a.name) == 5 && strings.EqualFold(a.name, "style") && displayNone(a.val):
			return true
		}
	}
	return false
}

func voidElement(name string) bool {
	switch name {
	case "img", "br", "hr", "meta", "link", "input", "area", "base", "col", "source", "wbr":
		return true
	}
	return false
}

// displayNone reports whether a style holds display:none, in any case and
// with any spaces inside.
func displayNone(style string) bool {
	const want = "display:none"
	// Every match starts at a 'd' or 'D' byte, and most styles have none;
	// no other character lower-cases to 'd'.
	if strings.IndexByte(style, 'd') < 0 && strings.IndexByte(style, 'D') < 0 {
		return false
	}
	for i := 0; i < len(style); i++ {
		if style[i] >= utf8.RuneSelf {
			// Lower-casing may turn other letters into ASCII ones
			// (U+0130 into 'i'): leave that to the general rule.
			return strings.Contains(strings.ToLower(strings.ReplaceAll(style, " ", "")), want)
		}
	}
	for i := 0; i+len(want) <= len(style); i++ {
		if style[i]|0x20 != 'd' {
			continue
		}
		k := 0
		for j := i; j < len(style) && k < len(want); j++ {
			c := style[j]
			if c == ' ' {
				continue
			}
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != want[k] {
				break
			}
			k++
		}
		if k == len(want) {
			return true
		}
	}
	return false
}

// plainWords8 reports whether the eight bytes packed in x are printable
// ASCII or spaces with no two spaces next to each other. It may report
// false for bytes that are so; never true for bytes that are not.
func plainWords8(x uint64) bool {
	const (
		ones = 0x0101010101010101
		low7 = 0x7f7f7f7f7f7f7f7f
		high = 0x8080808080808080
	)
	// A byte below 0x20 wraps when 0x20 is taken from it, one above 0x7e
	// reaches the high bit when 1 is added (or has it already); borrows
	// and carries between bytes only come from such bytes.
	outside := ((x - ones*0x20) | (x + ones) | x) & high
	sp := x ^ (ones * ' ')
	spaces := ^(((sp & low7) + low7) | sp | low7) // exactly the high bit of each space
	return outside|(spaces&(spaces<<8)) == 0
}

// load64 reads s[i:i+8] as a little-endian word; the compiler turns it
// into one load.
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}
