package campaign

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// RuleLookup returns the rule of the segment with the given ID, or an
// ENOTFOUND error when there is none.
type RuleLookup func(id int64) (*Rule, error)

// valueType is what an operator expects as its value.
type valueType int

const (
	vNone       valueType = iota
	vString               // any string
	vText                 // a non-empty string
	vScalar               // a string, a number or a boolean
	vNumber               // a finite number
	vDate                 // "YYYY-MM-DD"
	vDays                 // a whole number of days
	vList                 // a list of strings or a list of numbers
	vStringList           // a list of strings
	vStatus               // a contact status
	vStatusList           // a list of contact statuses
	vStage                // a lifecycle stage
	vStageList            // a list of lifecycle stages
	vTag                  // a non-empty tag
	vTagList              // a list of non-empty tags
)

var (
	stringFieldOps = map[Op]valueType{OpEq: vString, OpNe: vString, OpContains: vText, OpStartsWith: vText, OpEndsWith: vText, OpIn: vStringList, OpNotIn: vStringList}
	// fieldOps says which operators each field takes and what value they need.
	fieldOps = map[string]map[Op]valueType{
		FieldEmail:          stringFieldOps,
		FieldFirstName:      stringFieldOps,
		FieldLastName:       stringFieldOps,
		FieldStatus:         {OpEq: vStatus, OpNe: vStatus, OpIn: vStatusList, OpNotIn: vStatusList},
		FieldLifecycleStage: {OpEq: vStage, OpNe: vStage, OpIn: vStageList, OpNotIn: vStageList},
		FieldScore:          {OpEq: vNumber, OpNe: vNumber, OpGt: vNumber, OpGte: vNumber, OpLt: vNumber, OpLte: vNumber},
		FieldCreatedAt:      {OpBefore: vDate, OpAfter: vDate, OpWithinLastDays: vDays},
		FieldTags:           {OpHas: vTag, OpHasAny: vTagList, OpHasAll: vTagList, OpHasNone: vTagList},
	}
	attrOps = map[Op]valueType{
		OpEq: vScalar, OpNe: vScalar, OpContains: vText, OpStartsWith: vText, OpEndsWith: vText,
		OpIn: vList, OpNotIn: vList, OpExists: vNone, OpMissing: vNone,
		OpGt: vNumber, OpGte: vNumber, OpLt: vNumber, OpLte: vNumber,
		OpBefore: vDate, OpAfter: vDate, OpWithinLastDays: vDays,
	}
)

// Validate checks the rule tree: forms, fields, operators, value types,
// limits, and that every referenced segment exists (through lookup) without
// a cycle. self is the ID of the segment the rule belongs to (0 for a new
// segment or a preview): a path back to self is a cycle, and lookup is not
// asked for self. It returns an EINVALID *Error whose details carry JSON
// paths such as "rule.all[2].value", or lookup's error when it fails for
// another reason than ENOTFOUND.
func (r *Rule) Validate(self int64, lookup RuleLookup) error {
	v := &validator{self: self, lookup: lookup}
	v.node(r, "rule", 1)
	if v.nodes > MaxRuleNodes {
		v.add("rule", "has %d nodes, more than %d", v.nodes, MaxRuleNodes)
	}
	if v.err != nil {
		return v.err
	}
	if len(v.details) == 0 {
		v.expand(r, "rule", nil)
	}
	if v.err != nil {
		return v.err
	}
	if len(v.details) > 0 {
		return Invalid("invalid segment rule", v.details...)
	}
	return nil
}

type validator struct {
	self    int64
	lookup  RuleLookup
	nodes   int
	details []FieldError
	err     error // a lookup failure that is not the rule's fault
	budget  int   // expanded nodes so far
}

func (v *validator) add(path, format string, args ...any) {
	if len(v.details) < 50 {
		v.details = append(v.details, FieldError{Field: path, Message: fmt.Sprintf(format, args...)})
	}
}

func (v *validator) node(r *Rule, path string, depth int) {
	v.nodes++
	if depth > MaxRuleDepth {
		v.add(path, "nests deeper than %d levels", MaxRuleDepth)
		return
	}
	if r == nil {
		v.add(path, "is empty")
		return
	}
	if n := r.forms(); n != 1 {
		v.add(path, "must hold exactly one of all, any, not, field, attr, event, segment (holds %d)", n)
		return
	}
	switch r.Kind() {
	case KindAll, KindAny:
		kids := r.Children()
		if len(kids) > MaxRuleNodes {
			v.add(path+"."+string(r.Kind()), "holds more than %d rules", MaxRuleNodes)
			return
		}
		for i, c := range kids {
			v.node(c, childPath(path, r, i), depth+1)
		}
	case KindNot:
		v.node(r.Not, childPath(path, r, 0), depth+1)
	case KindField:
		ops, ok := fieldOps[r.Field]
		if !ok {
			v.add(path+".field", "unknown field %q: use email, first_name, last_name, status, created_at, score, lifecycle_stage or tags", clip(r.Field))
			return
		}
		v.condition(r, path, ops)
	case KindAttr:
		if msg := validAttributeKey(r.Attr); msg != "" {
			v.add(path+".attr", "%s", msg)
			return
		}
		v.condition(r, path, attrOps)
	case KindEvent:
		v.event(r, path)
	case KindSegment:
		if r.Segment < 0 {
			v.add(path+".segment", "must be a positive segment ID")
		}
	}
}

// forms counts how many of the node's forms are set.
func (r *Rule) forms() int {
	n := 0
	for _, set := range []bool{r.All != nil, r.Any != nil, r.Not != nil, r.Field != "", r.Attr != "", r.Event != "", r.Segment != 0} {
		if set {
			n++
		}
	}
	if (r.All != nil && len(r.All) == 0) || (r.Any != nil && len(r.Any) == 0) {
		return 0 // an empty list is no rule
	}
	if r.Field == "" && r.Attr == "" && (r.Op != "" || r.Value != nil) {
		n++ // op/value without a subject
	}
	if r.Event == "" && (r.Campaign != 0 || r.LinkContains != "" || r.WithinDays != 0 || r.AtLeast != 0 || r.IncludeMachine) {
		n++ // event options without an event
	}
	return n
}

func (v *validator) condition(r *Rule, path string, ops map[Op]valueType) {
	want, ok := ops[r.Op]
	if !ok {
		names := make([]string, 0, len(ops))
		for op := range ops {
			names = append(names, string(op))
		}
		slices.Sort(names)
		if r.Op == "" {
			v.add(path+".op", "is required: use one of %s", strings.Join(names, ", "))
		} else {
			v.add(path+".op", "operator %q does not apply here: use one of %s", clip(string(r.Op)), strings.Join(names, ", "))
		}
		return
	}
	if msg := checkValue(r.Value, want); msg != "" {
		v.add(path+".value", "%s", msg)
	}
}

func (v *validator) event(r *Rule, path string) {
	if !r.Event.Valid() {
		v.add(path+".event", "unknown event %q: use sent, opened, clicked, bounced, unsubscribed or complained", clip(string(r.Event)))
		return
	}
	if r.Campaign < 0 {
		v.add(path+".campaign", "must be a positive campaign ID or \"any\"")
	}
	if r.LinkContains != "" {
		if r.Event != EventClicked {
			v.add(path+".link_contains", "applies to clicked only")
		} else if msg := checkString(r.LinkContains); msg != "" {
			v.add(path+".link_contains", "%s", msg)
		}
	}
	if r.WithinDays < 0 || r.WithinDays > MaxRuleDays {
		v.add(path+".within_days", "must be between 1 and %d", MaxRuleDays)
	}
	if r.AtLeast < 0 || r.AtLeast > MaxRuleAtLeast {
		v.add(path+".at_least", "must be between 1 and %d", MaxRuleAtLeast)
	}
	if r.IncludeMachine && !r.Event.Judged() {
		v.add(path+".include_machine", "applies to opened and clicked only: other events have no verdict")
	}
}

// checkValue returns what is wrong with value for an operator that wants
// t, or "".
func checkValue(value any, t valueType) string {
	switch t {
	case vNone:
		if value != nil {
			return "must be absent for this operator"
		}
		return ""
	case vString, vText, vTag:
		s, ok := value.(string)
		if !ok {
			return "must be a string"
		}
		if t != vString && strings.TrimSpace(s) == "" {
			return "must not be empty"
		}
		return checkString(s)
	case vScalar:
		switch x := value.(type) {
		case string:
			return checkString(x)
		case float64:
			return checkNumber(x)
		case bool:
			return ""
		}
		return "must be a string, a number or a boolean"
	case vNumber:
		x, ok := value.(float64)
		if !ok {
			return "must be a number"
		}
		return checkNumber(x)
	case vDate:
		if _, ok := RuleDate(value); !ok {
			return "must be a date written YYYY-MM-DD"
		}
		return ""
	case vDays:
		if _, ok := RuleDays(value); !ok {
			return fmt.Sprintf("must be a whole number of days from 1 to %d", MaxRuleDays)
		}
		return ""
	case vStatus:
		if s, ok := value.(string); !ok || !ContactStatus(s).Valid() {
			return "must be one of active, unsubscribed, bounced, complained"
		}
		return ""
	case vStage:
		if s, ok := value.(string); !ok || !LifecycleStage(s).Valid() {
			return "must be one of subscriber, engaged, mql, sql, won, recycled, disqualified"
		}
		return ""
	}
	return checkList(value, t)
}

func checkList(value any, t valueType) string {
	list, ok := value.([]any)
	if !ok {
		return "must be a list"
	}
	if len(list) == 0 || len(list) > MaxRuleList {
		return fmt.Sprintf("must hold 1 to %d values", MaxRuleList)
	}
	elem := map[valueType]valueType{vStringList: vString, vTagList: vTag, vStatusList: vStatus, vStageList: vStage}[t]
	if t == vList {
		// A list of strings or a list of numbers, judged by its first value.
		elem = vString
		if _, num := list[0].(float64); num {
			elem = vNumber
		}
	}
	for i, x := range list {
		if msg := checkValue(x, elem); msg != "" {
			if t == vList {
				msg += " (a list holds strings only or numbers only)"
			}
			return fmt.Sprintf("value %d %s", i+1, msg)
		}
	}
	return ""
}

func checkString(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "must not contain NUL characters"
	case utf8.RuneCountInString(s) > MaxRuleString:
		return fmt.Sprintf("longer than %d characters", MaxRuleString)
	}
	return ""
}

func checkNumber(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "must be a finite number"
	}
	return ""
}

// expand follows segment references depth first, rejecting cycles,
// missing segments, deep nesting and rules that grow too large.
func (v *validator) expand(r *Rule, path string, chain []int64) {
	if r == nil || v.err != nil {
		return
	}
	v.budget++
	if v.budget == MaxRuleExpandedNodes+1 {
		v.add(path, "expands to more than %d nodes with the segments it references", MaxRuleExpandedNodes)
	}
	if v.budget > MaxRuleExpandedNodes {
		return
	}
	for i, c := range r.Children() {
		// Inside a referenced segment, problems are reported at the
		// reference: the user cannot edit the other segment from here.
		p := path
		if len(chain) == 0 {
			p = childPath(path, r, i)
		}
		v.expand(c, p, chain)
	}
	if r.Kind() != KindSegment {
		return
	}
	id := r.Segment
	switch {
	case id == v.self || slices.Contains(chain, id):
		v.add(path+".segment", "segment %d refers back to itself (%s)", id, cycleText(v.self, append(chain, id)))
		return
	case len(chain) >= MaxSegmentNesting:
		v.add(path+".segment", "segments nest deeper than %d levels", MaxSegmentNesting)
		return
	}
	sub, err := v.lookup(id)
	if ErrorCode(err) == ENOTFOUND {
		v.add(path+".segment", "segment %d does not exist", id)
		return
	}
	if err != nil {
		v.err = fmt.Errorf("look up segment %d: %w", id, err)
		return
	}
	v.expand(sub, path, append(chain, id))
}

// childPath is the JSON path of r's i-th child.
func childPath(path string, r *Rule, i int) string {
	if r.Kind() == KindNot {
		return path + ".not"
	}
	return fmt.Sprintf("%s.%s[%d]", path, r.Kind(), i)
}

func cycleText(self int64, chain []int64) string {
	parts := make([]string, 0, len(chain)+1)
	if self != 0 {
		parts = append(parts, fmt.Sprint(self))
	}
	for _, id := range chain {
		parts = append(parts, fmt.Sprint(id))
	}
	return strings.Join(parts, " -> ")
}

// clip shortens user text quoted back in an error message.
func clip(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "..."
}

// asError returns err as *Error when it is one.
func asError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
