package campaign

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// formKeys lists, for each form, the keys its JSON object may hold; the
// first one is the form's own key.
var formKeys = map[RuleKind][]string{
	KindAll:     {"all"},
	KindAny:     {"any"},
	KindNot:     {"not"},
	KindField:   {"field", "op", "value"},
	KindAttr:    {"attr", "op", "value"},
	KindEvent:   {"event", "campaign", "link_contains", "within_days", "at_least", "include_machine"},
	KindSegment: {"segment"},
}

var formOrder = []RuleKind{KindAll, KindAny, KindNot, KindField, KindAttr, KindEvent, KindSegment}

// MarshalJSON encodes the rule in the JSON form described at [Segment].
func (r *Rule) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	switch k := r.Kind(); k {
	case KindAll:
		m["all"] = r.All
	case KindAny:
		m["any"] = r.Any
	case KindNot:
		m["not"] = r.Not
	case KindSegment:
		m["segment"] = r.Segment
	case KindEvent:
		r.eventJSON(m)
	case KindField, KindAttr:
		m[string(k)] = r.Field + r.Attr
		m["op"] = r.Op
		if r.Value != nil {
			m["value"] = r.Value
		}
	default:
		return nil, fmt.Errorf("encode rule: the node holds no rule")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

func (r *Rule) eventJSON(m map[string]any) {
	m["event"] = r.Event
	m["campaign"] = "any"
	if r.Campaign != 0 {
		m["campaign"] = r.Campaign
	}
	if r.LinkContains != "" {
		m["link_contains"] = r.LinkContains
	}
	if r.WithinDays != 0 {
		m["within_days"] = r.WithinDays
	}
	if r.AtLeast != 0 {
		m["at_least"] = r.AtLeast
	}
	if r.IncludeMachine {
		m["include_machine"] = true
	}
}

// UnmarshalJSON decodes the JSON form described at [Segment]. It checks the
// shape only (objects, known keys, JSON types, depth and size) and returns
// an EINVALID *Error whose details carry paths rooted at "rule"; call
// [Rule.Validate] for the rest.
func (r *Rule) UnmarshalJSON(data []byte) error {
	d := &ruleDecoder{}
	got := d.node(data, "rule", 1)
	if len(d.details) > 0 {
		return Invalid("invalid segment rule", d.details...)
	}
	*r = *got
	return nil
}

type ruleDecoder struct {
	nodes   int
	details []FieldError
}

func (d *ruleDecoder) add(path, format string, args ...any) {
	if len(d.details) < 50 {
		d.details = append(d.details, FieldError{Field: path, Message: fmt.Sprintf(format, args...)})
	}
}

func (d *ruleDecoder) node(data []byte, path string, depth int) *Rule {
	r := &Rule{}
	d.nodes++
	switch {
	case d.nodes > MaxRuleNodes:
		if d.nodes == MaxRuleNodes+1 {
			d.add(path, "the rule holds more than %d nodes", MaxRuleNodes)
		}
		return r
	case depth > MaxRuleDepth:
		d.add(path, "nests deeper than %d levels", MaxRuleDepth)
		return r
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		d.add(path, "must be a JSON object such as {\"all\": [...]} or {\"attr\": \"country\", \"op\": \"eq\", \"value\": \"DE\"}")
		return r
	}
	kind, ok := d.form(obj, path)
	if !ok {
		return r
	}
	for _, key := range sortedKeys(obj) {
		if !slices.Contains(formKeys[kind], key) {
			d.add(path+"."+clip(key), "unknown key %q in %s rule: it may hold %s", clip(key), articled(kind), strings.Join(formKeys[kind], ", "))
		}
	}
	d.fill(r, kind, obj, path, depth)
	return r
}

// form finds the one form key of obj.
func (d *ruleDecoder) form(obj map[string]json.RawMessage, path string) (RuleKind, bool) {
	var found []RuleKind
	for _, k := range formOrder {
		if _, ok := obj[formKeys[k][0]]; ok {
			found = append(found, k)
		}
	}
	if len(found) != 1 {
		d.add(path, "must hold exactly one of all, any, not, field, attr, event, segment")
		return "", false
	}
	return found[0], true
}

func (d *ruleDecoder) fill(r *Rule, kind RuleKind, obj map[string]json.RawMessage, path string, depth int) {
	switch kind {
	case KindAll, KindAny:
		var raws []json.RawMessage
		key := string(kind)
		if err := json.Unmarshal(obj[key], &raws); err != nil || len(raws) == 0 {
			d.add(path+"."+key, "must be a non-empty list of rules")
			return
		}
		kids := make([]*Rule, len(raws))
		for i, raw := range raws {
			kids[i] = d.node(raw, fmt.Sprintf("%s.%s[%d]", path, key, i), depth+1)
		}
		if kind == KindAll {
			r.All = kids
		} else {
			r.Any = kids
		}
	case KindNot:
		r.Not = d.node(obj["not"], path+".not", depth+1)
	case KindField, KindAttr:
		d.condition(r, kind, obj, path)
	case KindEvent:
		d.event(r, obj, path)
	case KindSegment:
		d.int64(obj, "segment", path, &r.Segment)
	}
}

func (d *ruleDecoder) condition(r *Rule, kind RuleKind, obj map[string]json.RawMessage, path string) {
	subject := &r.Field
	if kind == KindAttr {
		subject = &r.Attr
	}
	d.string(obj, string(kind), path, subject)
	if *subject == "" {
		d.add(path+"."+string(kind), "must not be empty")
	}
	var op string
	d.string(obj, "op", path, &op)
	r.Op = Op(op)
	if raw, ok := obj["value"]; ok {
		if err := json.Unmarshal(raw, &r.Value); err != nil {
			d.add(path+".value", "is not valid JSON")
		}
		if _, isObj := r.Value.(map[string]any); isObj {
			d.add(path+".value", "must be a string, a number, a boolean or a list")
			r.Value = nil
		}
	}
}

func (d *ruleDecoder) event(r *Rule, obj map[string]json.RawMessage, path string) {
	var kind string
	d.string(obj, "event", path, &kind)
	r.Event = EventKind(kind)
	if raw, ok := obj["campaign"]; ok && string(bytes.TrimSpace(raw)) != `"any"` {
		if err := json.Unmarshal(raw, &r.Campaign); err != nil || r.Campaign <= 0 {
			d.add(path+".campaign", "must be a positive campaign ID or \"any\"")
		}
	}
	d.string(obj, "link_contains", path, &r.LinkContains)
	var within, atLeast int64
	d.int64(obj, "within_days", path, &within)
	d.int64(obj, "at_least", path, &atLeast)
	r.WithinDays, r.AtLeast = clampInt(within), clampInt(atLeast)
	if raw, ok := obj["include_machine"]; ok {
		if err := json.Unmarshal(raw, &r.IncludeMachine); err != nil {
			d.add(path+".include_machine", "must be true or false")
		}
	}
}

func (d *ruleDecoder) string(obj map[string]json.RawMessage, key, path string, dst *string) {
	if raw, ok := obj[key]; ok {
		if err := json.Unmarshal(raw, dst); err != nil {
			d.add(path+"."+key, "must be a string")
		}
	}
}

func (d *ruleDecoder) int64(obj map[string]json.RawMessage, key, path string, dst *int64) {
	if raw, ok := obj[key]; ok {
		if err := json.Unmarshal(raw, dst); err != nil {
			d.add(path+"."+key, "must be a whole number")
		} else if *dst <= 0 {
			d.add(path+"."+key, "must be positive")
		}
	}
}

// clampInt keeps an out-of-range count out of int overflow; validation then
// rejects it.
func clampInt(v int64) int {
	return int(min(max(v, -1), 1<<31-1))
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func articled(k RuleKind) string {
	switch k {
	case KindAll, KindAny:
		return "an " + string(k)
	case KindAttr, KindEvent:
		return "an " + string(k)
	}
	return "a " + string(k)
}
