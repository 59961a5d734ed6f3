package campaign_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/funnel-email/funnel/campaign"
)

// noSegments is a lookup for rules that reference no segment.
func noSegments(id int64) (*campaign.Rule, error) {
	return nil, campaign.Errorf(campaign.ENOTFOUND, "segment %d not found", id)
}

func mustJSON(t *testing.T, s string) *campaign.Rule {
	t.Helper()
	var r campaign.Rule
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return &r
}

func TestRuleJSONAndTextDescribeTheSameTree(t *testing.T) {
	text := `attr.country = "DE" and tag "customer" and clicked(campaign: 12, within: 30d) and not unsubscribed`
	js := `{"all": [
		{"attr": "country", "op": "eq", "value": "DE"},
		{"field": "tags", "op": "has", "value": "customer"},
		{"event": "clicked", "campaign": 12, "within_days": 30},
		{"not": {"event": "unsubscribed", "campaign": "any"}}]}`
	fromText, err := campaign.ParseRule(text)
	if err != nil {
		t.Fatal(err)
	}
	fromJSON := mustJSON(t, js)
	if diff := cmp.Diff(fromJSON, fromText); diff != "" {
		t.Errorf("text and JSON differ (-json +text):\n%s", diff)
	}
	if got := fromJSON.String(); got != text {
		t.Errorf("String() = %s\nwant        %s", got, text)
	}
	b, err := json.Marshal(fromText)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fromText, mustJSON(t, string(b))); diff != "" {
		t.Errorf("JSON round trip (-before +after):\n%s", diff)
	}
	if err := fromText.Validate(0, noSegments); err != nil {
		t.Errorf("valid rule refused: %v", err)
	}
}

func TestParseRulePrecedenceAndPrinting(t *testing.T) {
	tests := []struct{ in, want string }{
		{`score >= 50 or tag "vip" and not opened`, `score >= 50 or tag "vip" and not opened`},
		{`(score >= 50 or tag "vip") and opened`, `(score >= 50 or tag "vip") and opened`},
		{`not (email ends_with "@x.io" and status = "active")`, `not (email ends_with "@x.io" and status = "active")`},
		{"attr.plan in [\"a\", \"b\"]\n and attr.seats not in [1, 2.5]", `attr.plan in ["a", "b"] and attr.seats not in [1, 2.5]`},
		{`tags has_any ["a"] and tags has "b"`, `tags has_any ["a"] and tag "b"`},
		{`created_at within 7d and attr.renewal before "2026-01-01" and attr.trial = true and attr.x-y exists`,
			`created_at within 7d and attr.renewal before "2026-01-01" and attr.trial = true and attr.x-y exists`},
		{`clicked(link: "pricing", at_least: 2, include_machine: true, campaign: any) or segment(3)`,
			`clicked(link: "pricing", at_least: 2, include_machine: true) or segment(3)`},
		{`(a_ok_1 = 1)`, ``}, // unknown field: error case below
	}
	for _, tt := range tests[:len(tests)-1] {
		r, err := campaign.ParseRule(tt.in)
		if err != nil {
			t.Errorf("ParseRule(%q): %v", tt.in, err)
			continue
		}
		if got := r.String(); got != tt.want {
			t.Errorf("ParseRule(%q).String() = %q, want %q", tt.in, got, tt.want)
		}
	}
	// "a or b and c" is a or (b and c).
	r, _ := campaign.ParseRule(`opened or clicked and sent`)
	if r.Kind() != campaign.KindAny || r.Any[1].Kind() != campaign.KindAll {
		t.Errorf("and must bind tighter than or: %#v", r)
	}
}

func TestParseRuleErrorsHaveLineAndColumn(t *testing.T) {
	tests := []struct {
		in        string
		line, col int
		msg       string
	}{
		{`attr.country = `, 1, 16, "expected a value"},
		{"opened and\n  country = \"DE\"", 2, 3, "unknown field or keyword"},
		{`score >> 5`, 1, 8, "expected a value"},
		{`tag customer`, 1, 5, "expected a quoted tag"},
		{`clicked(campaign: 0)`, 1, 19, "positive whole number"},
		{`clicked(within: 30)`, 1, 17, "number of days"},
		{`clicked(campaign: 1, campaign: 2)`, 1, 22, "each once"},
		{`email = "abc`, 1, 9, "not closed"},
		{`(opened`, 1, 8, `expected ")"`},
		{`opened clicked`, 1, 8, "expected and, or"},
		{`attr.9lives = 1`, 1, 1, "must start with a letter"},
		{`score = 1e999`, 1, 9, "too large"},
		{`é`, 1, 1, "unexpected character"},
		{`attr.x in [1,`, 1, 14, "expected a value"},
		{strings.Repeat("(", 100) + "opened", 1, 65, "nests too deeply"},
	}
	for _, tt := range tests {
		_, err := campaign.ParseRule(tt.in)
		e, ok := err.(*campaign.Error)
		if !ok || e.Code != campaign.EINVALID || len(e.Details) != 1 {
			t.Errorf("ParseRule(%q) = %v, want one EINVALID detail", tt.in, err)
			continue
		}
		d := e.Details[0]
		if d.Line != tt.line || d.Column != tt.col || !strings.Contains(d.Message, tt.msg) {
			t.Errorf("ParseRule(%q): line %d column %d %q, want line %d column %d containing %q",
				tt.in, d.Line, d.Column, d.Message, tt.line, tt.col, tt.msg)
		}
	}
}

func TestRuleValidationNamesThePath(t *testing.T) {
	deep := `{"event": "opened"}`
	for range campaign.MaxRuleDepth {
		deep = `{"not": ` + deep + `}`
	}
	many := `{"any": [` + strings.Repeat(`{"event": "sent"},`, campaign.MaxRuleNodes) + `{"event": "sent"}]}`
	tests := []struct {
		name, rule, path, msg string
	}{
		{"unknown key", `{"all": [{"event": "sent"}, {"attr": "a", "op": "eq", "value": 1, "valeu": 2}]}`, "rule.all[1].valeu", "unknown key"},
		{"two forms", `{"all": [{"event": "sent", "segment": 2}]}`, "rule.all[0]", "exactly one"},
		{"empty all", `{"all": []}`, "rule.all", "non-empty list"},
		{"not an object", `{"any": [{"event": "sent"}, 3]}`, "rule.any[1]", "JSON object"},
		{"unknown field", `{"field": "phone", "op": "eq", "value": "1"}`, "rule.field", "unknown field"},
		{"unknown op", `{"all": [{"event": "sent"}, {"event": "sent"}, {"attr": "a", "op": "like", "value": "x"}]}`, "rule.all[2].op", `"like" does not apply`},
		{"op for another type", `{"field": "score", "op": "contains", "value": "1"}`, "rule.op", "does not apply"},
		{"number expected", `{"all": [{"event": "sent"}, {"event": "sent"}, {"field": "score", "op": "gt", "value": "50"}]}`, "rule.all[2].value", "must be a number"},
		{"string expected", `{"not": {"field": "email", "op": "contains", "value": 5}}`, "rule.not.value", "must be a string"},
		{"empty contains", `{"attr": "a", "op": "contains", "value": ""}`, "rule.value", "must not be empty"},
		{"mixed list", `{"attr": "a", "op": "in", "value": [1, "x"]}`, "rule.value", "numbers only"},
		{"status", `{"field": "status", "op": "eq", "value": "gone"}`, "rule.value", "one of active"},
		{"stage", `{"field": "lifecycle_stage", "op": "in", "value": ["mql", "boss"]}`, "rule.value", "value 2 must be one of subscriber"},
		{"date", `{"field": "created_at", "op": "before", "value": "01/02/2026"}`, "rule.value", "YYYY-MM-DD"},
		{"days", `{"attr": "a", "op": "within_last_days", "value": 1.5}`, "rule.value", "whole number of days"},
		{"exists with value", `{"attr": "a", "op": "exists", "value": 1}`, "rule.value", "absent"},
		{"bad key", `{"attr": "a'b", "op": "eq", "value": 1}`, "rule.attr", "may only hold"},
		{"NUL", `{"attr": "a", "op": "eq", "value": "x\u0000"}`, "rule.value", "NUL"},
		{"long value", `{"attr": "a", "op": "eq", "value": "` + strings.Repeat("x", campaign.MaxRuleString+1) + `"}`, "rule.value", "longer than"},
		{"long list", `{"attr": "a", "op": "in", "value": [` + strings.Repeat(`1,`, campaign.MaxRuleList) + `1]}`, "rule.value", "1 to 100 values"},
		{"event kind", `{"event": "read"}`, "rule.event", "unknown event"},
		{"link on opens", `{"event": "opened", "link_contains": "x"}`, "rule.link_contains", "clicked only"},
		{"machine on sends", `{"event": "sent", "include_machine": true}`, "rule.include_machine", "opened and clicked only"},
		{"campaign", `{"event": "sent", "campaign": "all"}`, "rule.campaign", "positive campaign ID"},
		{"within", `{"event": "sent", "within_days": 1.5}`, "rule.within_days", "whole number"},
		{"too many days", `{"event": "sent", "within_days": 99999999}`, "rule.within_days", "between 1 and"},
		{"missing segment", `{"any": [{"event": "sent"}, {"segment": 9}]}`, "rule.any[1].segment", "does not exist"},
		{"too deep", deep, "rule" + strings.Repeat(".not", campaign.MaxRuleDepth), "deeper than 10"},
		{"too many nodes", many, "rule.any[199]", "more than 200 nodes"},
		{"value object", `{"attr": "a", "op": "eq", "value": {"x": 1}}`, "rule.value", "a string, a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r campaign.Rule
			err := json.Unmarshal([]byte(tt.rule), &r)
			if err == nil {
				err = r.Validate(0, noSegments)
			}
			e, ok := err.(*campaign.Error)
			if !ok || e.Code != campaign.EINVALID {
				t.Fatalf("got %v, want EINVALID", err)
			}
			for _, d := range e.Details {
				if d.Field == tt.path && strings.Contains(d.Message, tt.msg) {
					return
				}
			}
			t.Errorf("details %+v lack %s: ...%s...", e.Details, tt.path, tt.msg)
		})
	}
}

func TestValidateRejectsSegmentCycles(t *testing.T) {
	rules := map[int64]*campaign.Rule{
		1: {Segment: 2},
		2: {All: []*campaign.Rule{{Event: campaign.EventSent}, {Segment: 3}}},
		3: {Field: "score", Op: campaign.OpGt, Value: 1.0},
	}
	lookup := func(id int64) (*campaign.Rule, error) {
		if r, ok := rules[id]; ok {
			return r, nil
		}
		return noSegments(id)
	}
	// Saving segment 3 as "in segment 1" closes the loop 3 -> 1 -> 2 -> 3.
	err := (&campaign.Rule{Not: &campaign.Rule{Segment: 1}}).Validate(3, lookup)
	e, ok := err.(*campaign.Error)
	if !ok || len(e.Details) != 1 || e.Details[0].Field != "rule.not.segment" || !strings.Contains(e.Details[0].Message, "3 -> 1 -> 2 -> 3") {
		t.Fatalf("cycle: got %v", err)
	}
	if err := (&campaign.Rule{Segment: 1}).Validate(4, lookup); err != nil {
		t.Errorf("a chain without a loop was refused: %v", err)
	}
	if err := (&campaign.Rule{Segment: 4}).Validate(4, lookup); err == nil {
		t.Error("a segment referring to itself was accepted")
	}
}

func TestEvaluate(t *testing.T) {
	now := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
	c := &campaign.Contact{
		ID: 7, Email: "ana@example.com", Status: campaign.ContactActive,
		Attributes: campaign.Attributes{"country": "DE", "seats": 12.0, "zip": "12", "trial": true, "renewal": "2026-05-01T10:00:00Z"},
		Tags:       []string{"customer"}, CreatedAt: now.Add(-48 * time.Hour),
	}
	s := &campaign.Subject{Contact: c, Score: 40, Stage: campaign.StageMQL, Events: []campaign.Event{
		{ContactID: 7, CampaignID: 12, Kind: campaign.EventClicked, Link: "https://x.io/pricing", Human: true, OccurredAt: now.Add(-30 * time.Hour)},
		{ContactID: 7, CampaignID: 12, Kind: campaign.EventOpened, Human: false, OccurredAt: now.Add(-24 * time.Hour)},
		{ContactID: 8, CampaignID: 12, Kind: campaign.EventUnsubscribed, OccurredAt: now},
	}}
	tests := []struct {
		rule string
		want bool
	}{
		{`attr.country = "DE" and tag "Customer" and clicked(campaign: 12, within: 30d) and not unsubscribed`, true},
		{`attr.seats = 12 and attr.seats >= 12 and attr.seats < 12.5`, true},
		{`attr.zip = 12 or attr.seats = "12" or attr.trial = 1`, false},
		{`attr.country != "FR" and attr.nope != "x" and attr.nope not in ["a"] and attr.nope missing`, true},
		{`attr.renewal within 10d and attr.renewal after "2026-04-30" and attr.renewal before "2026-05-02"`, true},
		{`attr.country before "2030-01-01"`, false},
		{`opened`, false},
		{`opened(include_machine: true) and clicked(link: "pricing") and not clicked(link: "careers")`, true},
		{`clicked(at_least: 2) or clicked(campaign: 13) or clicked(within: 1d)`, false},
		{`created_at within 3d and created_at after "2026-05-07" and not created_at after "2026-05-08"`, true},
		{`score > 39.5 and lifecycle_stage in ["mql", "sql"] and status != "unsubscribed"`, true},
		{`email ends_with "@example.com" and email starts_with "ana" and first_name = ""`, true},
		{`tags has_all ["customer", "vip"] or tags has_none ["customer"]`, false},
	}
	for _, tt := range tests {
		r, err := campaign.ParseRule(tt.rule)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Validate(0, noSegments); err != nil {
			t.Fatalf("%s: %v", tt.rule, err)
		}
		got, err := campaign.Evaluate(r, s, now, noSegments)
		if err != nil || got != tt.want {
			t.Errorf("Evaluate(%s) = %v, %v; want %v", tt.rule, got, err, tt.want)
		}
	}
}

// FuzzParseRule checks that the parser never panics, that every error
// carries a position, and that every accepted text prints back to a text
// that parses to the same tree.
func FuzzParseRule(f *testing.F) {
	for _, s := range []string{
		`attr.country = "DE" and tag "customer" and clicked(campaign: 12, within: 30d) and not unsubscribed`,
		`(score >= 50 or lifecycle_stage in ["mql", "sql"]) and not segment(3)`,
		`attr.x-y not in [1, -2.5e3] or attr.b = true or attr.c missing`,
		`email contains "\"; DROP TABLE contacts; --" and first_name = "\u00e9\\"`,
		`created_at within 30d and attr.d before "2026-01-01"`,
		`opened(include_machine: true, at_least: 3, link: "x") or not not sent`,
		"tags has_any [\"a\",\n\"b\"]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		r, err := campaign.ParseRule(text)
		if err != nil {
			e, ok := err.(*campaign.Error)
			if !ok || len(e.Details) != 1 || e.Details[0].Line < 1 || e.Details[0].Column < 1 {
				t.Fatalf("error without a position: %#v", err)
			}
			return
		}
		printed := r.String()
		again, err := campaign.ParseRule(printed)
		if err != nil {
			t.Fatalf("printed rule %q does not parse: %v", printed, err)
		}
		if diff := cmp.Diff(r, again); diff != "" {
			t.Fatalf("round trip of %q via %q (-first +second):\n%s", text, printed, diff)
		}
	})
}
