package templates

import (
	"html"
	"net/url"
	"strings"

	"github.com/funnel-email/funnel/token"
)

// linker rewrites the links of one message and numbers them.
type linker struct {
	c           *Compiled
	delivery    int64
	unsubscribe string
	view        string
	links       []Link
	scratch     []byte
	attrs       []attr
}

func (c *Compiled) newLinker(delivery int64) *linker {
	l := &linker{c: c, delivery: delivery, scratch: make([]byte, 0, 64)}
	l.unsubscribe = l.url(PathUnsubscribe, token.Token{Kind: token.Unsubscribe, Delivery: delivery})
	l.view = l.url(PathView, token.Token{Kind: token.View, Delivery: delivery})
	return l
}

// url returns PublicURL + path + the encoded token.
func (l *linker) url(path string, t token.Token) string {
	b := append(l.scratch[:0], l.c.opts.PublicURL...)
	b = append(b, path...)
	b = l.c.opts.Codec.AppendEncode(b, t)
	l.scratch = b
	return string(b)
}

func (l *linker) clickURL(index int) string {
	return l.url(PathClick, token.Token{Kind: token.Click, Delivery: l.delivery, Link: index})
}

// track returns the tracked URL for raw, an href or a URL found in text,
// or "" when raw must be left alone.
func (l *linker) track(raw, intent string) string {
	u := strings.TrimSpace(raw)
	if strings.IndexByte(u, '&') >= 0 {
		u = html.UnescapeString(u)
	}
	if !hasHTTPScheme(u) || u == l.unsubscribe || u == l.view {
		return ""
	}
	for i := range l.links {
		if l.links[i].URL == u {
			if l.links[i].Intent == "" {
				l.links[i].Intent = intent
			}
			return l.clickURL(l.links[i].Index)
		}
	}
	// Only URLs a browser would open with a host may become a redirect
	// target; anything else is left as written.
	if p, err := url.Parse(u); err != nil || p.Host == "" || p.User != nil {
		return ""
	}
	idx := len(l.links) + 1
	l.links = append(l.links, Link{Index: idx, URL: u, Intent: intent})
	return l.clickURL(idx)
}

func hasHTTPScheme(u string) bool {
	return (len(u) > 7 && strings.EqualFold(u[:7], "http://")) || (len(u) > 8 && strings.EqualFold(u[:8], "https://"))
}

// rewriteHTML rewrites the href of every <a> tag. It scans for tags rather
// than parsing the document: the renderer's output is well-formed enough,
// and a full parse per message would cost more than the rest of sending.
func (l *linker) rewriteHTML(src string) string {
	var out []byte
	last := 0
	for i := 0; i < len(src); {
		j := indexAnchor(src, i)
		if j < 0 {
			break
		}
		end, attrs := scanTag(src, j+2, l.attrs[:0])
		if end < 0 {
			break
		}
		l.attrs = attrs
		if repl, ok := l.rewriteTag(src, j, end, attrs); ok {
			if out == nil {
				out = make([]byte, 0, len(src)+len(src)/8)
			}
			out = append(out, src[last:j]...)
			out = append(out, repl...)
			last = end
		}
		i = end
	}
	if out == nil {
		return src
	}
	return string(append(out, src[last:]...))
}

// indexAnchor returns the index of the next "<a" tag at or after i.
func indexAnchor(s string, i int) int {
	for i < len(s) {
		k := strings.IndexByte(s[i:], '<')
		if k < 0 {
			return -1
		}
		i += k
		if i+2 < len(s) && (s[i+1] == 'a' || s[i+1] == 'A') && isTagSpace(s[i+2]) {
			return i
		}
		i++
	}
	return -1
}

func isTagSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '/' || c == '>'
}

// attr is one attribute of a tag, as offsets into the source.
type attr struct {
	start, end int // the whole attribute
	name       string
	val        string // the raw value, quotes removed
}

// scanTag reads the attributes of a tag whose name ends at i. It returns
// the index just past '>', or -1 when the tag is not closed.
func scanTag(s string, i int, attrs []attr) (int, []attr) {
	for i < len(s) {
		for i < len(s) && isTagSpace(s[i]) && s[i] != '>' {
			i++
		}
		if i >= len(s) {
			break
		}
		if s[i] == '>' {
			return i + 1, attrs
		}
		a := attr{start: i}
		for i < len(s) && !isTagSpace(s[i]) && s[i] != '=' {
			i++
		}
		a.name = s[a.start:i]
		if i < len(s) && s[i] == '=' {
			i++
			if i < len(s) && (s[i] == '"' || s[i] == '\'') {
				q := strings.IndexByte(s[i+1:], s[i])
				if q < 0 {
					return -1, nil
				}
				a.val, i = s[i+1:i+1+q], i+q+2
			} else {
				v := i
				for i < len(s) && s[i] != '>' && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' {
					i++
				}
				a.val = s[v:i]
			}
		}
		a.end = i
		attrs = append(attrs, a)
	}
	return -1, nil
}

// rewriteTag returns the replacement for the <a> tag src[start:end], or
// false when it stays as it is.
func (l *linker) rewriteTag(src string, start, end int, attrs []attr) (string, bool) {
	href, notrack, funnelAttrs := -1, false, false
	intent := ""
	for i, a := range attrs {
		switch {
		case strings.EqualFold(a.name, "href") && href < 0:
			href = i
		case strings.EqualFold(a.name, "data-funnel-notrack"):
			notrack, funnelAttrs = true, true
		case strings.EqualFold(a.name, "data-funnel-intent"):
			intent, funnelAttrs = cleanIntent(a.val), true
		case len(a.name) > 12 && strings.EqualFold(a.name[:12], "data-funnel-"):
			funnelAttrs = true
		}
	}
	tracked := ""
	if href >= 0 && !notrack {
		tracked = l.track(attrs[href].val, intent)
	}
	if tracked == "" && !funnelAttrs {
		return "", false
	}
	var b strings.Builder
	b.Grow(end - start + len(tracked))
	b.WriteString("<a")
	for i, a := range attrs {
		switch {
		case len(a.name) > 12 && strings.EqualFold(a.name[:12], "data-funnel-"):
			continue
		case i == href && tracked != "":
			b.WriteString(` href="`)
			b.WriteString(tracked) // tokens and PublicURL need no escaping
			b.WriteByte('"')
		default:
			b.WriteByte(' ')
			b.WriteString(src[a.start:a.end])
		}
	}
	b.WriteByte('>')
	return b.String(), true
}

// cleanIntent keeps an intent tag to lower-case letters, digits, '-' and
// '_', at most 32 of them; anything else is dropped.
func cleanIntent(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) > 32 {
		return ""
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return ""
		}
	}
	return s
}

// rewriteText rewrites every http(s) URL of a text part.
func (l *linker) rewriteText(src string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(src); {
		k := strings.Index(src[i:], "http")
		if k < 0 {
			break
		}
		start := i + k
		end := urlEnd(src, start)
		if end == start || !hasHTTPScheme(src[start:end]) {
			i = start + 4
			continue
		}
		if tracked := l.track(src[start:end], ""); tracked != "" {
			if b.Len() == 0 {
				b.Grow(len(src) + 256)
			}
			b.WriteString(src[last:start])
			b.WriteString(tracked)
			last = end
		}
		i = end
	}
	if last == 0 {
		return src
	}
	b.WriteString(src[last:])
	return b.String()
}

// urlEnd returns where a URL starting at i ends in plain text: at a space,
// a quote or an angle bracket, without trailing punctuation and without a
// closing parenthesis that it did not open ("see Docs (https://x.io/a).").
func urlEnd(s string, i int) int {
	end := i
	for end < len(s) && s[end] > ' ' && s[end] != '<' && s[end] != '>' && s[end] != '"' && s[end] != '\'' && s[end] != 0x7f {
		end++
	}
	for end > i {
		c := s[end-1]
		if strings.IndexByte(".,;:!?", c) >= 0 {
			end--
			continue
		}
		if c == ')' && strings.Count(s[i:end], "(") < strings.Count(s[i:end], ")") {
			end--
			continue
		}
		break
	}
	return end
}

// finishHTML adds the hidden honeypot link and the open pixel before
// </body>, or at the end when there is none. The honeypot has no text,
// is hidden from view and from screen readers and cannot take focus, so
// only machines that fetch every URL follow it.
func (l *linker) finishHTML(s string) string {
	honeypot := l.clickURL(token.HoneypotLink)
	pixel := l.url(PathOpen, token.Token{Kind: token.Open, Delivery: l.delivery})
	at := lastIndexFold(s, "</body")
	if at < 0 {
		at = len(s)
	}
	var b strings.Builder
	b.Grow(len(s) + 400)
	b.WriteString(s[:at])
	b.WriteString(`<a href="`)
	b.WriteString(honeypot)
	b.WriteString(`" aria-hidden="true" tabindex="-1" style="display:none;font-size:0;line-height:0;max-height:0;overflow:hidden;mso-hide:all;"></a>`)
	b.WriteString(`<img src="`)
	b.WriteString(pixel)
	b.WriteString(`" width="1" height="1" alt="" aria-hidden="true" style="display:block;width:1px;height:1px;border:0;">`)
	b.WriteString(s[at:])
	return b.String()
}

func lastIndexFold(s, sub string) int {
	for i := len(s) - len(sub); i >= 0; i-- {
		if s[i] == '<' && strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}
