package templates

import (
	"html"
	"strings"
	"unicode/utf8"
)

// htmlToText turns rendered HTML into a readable plain-text part: block
// elements become lines and paragraphs, list items get "- ", links are
// written "text (url)", entities are decoded, and head, style, script and
// hidden elements (the preheader) are left out. Like the link rewriter it
// scans tags instead of building a tree.
func htmlToText(src string) string {
	w := textWriter{b: make([]byte, 0, len(src)/2)}
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
		end, attrs := scanTag(src, nameEnd, w.attrs[:0])
		if end < 0 {
			break
		}
		w.attrs = attrs
		w.tag(strings.ToLower(name), closing, attrs)
		i = end
	}
	return w.String()
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
	// Runs of ASCII without spaces are copied at once: this loop sees every
	// byte of every message whose text part is generated.
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
			for j < len(s) && s[j] > ' ' && s[j] < utf8.RuneSelf {
				j++
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

var hiddenElements = map[string]bool{"head": true, "style": true, "script": true, "title": true, "template": true}

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
	if !closing && (hiddenElements[name] || hidden(attrs)) && !voidElement(name) {
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
	label := strings.TrimSpace(string(w.b[w.linkAt:]))
	switch {
	case label == "":
		w.b = append(w.b, u...)
	case label != shown && label != u:
		w.b = append(w.b, " ("...)
		w.b = append(w.b, shown...)
		w.b = append(w.b, ')')
	}
}

func (w *textWriter) String() string {
	return strings.TrimSpace(string(w.b)) + "\n"
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
		switch {
		case strings.EqualFold(a.name, "aria-hidden") && strings.EqualFold(a.val, "true"):
			return true
		case strings.EqualFold(a.name, "hidden"):
			return true
		case strings.EqualFold(a.name, "style"):
			v := strings.ToLower(strings.ReplaceAll(a.val, " ", ""))
			if strings.Contains(v, "display:none") {
				return true
			}
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
