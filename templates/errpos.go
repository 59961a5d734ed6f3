package templates

import (
	"errors"
	htmltemplate "html/template"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/funnel-email/funnel/campaign"
)

// Go's template errors name a line ("template: html:3: ...") and, for
// execution errors, a byte column ("template: html:3:14: executing ...").
var errLocation = regexp.MustCompile(`^(?:html/)?template: ?[^:]*:(\d+):(?:(\d+):)? ?(.*)$`)

// quotedToken finds what a parse error complains about: `function "foo"
// not defined`, `unexpected "}" in operand`, `unexpected <.> in ...`.
var quotedToken = regexp.MustCompile(`"((?:[^"\\]|\\.)*)"|<([^<>]+)>`)

// fieldError turns an error from parsing or executing the template source
// src of field into a FieldError with a line and a column. Go reports only
// the line of parse errors, so the column is found by looking for the
// token the message names inside the actions of that line.
func fieldError(field, src string, err error) campaign.FieldError {
	var he *htmltemplate.Error
	if errors.As(err, &he) && he.Node != nil && he.Name == field {
		line, col := position(src, int(he.Node.Position()))
		return campaign.FieldError{Field: field, Line: line, Column: col, Message: he.Description}
	}
	msg := strings.TrimSpace(err.Error())
	m := errLocation.FindStringSubmatch(msg)
	if m == nil {
		return campaign.FieldError{Field: field, Message: msg}
	}
	line, _ := strconv.Atoi(m[1])
	text := lineText(src, line)
	fe := campaign.FieldError{Field: field, Line: line, Message: cleanMessage(m[3])}
	if m[2] != "" {
		b, _ := strconv.Atoi(m[2])
		fe.Column = 1 + utf8.RuneCountInString(text[:min(b, len(text))])
	} else {
		fe.Column = guessColumn(text, m[3])
	}
	return fe
}

// cleanMessage drops Go's internal prefixes from an execution error:
// `executing "html" at <.Attr>: error calling date: ...` keeps what went
// wrong and at which action.
func cleanMessage(msg string) string {
	if rest, ok := strings.CutPrefix(msg, "executing "); ok {
		if i := strings.Index(rest, " at "); i >= 0 {
			rest = rest[i+4:]
		}
		return rest
	}
	return msg
}

func lineText(src string, line int) string {
	for i := 1; i < line; i++ {
		nl := strings.IndexByte(src, '\n')
		if nl < 0 {
			return ""
		}
		src = src[nl+1:]
	}
	if nl := strings.IndexByte(src, '\n'); nl >= 0 {
		src = src[:nl]
	}
	return src
}

// guessColumn returns the 1-based column of the token that msg names,
// preferring an occurrence inside {{ }} on the line; else the column of the
// last "{{" on the line, which is where an unclosed or malformed action
// starts; else 1.
func guessColumn(text, msg string) int {
	col := func(b int) int { return 1 + utf8.RuneCountInString(text[:b]) }
	if m := quotedToken.FindStringSubmatch(msg); m != nil {
		tok := m[2]
		if m[1] != "" || m[2] == "" {
			if s, err := strconv.Unquote(`"` + m[1] + `"`); err == nil {
				tok = s
			}
		}
		if b := indexInAction(text, tok); b >= 0 {
			return col(b)
		}
	}
	if b := strings.LastIndex(text, "{{"); b >= 0 {
		return col(b)
	}
	return 1
}

// indexInAction returns the byte offset of the first tok that lies after an
// opening "{{" on text, or -1.
func indexInAction(text, tok string) int {
	if tok == "" {
		return -1
	}
	for from := 0; ; {
		open := strings.Index(text[from:], "{{")
		if open < 0 {
			return -1
		}
		start := from + open + 2
		end := strings.Index(text[start:], "}}")
		scope := text[start:]
		if end >= 0 {
			scope = text[start : start+end+2]
		}
		if i := strings.Index(scope, tok); i >= 0 {
			return start + i
		}
		if end < 0 {
			return -1
		}
		from = start + end + 2
	}
}
