package campaign

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxRuleText bounds the text form of a rule, in bytes.
const MaxRuleText = 64 << 10

// maxParseDepth stops runaway nesting while parsing; Validate applies the
// real limit, MaxRuleDepth, with a JSON path.
const maxParseDepth = 64

// ParseRule reads the text form of a rule (see [Segment]). It checks the
// syntax, not the meaning: call [Rule.Validate] on the result. Errors are
// EINVALID *Error values whose detail carries the 1-based line and column
// (in characters) of the problem.
func ParseRule(text string) (*Rule, error) {
	if len(text) > MaxRuleText {
		return nil, Invalid("invalid segment rule", FieldError{Field: "rule", Line: 1, Column: 1, Message: fmt.Sprintf("longer than %d bytes", MaxRuleText)})
	}
	p := &parser{lex: lexer{src: text, line: 1, col: 1}}
	p.next()
	r := p.or()
	if p.err == nil && p.tok.kind != tEOF {
		p.fail(p.tok, "expected and, or, or the end of the rule, found %s", p.tok)
	}
	if p.err != nil {
		return nil, Invalid("invalid segment rule", *p.err)
	}
	return r, nil
}

type tokenKind int

const (
	tEOF    tokenKind = iota
	tIdent            // a keyword or field name
	tAttr             // attr.KEY; text is KEY
	tString           // text is the unquoted value
	tNumber           // text is the literal
	tDays             // 30d; text is the digits
	tPunct            // ( ) [ ] , : = != > >= < <=
)

type token struct {
	kind      tokenKind
	text      string
	line, col int
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "the end of the rule"
	case tString:
		return "a string"
	case tAttr:
		return strconv.Quote("attr." + clip(t.text))
	case tDays:
		return strconv.Quote(t.text + "d")
	}
	return strconv.Quote(clip(t.text))
}

type lexer struct {
	src       string
	pos       int
	line, col int
}

func (l *lexer) peek() byte {
	if l.pos < len(l.src) {
		return l.src[l.pos]
	}
	return 0
}

// advance moves past one character, keeping line and column.
func (l *lexer) advance() {
	_, size := utf8.DecodeRuneInString(l.src[l.pos:])
	if l.src[l.pos] == '\n' {
		l.line, l.col = l.line+1, 1
	} else {
		l.col++
	}
	l.pos += size
}

func isIdentStart(c byte) bool { return c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') }
func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isIdent(c byte) bool      { return isIdentStart(c) || isDigit(c) }

// scan returns the next token, or an error message positioned at tok.
func (l *lexer) scan() (token, string) {
	for l.pos < len(l.src) && strings.IndexByte(" \t\r\n", l.src[l.pos]) >= 0 {
		l.advance()
	}
	tok := token{line: l.line, col: l.col}
	if l.pos >= len(l.src) {
		return tok, ""
	}
	start := l.pos
	c := l.peek()
	switch {
	case isIdentStart(c):
		for l.pos < len(l.src) && isIdent(l.peek()) {
			l.advance()
		}
		tok.kind, tok.text = tIdent, l.src[start:l.pos]
		if tok.text == "attr" && l.peek() == '.' {
			l.advance()
			keyStart := l.pos
			for l.pos < len(l.src) && (isIdent(l.peek()) || l.peek() == '-') {
				l.advance()
			}
			tok.kind, tok.text = tAttr, l.src[keyStart:l.pos]
		}
		return tok, ""
	case c == '"':
		return l.string(tok)
	case isDigit(c) || (c == '-' && l.pos+1 < len(l.src) && isDigit(l.src[l.pos+1])):
		return l.number(tok)
	}
	for _, p := range []string{"!=", ">=", "<=", "(", ")", "[", "]", ",", ":", "=", ">", "<"} {
		if strings.HasPrefix(l.src[l.pos:], p) {
			for range p {
				l.advance()
			}
			tok.kind, tok.text = tPunct, p
			return tok, ""
		}
	}
	r, _ := utf8.DecodeRuneInString(l.src[l.pos:])
	return tok, fmt.Sprintf("unexpected character %q", r)
}

func (l *lexer) string(tok token) (token, string) {
	start := l.pos
	l.advance()
	for {
		switch l.peek() {
		case 0:
			if l.pos >= len(l.src) {
				return tok, "the string is not closed: add a \""
			}
		case '\n':
			return tok, "the string is not closed before the end of the line"
		case '\\':
			l.advance()
			if l.pos >= len(l.src) {
				return tok, "the string is not closed: add a \""
			}
		case '"':
			l.advance()
			s, err := strconv.Unquote(l.src[start:l.pos])
			if err != nil {
				return tok, "the string holds an invalid escape sequence (use Go escapes such as \\\" and \\n)"
			}
			tok.kind, tok.text = tString, s
			return tok, ""
		}
		l.advance()
	}
}

func (l *lexer) number(tok token) (token, string) {
	start := l.pos
	if l.peek() == '-' {
		l.advance()
	}
	digits := func() {
		for l.pos < len(l.src) && isDigit(l.peek()) {
			l.advance()
		}
	}
	digits()
	whole := true
	if l.peek() == '.' {
		whole = false
		l.advance()
		digits()
	}
	if c := l.peek(); c == 'e' || c == 'E' {
		whole = false
		l.advance()
		if c := l.peek(); c == '+' || c == '-' {
			l.advance()
		}
		digits()
	}
	tok.kind, tok.text = tNumber, l.src[start:l.pos]
	if l.peek() == 'd' && whole && tok.text[0] != '-' {
		l.advance()
		tok.kind = tDays
	}
	if isIdent(l.peek()) || l.peek() == '.' {
		return tok, fmt.Sprintf("malformed number %q", l.src[start:l.pos+1])
	}
	if tok.kind == tNumber {
		f, err := strconv.ParseFloat(tok.text, 64)
		if err != nil || math.IsInf(f, 0) {
			return tok, fmt.Sprintf("malformed or too large number %q", clip(tok.text))
		}
	}
	return tok, ""
}

type parser struct {
	lex   lexer
	tok   token
	err   *FieldError
	depth int
}

func (p *parser) fail(at token, format string, args ...any) {
	if p.err == nil {
		p.err = &FieldError{Field: "rule", Line: at.line, Column: at.col, Message: fmt.Sprintf(format, args...)}
	}
	p.tok = token{kind: tEOF, line: at.line, col: at.col} // stop parsing
}

func (p *parser) next() {
	if p.err != nil {
		return
	}
	tok, msg := p.lex.scan()
	p.tok = tok
	if msg != "" {
		p.fail(tok, "%s", msg)
	}
}

func (p *parser) is(kind tokenKind, text string) bool {
	return p.tok.kind == kind && p.tok.text == text
}

// expect consumes a punctuation token or fails.
func (p *parser) expect(text, what string) {
	if !p.is(tPunct, text) {
		p.fail(p.tok, "expected %q %s, found %s", text, what, p.tok)
		return
	}
	p.next()
}

func (p *parser) or() *Rule {
	return p.list("or", p.and, func(rs []*Rule) *Rule { return &Rule{Any: rs} })
}

func (p *parser) and() *Rule {
	return p.list("and", p.unary, func(rs []*Rule) *Rule { return &Rule{All: rs} })
}

// list parses operands separated by the keyword sep and joins two or more
// of them with join.
func (p *parser) list(sep string, operand func() *Rule, join func([]*Rule) *Rule) *Rule {
	rs := []*Rule{operand()}
	for p.err == nil && p.is(tIdent, sep) {
		p.next()
		rs = append(rs, operand())
	}
	if p.err != nil {
		return nil
	}
	if len(rs) == 1 {
		return rs[0]
	}
	return join(rs)
}

func (p *parser) unary() *Rule {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxParseDepth {
		p.fail(p.tok, "the rule nests too deeply")
		return nil
	}
	switch {
	case p.is(tIdent, "not"):
		p.next()
		return &Rule{Not: p.unary()}
	case p.is(tPunct, "("):
		p.next()
		r := p.or()
		p.expect(")", "to close the parenthesis")
		return r
	}
	return p.condition()
}

var textFields = []string{FieldEmail, FieldFirstName, FieldLastName, FieldStatus, FieldCreatedAt, FieldScore, FieldLifecycleStage, FieldTags}

func (p *parser) condition() *Rule {
	tok := p.tok
	switch {
	case tok.kind == tAttr:
		if msg := validAttributeKey(tok.text); msg != "" {
			p.fail(tok, "%s", msg)
			return nil
		}
		p.next()
		return p.comparison(&Rule{Attr: tok.text})
	case tok.kind != tIdent:
		p.fail(tok, "expected a condition, found %s", tok)
		return nil
	case slices.Contains(textFields, tok.text):
		p.next()
		return p.comparison(&Rule{Field: tok.text})
	case tok.text == "tag":
		p.next()
		v := p.tok
		if v.kind != tString {
			p.fail(v, "expected a quoted tag after tag, found %s", v)
			return nil
		}
		p.next()
		return &Rule{Field: FieldTags, Op: OpHas, Value: v.text}
	case EventKind(tok.text).Valid():
		p.next()
		return p.event(&Rule{Event: EventKind(tok.text)})
	case tok.text == "segment":
		p.next()
		p.expect("(", "after segment")
		r := &Rule{Segment: p.positiveInt("a segment ID")}
		p.expect(")", "after the segment ID")
		return r
	}
	p.fail(tok, "unknown field or keyword %s (attributes are written attr.%s)", tok, clip(tok.text))
	return nil
}

// textOps maps the text spelling of operators to operators.
var textOps = map[string]Op{
	"=": OpEq, "!=": OpNe, ">": OpGt, ">=": OpGte, "<": OpLt, "<=": OpLte,
	"contains": OpContains, "starts_with": OpStartsWith, "ends_with": OpEndsWith,
	"in": OpIn, "exists": OpExists, "missing": OpMissing, "before": OpBefore, "after": OpAfter,
	"within": OpWithinLastDays, "has": OpHas, "has_any": OpHasAny, "has_all": OpHasAll, "has_none": OpHasNone,
}

func (p *parser) comparison(r *Rule) *Rule {
	tok := p.tok
	op, ok := textOps[tok.text]
	if tok.kind == tIdent && tok.text == "not" {
		p.next()
		if !p.is(tIdent, "in") {
			p.fail(p.tok, "expected in after not, found %s", p.tok)
			return nil
		}
		op, ok = OpNotIn, true
	}
	if !ok || tok.kind == tString || tok.kind == tAttr {
		p.fail(tok, "expected an operator such as =, !=, >, contains, in, exists or within, found %s", tok)
		return nil
	}
	p.next()
	r.Op = op
	switch op {
	case OpExists, OpMissing:
	case OpWithinLastDays:
		r.Value = float64(p.days())
	case OpIn, OpNotIn, OpHasAny, OpHasAll, OpHasNone:
		r.Value = p.listValue()
	default:
		r.Value = p.scalar()
	}
	return r
}

func (p *parser) scalar() any {
	tok := p.tok
	switch {
	case tok.kind == tString:
		p.next()
		return tok.text
	case tok.kind == tNumber:
		p.next()
		f, _ := strconv.ParseFloat(tok.text, 64) // checked by the lexer
		return f
	case p.is(tIdent, "true"), p.is(tIdent, "false"):
		p.next()
		return tok.text == "true"
	}
	p.fail(tok, "expected a value (a quoted string, a number, true or false), found %s", tok)
	return nil
}

func (p *parser) listValue() any {
	p.expect("[", "to start a list")
	list := []any{}
	for p.err == nil && !p.is(tPunct, "]") {
		if len(list) > 0 {
			p.expect(",", "between list values")
		}
		list = append(list, p.scalar())
	}
	p.expect("]", "to close the list")
	return list
}

// days reads a duration such as 30d.
func (p *parser) days() int {
	tok := p.tok
	if tok.kind != tDays {
		p.fail(tok, "expected a number of days such as 30d, found %s", tok)
		return 0
	}
	n, err := strconv.Atoi(tok.text)
	if err != nil || n < 1 || n > MaxRuleDays {
		p.fail(tok, "the number of days must be between 1 and %d", MaxRuleDays)
		return 0
	}
	p.next()
	return n
}

func (p *parser) positiveInt(what string) int64 {
	tok := p.tok
	n, err := strconv.ParseInt(tok.text, 10, 64)
	if tok.kind != tNumber || err != nil || n < 1 {
		p.fail(tok, "expected %s (a positive whole number), found %s", what, tok)
		return 0
	}
	p.next()
	return n
}

func (p *parser) event(r *Rule) *Rule {
	if !p.is(tPunct, "(") {
		return r
	}
	p.next()
	seen := map[string]bool{}
	for p.err == nil && !p.is(tPunct, ")") {
		if len(seen) > 0 {
			p.expect(",", "between arguments")
		}
		name := p.tok
		if name.kind != tIdent || seen[name.text] {
			p.fail(name, "expected one of campaign, within, link, at_least, include_machine (each once), found %s", name)
			break
		}
		seen[name.text] = true
		p.next()
		p.expect(":", "after "+name.text)
		p.eventArg(r, name)
	}
	p.expect(")", "to close the arguments")
	return r
}

func (p *parser) eventArg(r *Rule, name token) {
	switch name.text {
	case "campaign":
		if p.is(tIdent, "any") {
			p.next()
			return
		}
		r.Campaign = p.positiveInt("a campaign ID or any")
	case "within":
		r.WithinDays = p.days()
	case "link":
		if p.tok.kind != tString {
			p.fail(p.tok, "expected a quoted string after link:, found %s", p.tok)
			return
		}
		r.LinkContains = p.tok.text
		p.next()
	case "at_least":
		n := p.positiveInt("a count")
		r.AtLeast = int(min(n, MaxRuleAtLeast+1))
	case "include_machine":
		if !p.is(tIdent, "true") && !p.is(tIdent, "false") {
			p.fail(p.tok, "expected true or false, found %s", p.tok)
			return
		}
		r.IncludeMachine = p.tok.text == "true"
		p.next()
	default:
		p.fail(name, "unknown argument %s: use campaign, within, link, at_least or include_machine", name)
	}
}

// String prints the rule in the text form. ParseRule of the result yields
// the same tree for every tree ParseRule produces; an all or any with a
// single child prints as that child.
func (r *Rule) String() string {
	var b strings.Builder
	r.print(&b)
	return b.String()
}

func (r *Rule) print(b *strings.Builder) {
	switch r.Kind() {
	case KindAll, KindAny:
		sep := " and "
		if r.Kind() == KindAny {
			sep = " or "
		}
		for i, c := range r.Children() {
			if i > 0 {
				b.WriteString(sep)
			}
			// A nested any needs parentheses for precedence; a nested node
			// of the same kind needs them to keep the tree's shape.
			c.printGrouped(b, c.Kind() == KindAny || c.Kind() == r.Kind())
		}
	case KindNot:
		b.WriteString("not ")
		r.Not.printGrouped(b, r.Not.Kind() == KindAll || r.Not.Kind() == KindAny)
	case KindSegment:
		fmt.Fprintf(b, "segment(%d)", r.Segment)
	case KindEvent:
		r.printEvent(b)
	case KindField, KindAttr:
		r.printCondition(b)
	}
}

func (r *Rule) printGrouped(b *strings.Builder, group bool) {
	if len(r.Children()) == 1 && r.Kind() != KindNot {
		r = r.Children()[0] // prints as its child anyway
		group = r.Kind() == KindAll || r.Kind() == KindAny
	}
	if group {
		b.WriteByte('(')
	}
	r.print(b)
	if group {
		b.WriteByte(')')
	}
}

func (r *Rule) printEvent(b *strings.Builder) {
	b.WriteString(string(r.Event))
	var args []string
	if r.Campaign != 0 {
		args = append(args, fmt.Sprintf("campaign: %d", r.Campaign))
	}
	if r.WithinDays != 0 {
		args = append(args, fmt.Sprintf("within: %dd", r.WithinDays))
	}
	if r.LinkContains != "" {
		args = append(args, "link: "+strconv.Quote(r.LinkContains))
	}
	if r.AtLeast != 0 {
		args = append(args, fmt.Sprintf("at_least: %d", r.AtLeast))
	}
	if r.IncludeMachine {
		args = append(args, "include_machine: true")
	}
	if len(args) > 0 {
		b.WriteString("(" + strings.Join(args, ", ") + ")")
	}
}

var opText = map[Op]string{
	OpEq: "=", OpNe: "!=", OpGt: ">", OpGte: ">=", OpLt: "<", OpLte: "<=",
	OpNotIn: "not in", OpWithinLastDays: "within",
}

func (r *Rule) printCondition(b *strings.Builder) {
	if s, ok := r.Value.(string); ok && r.Field == FieldTags && r.Op == OpHas {
		b.WriteString("tag " + strconv.Quote(s))
		return
	}
	if r.Attr != "" {
		b.WriteString("attr." + r.Attr)
	} else {
		b.WriteString(r.Field)
	}
	op, ok := opText[r.Op]
	if !ok {
		op = string(r.Op)
	}
	b.WriteString(" " + op)
	if r.Value == nil {
		return
	}
	b.WriteByte(' ')
	if days, ok := r.Value.(float64); ok && r.Op == OpWithinLastDays {
		fmt.Fprintf(b, "%dd", int64(days))
		return
	}
	printValue(b, r.Value)
}

func printValue(b *strings.Builder, v any) {
	switch x := v.(type) {
	case string:
		b.WriteString(strconv.Quote(x))
	case float64:
		b.WriteString(strconv.FormatFloat(x, 'g', -1, 64))
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			printValue(b, e)
		}
		b.WriteByte(']')
	default:
		fmt.Fprintf(b, "%v", x)
	}
}
