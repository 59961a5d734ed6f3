package templates

import (
	"bytes"
	"html"
	"net/url"
	"slices"
	"strings"

	"github.com/funnel-email/funnel/token"
)

// linker rewrites the links of one message and numbers them. It is
// pooled with its renderState and reset for each render.
type linker struct {
	c           *Compiled
	delivery    int64
	unsubscribe string
	view        string
	links       []Link
	clicks      []string // click URLs by link index, "" until needed
	scratch     []byte
	attrs       []attr
}

func (l *linker) reset(c *Compiled, delivery int64) {
	l.c, l.delivery = c, delivery
	l.links = l.links[:0]
	clear(l.clicks)
	l.clicks = l.clicks[:0]
	l.unsubscribe = l.url(PathUnsubscribe, token.Token{Kind: token.Unsubscribe, Delivery: delivery})
	l.view = l.url(PathView, token.Token{Kind: token.View, Delivery: delivery})
}

// appendURL appends PublicURL + path + the encoded token.
func (l *linker) appendURL(dst []byte, path string, t token.Token) []byte {
	dst = append(dst, l.c.opts.PublicURL...)
	dst = append(dst, path...)
	return l.c.opts.Codec.AppendEncode(dst, t)
}

// url returns PublicURL + path + the encoded token.
func (l *linker) url(path string, t token.Token) string {
	l.scratch = l.appendURL(l.scratch[:0], path, t)
	return string(l.scratch)
}

// clickURL returns the click URL of a link index, signing its token once
// per message however often the link appears.
func (l *linker) clickURL(index int) string {
	for len(l.clicks) <= index {
		l.clicks = append(l.clicks, "")
	}
	if l.clicks[index] == "" {
		l.clicks[index] = l.url(PathClick, token.Token{Kind: token.Click, Delivery: l.delivery, Link: index})
	}
	return l.clicks[index]
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
				l.links[i].Intent = strings.Clone(intent)
			}
			return l.clickURL(l.links[i].Index)
		}
	}
	// Only URLs a browser would open with a host may become a redirect
	// target; anything else is left as written.
	if !l.c.redirectable(u) {
		return ""
	}
	idx := len(l.links) + 1
	// Copies: raw and intent point into the rendered HTML, which Links
	// should not keep alive.
	l.links = append(l.links, Link{Index: idx, URL: strings.Clone(u), Intent: strings.Clone(intent)})
	return l.clickURL(idx)
}

// maxURLCache bounds the URLs a Compiled remembers as redirectable:
// personalized URLs differ per contact and would grow it without end.
const maxURLCache = 512

// redirectable reports whether an http(s) URL has a host and no user
// info. The links of a template are mostly the same for every message, so
// the answers are remembered instead of parsing each URL per message.
func (c *Compiled) redirectable(u string) bool {
	if ok, found := c.urls.Load(u); found {
		return ok.(bool)
	}
	p, err := url.Parse(u)
	ok := err == nil && p.Host != "" && p.User == nil
	if c.urlCount.Load() < maxURLCache {
		c.urlCount.Add(1)
		c.urls.Store(strings.Clone(u), ok)
	}
	return ok
}

func hasHTTPScheme(u string) bool {
	return (len(u) > 7 && strings.EqualFold(u[:7], "http://")) || (len(u) > 8 && strings.EqualFold(u[:8], "https://"))
}

// appendHTML appends src with the href of every <a> tag rewritten, then
// adds the honeypot link and the open pixel (appendTraps). It scans for
// tags rather than parsing the document: the renderer's output is
// well-formed enough, and a full parse per message would cost more than
// the rest of sending.
func (l *linker) appendHTML(out []byte, src string) []byte {
	start, last := len(out), 0
	anchors := anchorFinder{s: src, upper: -1}
	for i := 0; i < len(src); {
		j := anchors.next(i)
		if j < 0 {
			break
		}
		end, attrs := scanTag(src, j+2, l.attrs[:0])
		if end < 0 {
			break
		}
		l.attrs = attrs
		if href, tracked, ok := l.rewriteTag(attrs); ok {
			out = append(out, src[last:j]...)
			out = appendTag(out, src, attrs, href, tracked)
			last = end
		}
		i = end
	}
	out = append(out, src[last:]...)
	return l.appendTraps(out, start)
}

// anchorFinder finds "<a" tags. Searching for the two bytes lets the
// search run over the document at memory speed instead of stopping at
// every tag.
type anchorFinder struct {
	s     string
	upper int // the next "<A" at or after the last search, -1 unknown, len(s) none
}

// next returns the index of the next "<a" or "<A" tag at or after i, or -1.
func (f *anchorFinder) next(i int) int {
	s := f.s
	for i < len(s) {
		if f.upper < i {
			f.upper = len(s)
			if k := strings.Index(s[i:], "<A"); k >= 0 {
				f.upper = i + k
			}
		}
		j := f.upper
		if k := strings.Index(s[i:j], "<a"); k >= 0 {
			j = i + k
		}
		if j >= len(s) {
			return -1
		}
		if j+2 < len(s) && isTagSpace(s[j+2]) {
			return j
		}
		i = j + 1
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

// rewriteTag decides what becomes of an <a> tag with attrs: ok is false
// when it stays as it is; else attrs[href] (when href >= 0) is to be
// replaced by tracked (when not "") and data-funnel-* attributes dropped.
func (l *linker) rewriteTag(attrs []attr) (href int, tracked string, ok bool) {
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
	if href >= 0 && !notrack {
		tracked = l.track(attrs[href].val, intent)
	}
	return href, tracked, tracked != "" || funnelAttrs
}

// appendTag appends the rewritten <a> tag that rewriteTag decided on.
func appendTag(out []byte, src string, attrs []attr, href int, tracked string) []byte {
	out = append(out, "<a"...)
	for i, a := range attrs {
		switch {
		case len(a.name) > 12 && strings.EqualFold(a.name[:12], "data-funnel-"):
			continue
		case i == href && tracked != "":
			out = append(out, ` href="`...)
			out = append(out, tracked...) // tokens and PublicURL need no escaping
			out = append(out, '"')
		default:
			out = append(out, ' ')
			out = append(out, src[a.start:a.end]...)
		}
	}
	return append(out, '>')
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

// appendText appends the text part src with every http(s) URL rewritten.
func (l *linker) appendText(out, src []byte) []byte {
	last := 0
	for i := 0; i < len(src); {
		k := bytes.Index(src[i:], []byte("http"))
		if k < 0 {
			break
		}
		start := i + k
		end := urlEnd(src, start)
		if end == start || !hasHTTPSchemeBytes(src[start:end]) {
			i = start + 4
			continue
		}
		if tracked := l.track(string(src[start:end]), ""); tracked != "" {
			out = append(out, src[last:start]...)
			out = append(out, tracked...)
			last = end
		}
		i = end
	}
	return append(out, src[last:]...)
}

func hasHTTPSchemeBytes(u []byte) bool {
	return (len(u) > 7 && bytes.EqualFold(u[:7], []byte("http://"))) || (len(u) > 8 && bytes.EqualFold(u[:8], []byte("https://")))
}

// urlEnd returns where a URL starting at i ends in plain text: at a space,
// a quote or an angle bracket, without trailing punctuation and without a
// closing parenthesis that it did not open ("see Docs (https://x.io/a).").
func urlEnd(s []byte, i int) int {
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
		if c == ')' && bytes.Count(s[i:end], []byte("(")) < bytes.Count(s[i:end], []byte(")")) {
			end--
			continue
		}
		break
	}
	return end
}

// appendTraps adds the hidden honeypot link and the open pixel before the
// last </body> of the HTML in out[start:], or at its end when there is
// none. The honeypot has no text, is hidden from view and from screen
// readers and cannot take focus, so only machines that fetch every URL
// follow it.
func (l *linker) appendTraps(out []byte, start int) []byte {
	at := lastIndexFold(out[start:], "</body")
	if at < 0 {
		at = len(out)
	} else {
		at += start
	}
	honeypot := l.clickURL(token.HoneypotLink) // before scratch is reused below
	b := append(l.scratch[:0], `<a href="`...)
	b = append(b, honeypot...)
	b = append(b, `" aria-hidden="true" tabindex="-1" style="display:none;font-size:0;line-height:0;max-height:0;overflow:hidden;mso-hide:all;"></a>`...)
	b = append(b, `<img src="`...)
	b = l.appendURL(b, PathOpen, token.Token{Kind: token.Open, Delivery: l.delivery})
	b = append(b, `" width="1" height="1" alt="" aria-hidden="true" style="display:block;width:1px;height:1px;border:0;">`...)
	l.scratch = b
	return slices.Insert(out, at, b...)
}

func lastIndexFold(s []byte, sub string) int {
	for i := len(s) - len(sub); i >= 0; i-- {
		if s[i] == '<' && bytes.EqualFold(s[i:i+len(sub)], []byte(sub)) {
			return i
		}
	}
	return -1
}
