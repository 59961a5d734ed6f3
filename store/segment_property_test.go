package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

// The property: for random rules over random contacts and events, the SQL
// compiled for each dialect selects exactly the contacts that the in-memory
// evaluator selects.
const (
	propContacts = 300
	propEvents   = 3000
	propTrees    = 500
)

var propNow = time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)

// Small value domains make conditions match often; the awkward values
// (quotes, unicode, numbers where strings are expected) are the point.
var (
	propNames     = []string{"", "Ana", "ana", "O'Neil", "Zoë", "a%b_c", `back\slash`, "x--y;"}
	propTags      = []string{"customer", "vip", "lead", "o'neil", "zoë"}
	propCountries = []any{"DE", "FR", "US", "d'E", 12.0, "de"}
	propPlans     = []any{"pro", "free", "Pro ", "pro-x", "12"}
	propSeats     = []any{1.0, 5.0, 12.0, 12.5, -3.0, "12", true}
	propTrial     = []any{true, false, 1.0, "true"}
	propSignup    = []any{"2026-03-01", "2026-05-08T10:00:00Z", "2026-04-30", "not a date", "2026-05-10", 20260501.0, "2026-05-11"}
	propLinks     = []string{"https://x.io/pricing", "https://x.io/careers?a='b'", "https://y.io/", ""}
	propAttrs     = map[string][]any{"country": propCountries, "plan": propPlans, "seats": propSeats, "trial": propTrial, "signup": propSignup, "x-y": {"a", "b"}}
	propAttrKeys  = []string{"country", "plan", "seats", "trial", "signup", "x-y", "absent"}
)

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

func TestSegmentSQLMatchesEvaluator(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		store.SetNow(db, func() time.Time { return propNow })
		rng := rand.New(rand.NewPCG(20260510, 3))
		// Indexed attributes compile to other SQL on Postgres (a generated
		// column): index some before the contacts exist, some after, and
		// leave the others to the expression.
		indexAttributes(t, db, "country")
		subjects := seedPropertyData(t, db, rng)
		indexAttributes(t, db, "seats", "signup", "x-y")
		segments := map[int64]*campaign.Rule{}
		lookup := func(id int64) (*campaign.Rule, error) {
			if r, ok := segments[id]; ok {
				return r, nil
			}
			return nil, campaign.Errorf(campaign.ENOTFOUND, "segment %d not found", id)
		}
		g := &ruleGen{rng: rng}
		for i := range 3 {
			s := &campaign.Segment{Name: fmt.Sprintf("seg %d", i), Rule: g.rule(2)}
			if err := db.CreateSegment(ctx, s); err != nil {
				t.Fatalf("create segment %s: %v", s.Rule, err)
			}
			segments[s.ID] = s.Rule
			g.segments = append(g.segments, s.ID)
		}
		matchedSome, matchedNone := 0, 0
		for i := range propTrees {
			rule := g.rule(4)
			if err := rule.Validate(0, lookup); err != nil {
				t.Fatalf("generator made an invalid rule %s: %v", rule, err)
			}
			var want []int64
			for _, s := range subjects {
				ok, err := campaign.Evaluate(rule, s, propNow, lookup)
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					want = append(want, s.Contact.ID)
				}
			}
			got := sampleIDs(t, db, rule)
			if diff := cmp.Diff(want, got); diff != "" {
				js, _ := json.Marshal(rule)
				t.Fatalf("tree %d: %s\n%s\nSQL differs from the evaluator (-evaluator +sql):\n%s", i, rule, js, diff)
			}
			n, err := db.CountSegment(ctx, rule)
			if err != nil || n != int64(len(want)) {
				t.Fatalf("tree %d: %s: count = %d, %v; want %d", i, rule, n, err, len(want))
			}
			if len(want) == 0 {
				matchedNone++
			} else if len(want) < propContacts {
				matchedSome++
			}
		}
		// A generator whose rules match everyone or no one proves nothing.
		if matchedSome < propTrees/3 {
			t.Errorf("only %d of %d rules selected a proper subset (%d selected none)", matchedSome, propTrees, matchedNone)
		}
	})
}

func indexAttributes(t *testing.T, db *store.DB, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if err := db.CreateAttributeIndex(context.Background(), k); err != nil {
			t.Fatalf("index attribute %s: %v", k, err)
		}
	}
}

func sampleIDs(t *testing.T, db *store.DB, rule *campaign.Rule) []int64 {
	t.Helper()
	cs, err := db.SampleSegment(context.Background(), rule, store.MaxPageSize)
	if err != nil {
		js, _ := json.Marshal(rule)
		t.Fatalf("sample %s (%s): %v", rule, js, err)
	}
	var ids []int64
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids
}

// seedPropertyData inserts the random contacts (with score, stage and
// creation times the API does not set) and events, and returns them as the
// evaluator sees them, in ID order.
func seedPropertyData(t *testing.T, db *store.DB, rng *rand.Rand) []*campaign.Subject {
	t.Helper()
	ctx := context.Background()
	var subjects []*campaign.Subject
	for i := range propContacts {
		c := &campaign.Contact{
			Email:     fmt.Sprintf("%s%d@%s", pick(rng, []string{"ana", "bo", "o'neil", "x_y", "zoë"}), i, pick(rng, []string{"example.com", "x.io", "test.de"})),
			FirstName: pick(rng, propNames), LastName: pick(rng, propNames),
			Status:     pick(rng, []campaign.ContactStatus{campaign.ContactActive, campaign.ContactActive, campaign.ContactUnsubscribed, campaign.ContactBounced, campaign.ContactComplained}),
			Attributes: campaign.Attributes{}, Tags: []string{},
			CreatedAt: propNow.Add(-time.Duration(rng.Int64N(int64(120 * 24 * time.Hour)))).Truncate(time.Microsecond),
		}
		for k, values := range propAttrs {
			if rng.IntN(10) < 6 {
				c.Attributes[k] = pick(rng, values)
			}
		}
		for _, tag := range propTags {
			if rng.IntN(3) == 0 {
				c.Tags = append(c.Tags, tag)
			}
		}
		c.Tags = campaign.NormalizeTags(c.Tags)
		s := &campaign.Subject{Contact: c, Score: pick(rng, []float64{0, 10, 25.5, 50, 100}), Stage: pick(rng, campaign.LifecycleStages)}
		attrs, _ := json.Marshal(c.Attributes)
		tags, _ := json.Marshal(c.Tags)
		err := db.QueryRowxContext(ctx, db.Rebind(`INSERT INTO contacts (email, first_name, last_name, attributes, tags,
			status, score, lifecycle_stage, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
			c.Email, c.FirstName, c.LastName, string(attrs), string(tags), c.Status, s.Score, s.Stage, c.CreatedAt, c.CreatedAt).Scan(&c.ID)
		if err != nil {
			t.Fatal(err)
		}
		subjects = append(subjects, s)
	}
	events := make([]campaign.Event, propEvents)
	for i := range events {
		s := pick(rng, subjects)
		e := campaign.Event{
			ContactID: s.Contact.ID, CampaignID: int64(rng.IntN(4)), Kind: pick(rng, campaign.EventKinds),
			Human: rng.IntN(2) == 0, OccurredAt: propNow.Add(-time.Duration(rng.Int64N(int64(100 * 24 * time.Hour)))).Truncate(time.Microsecond),
		}
		if e.Kind == campaign.EventClicked {
			e.Link = pick(rng, propLinks)
		}
		events[i] = e
		s.Events = append(s.Events, e)
	}
	if err := db.InsertEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	return subjects
}

// ruleGen makes random valid rules over the property test's value domains.
type ruleGen struct {
	rng      *rand.Rand
	segments []int64
}

func (g *ruleGen) rule(depth int) *campaign.Rule {
	if depth > 0 && g.rng.IntN(3) > 0 {
		switch g.rng.IntN(3) {
		case 0:
			return &campaign.Rule{Not: g.rule(depth - 1)}
		case 1:
			return &campaign.Rule{All: g.rules(depth - 1)}
		default:
			return &campaign.Rule{Any: g.rules(depth - 1)}
		}
	}
	switch n := g.rng.IntN(20); {
	case n < 6:
		return g.attr()
	case n < 13:
		return g.field()
	case n < 19 || len(g.segments) == 0:
		return g.event()
	}
	return &campaign.Rule{Segment: pick(g.rng, g.segments)}
}

func (g *ruleGen) rules(depth int) []*campaign.Rule {
	out := make([]*campaign.Rule, 1+g.rng.IntN(3))
	for i := range out {
		out[i] = g.rule(depth)
	}
	return out
}

func (g *ruleGen) some(values []any, keep func(any) bool) []any {
	var out []any
	for _, v := range values {
		if keep(v) && g.rng.IntN(2) == 0 {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		for _, v := range values {
			if keep(v) {
				return []any{v}
			}
		}
	}
	return out
}

func isString(v any) bool { _, ok := v.(string); return ok }
func isNumber(v any) bool { _, ok := v.(float64); return ok }

func (g *ruleGen) attr() *campaign.Rule {
	key := pick(g.rng, propAttrKeys)
	domain := append(slices.Clone(propAttrs[key]), "DE", 12.0, "pro", true)
	r := &campaign.Rule{Attr: key}
	switch g.rng.IntN(9) {
	case 0:
		r.Op, r.Value = pick(g.rng, []campaign.Op{campaign.OpEq, campaign.OpNe}), pick(g.rng, domain)
	case 1:
		r.Op = pick(g.rng, []campaign.Op{campaign.OpIn, campaign.OpNotIn})
		if g.rng.IntN(2) == 0 {
			r.Value = g.some(domain, isString)
		} else {
			r.Value = g.some(domain, isNumber)
		}
	case 2:
		r.Op, r.Value = pick(g.rng, []campaign.Op{campaign.OpContains, campaign.OpStartsWith, campaign.OpEndsWith}),
			pick(g.rng, []any{"D", "e", "pro", "ro", "'", "2", "x", "-", "2026-05"})
	case 3:
		r.Op = pick(g.rng, []campaign.Op{campaign.OpExists, campaign.OpMissing})
	case 4, 5:
		r.Op, r.Value = pick(g.rng, []campaign.Op{campaign.OpGt, campaign.OpGte, campaign.OpLt, campaign.OpLte}), pick(g.rng, []any{1.0, 5.0, 12.0, 12.5, 0.0, -3.0})
	case 6, 7:
		r.Op, r.Value = pick(g.rng, []campaign.Op{campaign.OpBefore, campaign.OpAfter}), pick(g.rng, []any{"2026-03-01", "2026-04-30", "2026-05-08", "2026-05-10"})
	default:
		r.Op, r.Value = campaign.OpWithinLastDays, pick(g.rng, []any{1.0, 2.0, 10.0, 100.0})
	}
	return r
}

func (g *ruleGen) field() *campaign.Rule {
	stringsAny := func(xs []string) []any {
		out := make([]any, len(xs))
		for i, x := range xs {
			out[i] = x
		}
		return out
	}
	switch g.rng.IntN(7) {
	case 0:
		f := pick(g.rng, []string{campaign.FieldEmail, campaign.FieldFirstName, campaign.FieldLastName})
		op := pick(g.rng, []campaign.Op{campaign.OpEq, campaign.OpNe, campaign.OpContains, campaign.OpStartsWith, campaign.OpEndsWith, campaign.OpIn, campaign.OpNotIn})
		switch op {
		case campaign.OpIn, campaign.OpNotIn:
			return &campaign.Rule{Field: f, Op: op, Value: g.some(stringsAny(append(propNames, "zoë1@x.io")), isString)}
		case campaign.OpEq, campaign.OpNe:
			return &campaign.Rule{Field: f, Op: op, Value: pick(g.rng, propNames)}
		}
		return &campaign.Rule{Field: f, Op: op, Value: pick(g.rng, []string{"a", "A", "'", "ë", "%", "_", `\`, "x.io", "1@", "o'n", "--"})}
	case 1:
		statuses := []any{"active", "unsubscribed", "bounced", "complained"}
		if g.rng.IntN(2) == 0 {
			return &campaign.Rule{Field: campaign.FieldStatus, Op: pick(g.rng, []campaign.Op{campaign.OpEq, campaign.OpNe}), Value: pick(g.rng, statuses)}
		}
		return &campaign.Rule{Field: campaign.FieldStatus, Op: pick(g.rng, []campaign.Op{campaign.OpIn, campaign.OpNotIn}), Value: g.some(statuses, isString)}
	case 2:
		stages := stringsAny([]string{"subscriber", "engaged", "mql", "sql", "won", "recycled", "disqualified"})
		if g.rng.IntN(2) == 0 {
			return &campaign.Rule{Field: campaign.FieldLifecycleStage, Op: pick(g.rng, []campaign.Op{campaign.OpEq, campaign.OpNe}), Value: pick(g.rng, stages)}
		}
		return &campaign.Rule{Field: campaign.FieldLifecycleStage, Op: pick(g.rng, []campaign.Op{campaign.OpIn, campaign.OpNotIn}), Value: g.some(stages, isString)}
	case 3:
		return &campaign.Rule{Field: campaign.FieldScore, Op: pick(g.rng, []campaign.Op{campaign.OpEq, campaign.OpNe, campaign.OpGt, campaign.OpGte, campaign.OpLt, campaign.OpLte}),
			Value: pick(g.rng, []any{0.0, 10.0, 25.5, 50.0, 30.0})}
	case 4:
		if g.rng.IntN(2) == 0 {
			return &campaign.Rule{Field: campaign.FieldCreatedAt, Op: campaign.OpWithinLastDays, Value: pick(g.rng, []any{1.0, 30.0, 60.0})}
		}
		return &campaign.Rule{Field: campaign.FieldCreatedAt, Op: pick(g.rng, []campaign.Op{campaign.OpBefore, campaign.OpAfter}), Value: pick(g.rng, []any{"2026-02-01", "2026-04-15", "2026-05-09"})}
	}
	tags := stringsAny(append(slices.Clone(propTags), "VIP", " Lead ", "none"))
	if g.rng.IntN(3) == 0 {
		return &campaign.Rule{Field: campaign.FieldTags, Op: campaign.OpHas, Value: pick(g.rng, tags)}
	}
	return &campaign.Rule{Field: campaign.FieldTags, Op: pick(g.rng, []campaign.Op{campaign.OpHasAny, campaign.OpHasAll, campaign.OpHasNone}), Value: g.some(tags, isString)}
}

func (g *ruleGen) event() *campaign.Rule {
	r := &campaign.Rule{Event: pick(g.rng, campaign.EventKinds)}
	if g.rng.IntN(2) == 0 {
		r.Campaign = int64(1 + g.rng.IntN(3))
	}
	if g.rng.IntN(2) == 0 {
		r.WithinDays = pick(g.rng, []int{1, 7, 30, 90})
	}
	if g.rng.IntN(3) == 0 {
		r.AtLeast = 1 + g.rng.IntN(3)
	}
	if r.Event.Judged() && g.rng.IntN(3) == 0 {
		r.IncludeMachine = true
	}
	if r.Event == campaign.EventClicked && g.rng.IntN(2) == 0 {
		r.LinkContains = pick(g.rng, []string{"pricing", "'b'", "x.io", "careers?a="})
	}
	return r
}
