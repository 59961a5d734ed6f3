package campaign

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// A segment is a saved rule that selects contacts. Rules are trees:
//
// # JSON form
//
// Every node is a JSON object holding exactly one of these keys:
//
//	{"all": [RULE, ...]}                     every child matches (at least one child)
//	{"any": [RULE, ...]}                     some child matches (at least one child)
//	{"not": RULE}                            the child does not match
//	{"field": F, "op": OP, "value": V}       a contact field or the tags
//	{"attr": KEY, "op": OP, "value": V}      a custom attribute
//	{"event": KIND, "campaign": ID|"any", "link_contains": S,
//	 "within_days": N, "at_least": N, "include_machine": B}
//	                                         engagement (only "event" is required)
//	{"segment": ID}                          membership of another segment
//
// Fields and their operators:
//
//	email, first_name, last_name  eq, ne, contains, starts_with, ends_with (string); in, not_in (list of strings)
//	status                        eq, ne (a contact status); in, not_in (list of statuses)
//	lifecycle_stage               eq, ne (a stage); in, not_in (list of stages)
//	score                         eq, ne, gt, gte, lt, lte (number)
//	created_at                    before, after ("YYYY-MM-DD", UTC); within_last_days (whole number of days)
//	tags                          has (string); has_any, has_all, has_none (list of strings)
//
// Attributes (KEY as for [ValidAttributeKey]) take every operator: eq and
// ne (string, number or boolean), contains, starts_with and ends_with
// (non-empty string), in and not_in (list of strings or list of numbers),
// exists and missing (no value), gt, gte, lt and lte (number), before and
// after ("YYYY-MM-DD"), within_last_days (days).
//
// # Semantics
//
// Comparisons are typed and exact: an attribute holding the number 12 does
// not equal the string "12", string comparisons are case-sensitive (emails
// and tags are stored lower-cased; tag values in rules are lower-cased and
// trimmed before comparing), and an attribute of the wrong type, or a
// missing one, matches no positive condition. ne and not_in are the
// negations of eq and in, so they match contacts without the attribute.
// Attribute dates are strings that begin with YYYY-MM-DD (a date or an
// RFC 3339 time); only that day is compared. created_at before D means
// before D 00:00 UTC, after D means on or after D+1 00:00 UTC.
// within_last_days N means the last N×24 hours for created_at and events,
// and the days from today−N to today (UTC) for attribute dates.
//
// An engagement condition matches a contact with at least at_least (default
// 1) events of the kind, in the campaign (any campaign when absent), whose
// link contains link_contains (clicks only), within the last within_days
// days (ever when absent). Opens and clicks count only when judged human
// unless include_machine is true; other kinds always count. "Did not open
// campaign 12" is {"not": {"event": "opened", "campaign": 12}}.
//
// # Text form
//
// For people who type, [ParseRule] reads a small language and [Rule.String]
// prints it back:
//
//	attr.country = "DE" and tag "customer" and clicked(campaign: 12, within: 30d) and not unsubscribed
//
//	expr      = and { "or" and }
//	and       = unary { "and" unary }
//	unary     = "not" unary | "(" expr ")" | condition
//	condition = subject op [value]
//	          | "tag" STRING                       (tags has)
//	          | event [ "(" arg { "," arg } ")" ]
//	          | "segment" "(" INT ")"
//	subject   = field | "attr." KEY
//	op        = "=" | "!=" | ">" | ">=" | "<" | "<=" | "contains" | "starts_with" | "ends_with"
//	          | "in" | "not" "in" | "exists" | "missing" | "before" | "after" | "within"
//	          | "has" | "has_any" | "has_all" | "has_none"
//	value     = STRING | NUMBER | "true" | "false" | INT "d" | "[" [value { "," value }] "]"
//	event     = "sent" | "opened" | "clicked" | "bounced" | "unsubscribed" | "complained"
//	arg       = "campaign" ":" (INT | "any") | "within" ":" INT "d" | "link" ":" STRING
//	          | "at_least" ":" INT | "include_machine" ":" ("true" | "false")
//
// Strings are double-quoted with Go escapes. "not" binds tighter than "and",
// which binds tighter than "or". within takes days: `created_at within 30d`.
//
// # Limits
//
// A rule holds at most [MaxRuleNodes] nodes, nests at most [MaxRuleDepth]
// levels, and with the segments it references expanded at most
// [MaxRuleExpandedNodes] nodes; strings hold at most [MaxRuleString]
// characters and lists at most [MaxRuleList] values. Larger rules are
// refused rather than run as slow queries.
type Segment struct {
	ID          int64     `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Rule        *Rule     `json:"rule"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Limits on rules and segments.
const (
	MaxRuleDepth         = 10
	MaxRuleNodes         = 200
	MaxRuleExpandedNodes = 1000
	MaxSegmentNesting    = 5 // segments referencing segments
	MaxRuleString        = 1000
	MaxRuleList          = 100
	MaxRuleDays          = 36500
	MaxRuleAtLeast       = 10000
	MaxSegmentName       = 200
	MaxSegmentDesc       = 2000
)

// Normalize trims the name and description.
func (s *Segment) Normalize() {
	s.Name = strings.TrimSpace(s.Name)
	s.Description = strings.TrimSpace(s.Description)
}

// Validate checks a normalized segment and its rule (see [Rule.Validate])
// and returns an EINVALID *Error that names every problem.
func (s *Segment) Validate(lookup RuleLookup) error {
	var details []FieldError
	switch {
	case s.Name == "":
		details = append(details, FieldError{Field: "name", Message: "is required"})
	case utf8.RuneCountInString(s.Name) > MaxSegmentName:
		details = append(details, FieldError{Field: "name", Message: fmt.Sprintf("longer than %d characters", MaxSegmentName)})
	}
	if utf8.RuneCountInString(s.Description) > MaxSegmentDesc {
		details = append(details, FieldError{Field: "description", Message: fmt.Sprintf("longer than %d characters", MaxSegmentDesc)})
	}
	if s.Rule == nil {
		details = append(details, FieldError{Field: "rule", Message: "is required"})
	} else if err := s.Rule.Validate(s.ID, lookup); err != nil {
		e, ok := asError(err)
		if !ok || e.Code != EINVALID {
			return err
		}
		details = append(details, e.Details...)
	}
	if len(details) > 0 {
		return Invalid("invalid segment", details...)
	}
	return nil
}

// SegmentPatch is a partial update of a segment; nil fields are kept.
type SegmentPatch struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
	Rule        *Rule   `json:"rule"`
}

// Apply applies the patch to s and normalizes it. The caller validates.
func (p *SegmentPatch) Apply(s *Segment) {
	if p.Name != nil {
		s.Name = *p.Name
	}
	if p.Description != nil {
		s.Description = *p.Description
	}
	if p.Rule != nil {
		s.Rule = p.Rule
	}
	s.Normalize()
}

// Op is a comparison operator of a rule condition.
type Op string

// Operators.
const (
	OpEq             Op = "eq"
	OpNe             Op = "ne"
	OpContains       Op = "contains"
	OpStartsWith     Op = "starts_with"
	OpEndsWith       Op = "ends_with"
	OpIn             Op = "in"
	OpNotIn          Op = "not_in"
	OpExists         Op = "exists"
	OpMissing        Op = "missing"
	OpGt             Op = "gt"
	OpGte            Op = "gte"
	OpLt             Op = "lt"
	OpLte            Op = "lte"
	OpBefore         Op = "before"
	OpAfter          Op = "after"
	OpWithinLastDays Op = "within_last_days"
	OpHas            Op = "has"
	OpHasAny         Op = "has_any"
	OpHasAll         Op = "has_all"
	OpHasNone        Op = "has_none"
)

// Fields a rule condition can test.
const (
	FieldEmail          = "email"
	FieldFirstName      = "first_name"
	FieldLastName       = "last_name"
	FieldStatus         = "status"
	FieldCreatedAt      = "created_at"
	FieldScore          = "score"
	FieldLifecycleStage = "lifecycle_stage"
	FieldTags           = "tags"
)

// RuleKind says which of its forms a rule node takes.
type RuleKind string

// Rule kinds; KindInvalid is a node that sets none of the forms.
const (
	KindInvalid RuleKind = ""
	KindAll     RuleKind = "all"
	KindAny     RuleKind = "any"
	KindNot     RuleKind = "not"
	KindField   RuleKind = "field"
	KindAttr    RuleKind = "attr"
	KindEvent   RuleKind = "event"
	KindSegment RuleKind = "segment"
)

// Rule is one node of a segment rule tree; see [Segment] for the language.
// Exactly one form is set: All, Any, Not, Field (+Op, Value), Attr (+Op,
// Value), Event (+ its options) or Segment.
//
// Value holds a string, a float64, a bool, or a []any of strings or of
// float64s — the types encoding/json produces — or nil for exists and
// missing. within_last_days takes a whole float64 number of days.
type Rule struct {
	All []*Rule
	Any []*Rule
	Not *Rule

	Field string
	Attr  string
	Op    Op
	Value any

	Event          EventKind
	Campaign       int64 // 0: any campaign
	LinkContains   string
	WithinDays     int // 0: ever
	AtLeast        int // 0 means 1
	IncludeMachine bool

	Segment int64
}

// Kind reports the node's form, judged by the first set of All, Any, Not,
// Segment, Event, Field and Attr.
func (r *Rule) Kind() RuleKind {
	switch {
	case r == nil:
		return KindInvalid
	case len(r.All) > 0:
		return KindAll
	case len(r.Any) > 0:
		return KindAny
	case r.Not != nil:
		return KindNot
	case r.Segment != 0:
		return KindSegment
	case r.Event != "":
		return KindEvent
	case r.Field != "":
		return KindField
	case r.Attr != "":
		return KindAttr
	}
	return KindInvalid
}

// Segments returns the IDs of the segments r references directly or
// through its children, without following them.
func (r *Rule) Segments() []int64 {
	var ids []int64
	r.walk(func(n *Rule) {
		if n.Segment != 0 {
			ids = append(ids, n.Segment)
		}
	})
	return ids
}

func (r *Rule) walk(fn func(*Rule)) {
	if r == nil {
		return
	}
	fn(r)
	for _, c := range r.All {
		c.walk(fn)
	}
	for _, c := range r.Any {
		c.walk(fn)
	}
	r.Not.walk(fn)
}

// Children returns the node's direct children.
func (r *Rule) Children() []*Rule {
	switch r.Kind() {
	case KindAll:
		return r.All
	case KindAny:
		return r.Any
	case KindNot:
		return []*Rule{r.Not}
	}
	return nil
}

// MinEvents is the number of events an engagement condition needs: AtLeast,
// or 1 when it is not set.
func (r *Rule) MinEvents() int { return max(r.AtLeast, 1) }

// TagValues returns the tag values of a tags condition, lower-cased and
// trimmed as contacts' tags are, in the rule's order.
func (r *Rule) TagValues() []string {
	var raw []any
	switch v := r.Value.(type) {
	case string:
		raw = []any{v}
	case []any:
		raw = v
	}
	out := make([]string, 0, len(raw))
	for _, x := range raw {
		s, _ := x.(string)
		out = append(out, strings.ToLower(strings.TrimSpace(s)))
	}
	return out
}

// RuleDate parses a rule's date value ("YYYY-MM-DD") as midnight UTC.
func RuleDate(v any) (time.Time, bool) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.DateOnly, s)
	return t, err == nil
}

// RuleDays returns a within_last_days value as a whole number of days.
func RuleDays(v any) (int, bool) {
	f, ok := v.(float64)
	if !ok || f != float64(int(f)) || f < 1 || f > MaxRuleDays {
		return 0, false
	}
	return int(f), true
}
