package campaign

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Subject is what a rule is evaluated against in memory: a contact with
// its lead score, lifecycle stage and events. Events of other contacts are
// ignored.
type Subject struct {
	Contact *Contact
	Score   float64
	Stage   LifecycleStage
	Events  []Event
}

// Evaluate reports whether the subject matches a validated rule at time
// now, with the semantics described at [Segment]. The store compiles the
// same rules to SQL; this evaluator is the reference the compiler is tested
// against, and serves previews of a single contact. lookup resolves
// segment references; a reference loop or a failed lookup is an error.
func Evaluate(r *Rule, s *Subject, now time.Time, lookup RuleLookup) (bool, error) {
	e := &evaluator{s: s, now: now.UTC(), lookup: lookup}
	return e.eval(r)
}

type evaluator struct {
	s      *Subject
	now    time.Time
	lookup RuleLookup
	chain  []int64
}

func (e *evaluator) eval(r *Rule) (bool, error) {
	switch r.Kind() {
	case KindAll, KindAny:
		want := r.Kind() == KindAny // the answer that decides early
		for _, c := range r.Children() {
			ok, err := e.eval(c)
			if err != nil || ok == want {
				return ok, err
			}
		}
		return !want, nil
	case KindNot:
		ok, err := e.eval(r.Not)
		return !ok, err
	case KindSegment:
		return e.segment(r.Segment)
	case KindEvent:
		return e.events(r), nil
	case KindField:
		return e.field(r), nil
	case KindAttr:
		v, ok := e.s.Contact.Attributes[r.Attr]
		return attrMatch(r.Op, r.Value, v, ok && v != nil, e.now), nil
	}
	return false, fmt.Errorf("evaluate rule: a node holds no rule")
}

func (e *evaluator) segment(id int64) (bool, error) {
	if slices.Contains(e.chain, id) || len(e.chain) > MaxSegmentNesting {
		return false, Errorf(EINVALID, "segment %d refers back to itself", id)
	}
	sub, err := e.lookup(id)
	if err != nil {
		return false, err
	}
	e.chain = append(e.chain, id)
	defer func() { e.chain = e.chain[:len(e.chain)-1] }()
	return e.eval(sub)
}

func (e *evaluator) events(r *Rule) bool {
	var cutoff time.Time
	if r.WithinDays > 0 {
		cutoff = e.now.Add(-time.Duration(r.WithinDays) * 24 * time.Hour)
	}
	n := 0
	for _, ev := range e.s.Events {
		switch {
		case ev.ContactID != e.s.Contact.ID, ev.Kind != r.Event,
			r.Campaign != 0 && ev.CampaignID != r.Campaign,
			r.LinkContains != "" && !strings.Contains(ev.Link, r.LinkContains),
			r.WithinDays > 0 && ev.OccurredAt.Before(cutoff),
			r.Event.Judged() && !r.IncludeMachine && !ev.Human:
			continue
		}
		n++
	}
	return n >= r.MinEvents()
}

func (e *evaluator) field(r *Rule) bool {
	c := e.s.Contact
	switch r.Field {
	case FieldEmail:
		return stringMatch(r.Op, r.Value, c.Email)
	case FieldFirstName:
		return stringMatch(r.Op, r.Value, c.FirstName)
	case FieldLastName:
		return stringMatch(r.Op, r.Value, c.LastName)
	case FieldStatus:
		return stringMatch(r.Op, r.Value, string(c.Status))
	case FieldLifecycleStage:
		return stringMatch(r.Op, r.Value, string(e.s.Stage))
	case FieldScore:
		return numberMatch(r.Op, r.Value, e.s.Score)
	case FieldCreatedAt:
		return timeMatch(r.Op, r.Value, c.CreatedAt, e.now)
	case FieldTags:
		return tagsMatch(r, c.Tags)
	}
	return false
}

func stringMatch(op Op, want any, got string) bool {
	switch op {
	case OpEq:
		return got == want
	case OpNe:
		return got != want
	case OpContains:
		return strings.Contains(got, want.(string))
	case OpStartsWith:
		return strings.HasPrefix(got, want.(string))
	case OpEndsWith:
		return strings.HasSuffix(got, want.(string))
	case OpIn:
		return slices.Contains(want.([]any), any(got))
	case OpNotIn:
		return !slices.Contains(want.([]any), any(got))
	}
	return false
}

func numberMatch(op Op, want any, got float64) bool {
	w := want.(float64)
	switch op {
	case OpEq:
		return got == w
	case OpNe:
		return got != w
	case OpGt:
		return got > w
	case OpGte:
		return got >= w
	case OpLt:
		return got < w
	case OpLte:
		return got <= w
	}
	return false
}

func timeMatch(op Op, want any, got, now time.Time) bool {
	switch op {
	case OpBefore:
		d, _ := RuleDate(want)
		return got.Before(d)
	case OpAfter:
		d, _ := RuleDate(want)
		return !got.Before(d.AddDate(0, 0, 1))
	case OpWithinLastDays:
		n, _ := RuleDays(want)
		return !got.Before(now.Add(-time.Duration(n) * 24 * time.Hour))
	}
	return false
}

func tagsMatch(r *Rule, tags []string) bool {
	n := 0
	want := r.TagValues()
	for _, t := range want {
		if slices.Contains(tags, t) {
			n++
		}
	}
	switch r.Op {
	case OpHas, OpHasAny:
		return n > 0
	case OpHasAll:
		return n == len(want)
	case OpHasNone:
		return n == 0
	}
	return false
}

// attrMatch applies a condition to an attribute value; present is false for
// a missing attribute.
func attrMatch(op Op, want, got any, present bool, now time.Time) bool {
	switch op {
	case OpExists:
		return present
	case OpMissing:
		return !present
	case OpNe:
		return !attrMatch(OpEq, want, got, present, now)
	case OpNotIn:
		return !attrMatch(OpIn, want, got, present, now)
	case OpIn:
		for _, w := range want.([]any) {
			if attrMatch(OpEq, w, got, present, now) {
				return true
			}
		}
		return false
	case OpEq:
		return present && got == want // typed: "12" != 12.0, true != 1.0
	case OpGt, OpGte, OpLt, OpLte:
		f, ok := got.(float64)
		return ok && numberMatch(op, want, f)
	}
	s, ok := got.(string)
	if !ok {
		return false
	}
	switch op {
	case OpContains, OpStartsWith, OpEndsWith:
		return stringMatch(op, want, s)
	}
	return dateMatch(op, want, s, now)
}

// dateMatch compares the YYYY-MM-DD prefix of an attribute with a rule's
// date; a value without such a prefix matches nothing.
func dateMatch(op Op, want any, got string, now time.Time) bool {
	if !HasDatePrefix(got) {
		return false
	}
	day := got[:10]
	switch op {
	case OpBefore:
		return day < want.(string)
	case OpAfter:
		return day > want.(string)
	case OpWithinLastDays:
		from, to := WithinDates(want, now)
		return day >= from && day <= to
	}
	return false
}

// HasDatePrefix reports whether s begins with four digits, '-', two digits,
// '-', two digits: the shape attribute date conditions compare.
func HasDatePrefix(s string) bool {
	if len(s) < 10 {
		return false
	}
	for i := range 10 {
		if (i == 4 || i == 7) != (s[i] == '-') || (i != 4 && i != 7 && !isDigit(s[i])) {
			return false
		}
	}
	return true
}

// WithinDates returns the first and last day (YYYY-MM-DD, UTC) that an
// attribute date condition within_last_days days accepts at time now.
func WithinDates(days any, now time.Time) (from, to string) {
	n, _ := RuleDays(days)
	now = now.UTC()
	return now.AddDate(0, 0, -n).Format(time.DateOnly), now.Format(time.DateOnly)
}
