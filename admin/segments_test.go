package admin_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/funnel-email/funnel/admin"
	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

func TestSegmentRoutes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ta := newTestAPI(t, db, admin.Config{})
		for i, country := range []string{"DE", "FR", "DE"} {
			c := &campaign.Contact{Email: "s" + itoa(int64(i)) + "@x.io", Attributes: campaign.Attributes{"country": country}}
			if err := db.CreateContact(t.Context(), c); err != nil {
				t.Fatal(err)
			}
		}
		m := campaign.RoleMarketer

		res := ta.json(m, "POST", "/api/v1/segments", `{"name": "Germany", "text": "attr.country = \"DE\""}`)
		if res.Status != 201 {
			t.Fatalf("create: %d %s", res.Status, res.Body)
		}
		var seg struct {
			ID       int64           `json:"id"`
			Name     string          `json:"name"`
			Rule     json.RawMessage `json:"rule"`
			RuleText string          `json:"rule_text"`
		}
		if err := json.Unmarshal(res.Body, &seg); err != nil || seg.RuleText != `attr.country = "DE"` ||
			!strings.Contains(string(seg.Rule), `"attr":"country"`) {
			t.Fatalf("created segment: %s (%v)", res.Body, err)
		}
		path := "/api/v1/segments/" + itoa(seg.ID)

		res = ta.json(m, "GET", path+"/contacts?limit=1", "")
		var page struct {
			Contacts   []campaign.Contact `json:"contacts"`
			NextCursor string             `json:"next_cursor"`
		}
		if err := json.Unmarshal(res.Body, &page); res.Status != 200 || err != nil || len(page.Contacts) != 1 || page.Contacts[0].Email != "s0@x.io" {
			t.Fatalf("first page: %d %s", res.Status, res.Body)
		}
		res = ta.json(m, "GET", path+"/contacts?limit=1&cursor="+page.NextCursor, "")
		if err := json.Unmarshal(res.Body, &page); err != nil || len(page.Contacts) != 1 || page.Contacts[0].Email != "s2@x.io" {
			t.Fatalf("second page: %d %s", res.Status, res.Body)
		}

		for _, body := range []string{
			`{"any": [{"segment": ` + itoa(seg.ID) + `}, {"attr": "country", "op": "eq", "value": "FR"}]}`,
			`{"rule": {"attr": "country", "op": "in", "value": ["DE", "FR"]}}`,
			`{"text": "segment(` + itoa(seg.ID) + `) or attr.country = \"FR\""}`,
		} {
			res = ta.json(m, "POST", "/api/v1/segments/preview", body)
			var p struct {
				Count   int64              `json:"count"`
				Sample  []campaign.Contact `json:"sample"`
				QueryMS *float64           `json:"query_ms"`
			}
			if err := json.Unmarshal(res.Body, &p); res.Status != 200 || err != nil || p.Count != 3 || len(p.Sample) != 3 || p.QueryMS == nil {
				t.Errorf("preview %s: %d %s", body, res.Status, res.Body)
			}
		}

		res = ta.json(m, "PATCH", path, `{"rule": {"attr": "country", "op": "eq", "value": "FR"}}`)
		if res.Status != 200 || !strings.Contains(string(res.Body), `"rule_text":"attr.country = \"FR\""`) {
			t.Errorf("patch: %d %s", res.Status, res.Body)
		}
		if res = ta.json(m, "GET", "/api/v1/segments", ""); res.Status != 200 || !strings.Contains(string(res.Body), `"name":"Germany"`) {
			t.Errorf("list: %d %s", res.Status, res.Body)
		}
		if res = ta.json(m, "POST", "/api/v1/attributes/country/index", ""); res.Status != 200 {
			t.Errorf("index: %d %s", res.Status, res.Body)
		}
		if res = ta.json(campaign.RoleSales, "POST", "/api/v1/segments/preview", `{"text": "opened"}`); res.Status != 403 {
			t.Errorf("sales may not preview: %d", res.Status)
		}
		if res = ta.json(campaign.RoleSales, "GET", "/api/v1/segments", ""); res.Status != 403 {
			t.Errorf("sales may not list segments: %d", res.Status)
		}
		if res = ta.json(m, "DELETE", path, ""); res.Status != 204 {
			t.Errorf("delete: %d %s", res.Status, res.Body)
		}
		if res = ta.json(m, "GET", path, ""); res.Status != 404 {
			t.Errorf("after delete: %d", res.Status)
		}
	})
}

func TestInvalidSegmentRulesAre422WithWhere(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ta := newTestAPI(t, db, admin.Config{})
		deep := `{"event": "opened"}`
		for range 12 {
			deep = `{"not": ` + deep + `}`
		}
		tests := []struct {
			method, path, body string
			field              string
			line, col          int
		}{
			{"POST", "/api/v1/segments/preview", `{"all": [{"event": "sent"}, {"attr": "country", "op": "gt", "value": "DE"}]}`, "rule.all[1].value", 0, 0},
			{"POST", "/api/v1/segments/preview", `{"rule": {"field": "phone", "op": "eq", "value": "1"}}`, "rule.field", 0, 0},
			{"POST", "/api/v1/segments/preview", `{"text": "opened and\n  attr.country = "}`, "rule", 2, 18},
			{"POST", "/api/v1/segments/preview", deep, "rule" + strings.Repeat(".not", 10), 0, 0},
			{"POST", "/api/v1/segments/preview", `{"attr": "x'); DROP TABLE contacts; --", "op": "exists"}`, "rule.attr", 0, 0},
			{"POST", "/api/v1/segments", `{"name": "x", "rule": {"event": "read"}}`, "rule.event", 0, 0},
			{"POST", "/api/v1/segments", `{"name": "x", "rule": {"segment": 42}}`, "rule.segment", 0, 0},
			{"POST", "/api/v1/segments", `{"name": "", "text": "opened"}`, "name", 0, 0},
			{"POST", "/api/v1/segments", `{"name": "x", "text": "opened", "rule": {"event": "sent"}}`, "text", 0, 0},
			{"POST", "/api/v1/attributes/bad%20key/index", ``, "", 0, 0},
		}
		for _, tt := range tests {
			res := ta.json(campaign.RoleMarketer, tt.method, tt.path, tt.body)
			if res.Status != 422 {
				t.Errorf("%s %s: status %d, want 422: %s", tt.path, tt.body, res.Status, res.Body)
				continue
			}
			code, _, details := res.errorBody(t)
			if code != campaign.EINVALID {
				t.Errorf("%s: code %s", tt.body, code)
			}
			if tt.field == "" {
				continue
			}
			found := false
			for _, d := range details {
				found = found || (d.Field == tt.field && d.Line == tt.line && d.Column == tt.col)
			}
			if !found {
				t.Errorf("%s: details %+v lack field %s line %d column %d", tt.body, details, tt.field, tt.line, tt.col)
			}
		}
		if n, err := db.CountContacts(t.Context()); err != nil || n != 0 {
			t.Errorf("contacts table after hostile rules: %d, %v", n, err)
		}
	})
}

// TestParseSegmentRoundTripsTextAndTree: POST /api/v1/segments/parse
// answers a rule given as text in both forms, and the tree it answers,
// parsed again, gives back the same text and tree.
func TestParseSegmentRoundTripsTextAndTree(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ta := newTestAPI(t, db, admin.Config{})
		rule, err := campaign.ParseRule(`tag "customer"`)
		if err != nil {
			t.Fatal(err)
		}
		other := &campaign.Segment{Name: "Customers", Rule: rule}
		if err := db.CreateSegment(t.Context(), other); err != nil {
			t.Fatal(err)
		}
		m := campaign.RoleMarketer
		tests := []struct {
			text, want string // want is the canonical text; "" means text itself
			treeHas    string
		}{
			{text: `attr.country = "DE" and tag "customer"`, treeHas: `{"all":[{"attr":"country","op":"eq","value":"DE"},{"field":"tags","op":"has","value":"customer"}]}`},
			{text: `(attr.plan = "pro" or attr.plan = "enterprise") and not tag "vip"`, treeHas: `{"any":[`},
			{text: `not (email ends_with "@example.com" or first_name = "")`, treeHas: `{"not":{"any":[`},
			{text: `score >= 10 and created_at within 30d and status in ["active", "bounced"]`, treeHas: `"value":30`},
			{text: `lifecycle_stage != "mql" or created_at before "2025-01-01" or last_name starts_with "Mc"`, treeHas: `"op":"before"`},
			{text: `attr.seats > 50 and attr.vip = true and attr.code in [1, 2.5] and attr.region missing`, treeHas: `"value":[1,2.5]`},
			{text: `clicked(campaign: 12, within: 30d, link: "pricing", at_least: 2, include_machine: true)`, treeHas: `"link_contains":"pricing"`},
			{text: `opened(campaign: any, within: 90d) and not clicked`, want: `opened(within: 90d) and not clicked`, treeHas: `"campaign":"any"`},
			{text: "segment(" + itoa(other.ID) + ") and tags has_none [\"vip\", \"partner\"]", treeHas: `{"segment":` + itoa(other.ID) + `}`},
			{text: "attr.company contains \"Acme\"\n  and\n  email = \"a@x.io\"", want: `attr.company contains "Acme" and email = "a@x.io"`, treeHas: `"op":"contains"`},
		}
		for _, tt := range tests {
			want := tt.want
			if want == "" {
				want = tt.text
			}
			body, _ := json.Marshal(map[string]string{"text": tt.text})
			first := parse(t, ta, string(body))
			if first.Text != want || !strings.Contains(string(first.Rule), tt.treeHas) {
				t.Errorf("parse %q = text %q tree %s, want text %q and a tree with %s", tt.text, first.Text, first.Rule, want, tt.treeHas)
				continue
			}
			// The tree, sent back as {"rule": TREE} and as the bare tree.
			for _, back := range []string{`{"rule": ` + string(first.Rule) + `}`, string(first.Rule)} {
				again := parse(t, ta, back)
				if again.Text != want || string(again.Rule) != string(first.Rule) {
					t.Errorf("parse of the tree of %q = %q %s, want %q %s", tt.text, again.Text, again.Rule, want, first.Rule)
				}
			}
			// The text counts as the tree does.
			if a, b := ta.json(m, "POST", "/api/v1/segments/preview", string(body)), ta.json(m, "POST", "/api/v1/segments/preview", `{"rule": `+string(first.Rule)+`}`); a.Status != 200 || b.Status != 200 {
				t.Errorf("preview of %q: %d %s / %d %s", tt.text, a.Status, a.Body, b.Status, b.Body)
			}
		}
	})
}

type parsed struct {
	Rule json.RawMessage `json:"rule"`
	Text string          `json:"text"`
}

func parse(t *testing.T, ta *testAPI, body string) parsed {
	t.Helper()
	res := ta.json(campaign.RoleMarketer, "POST", "/api/v1/segments/parse", body)
	var p parsed
	if err := json.Unmarshal(res.Body, &p); res.Status != 200 || err != nil {
		t.Fatalf("parse %s: %d %s", body, res.Status, res.Body)
	}
	return p
}

// TestParseSegmentRefusesBadRulesWithWhere: text errors carry their line
// and column, tree errors their JSON path, in the API's error shape; sales
// may not call the route.
func TestParseSegmentRefusesBadRulesWithWhere(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ta := newTestAPI(t, db, admin.Config{})
		tests := []struct {
			body      string
			field     string
			line, col int
		}{
			{`{"text": "opened and\n  attr.country = "}`, "rule", 2, 18},
			{`{"text": "attr.country = \"DE\" and"}`, "rule", 1, 24},
			{`{"text": "tag customer"}`, "rule", 1, 5},
			{`{"text": "score > \"ten\""}`, "rule.value", 0, 0},
			{`{"text": "segment(424242)"}`, "rule.segment", 0, 0},
			{`{"rule": {"all": [{"event": "opened"}, {"field": "phone", "op": "eq", "value": "1"}]}}`, "rule.all[1].field", 0, 0},
			{`{"rule": {"attr": "", "op": "exists"}}`, "rule.attr", 0, 0},
			{`{"text": 12}`, "text", 0, 0},
			{`{}`, "", 0, 0},
		}
		for _, tt := range tests {
			res := ta.json(campaign.RoleMarketer, "POST", "/api/v1/segments/parse", tt.body)
			if res.Status != 422 {
				t.Errorf("%s: status %d, want 422: %s", tt.body, res.Status, res.Body)
				continue
			}
			code, msg, details := res.errorBody(t)
			if code != campaign.EINVALID || msg == "" {
				t.Errorf("%s: code %q message %q", tt.body, code, msg)
			}
			if tt.field == "" {
				continue
			}
			found := false
			for _, d := range details {
				found = found || (d.Field == tt.field && d.Line == tt.line && d.Column == tt.col && d.Message != "")
			}
			if !found {
				t.Errorf("%s: details %+v lack field %s line %d column %d", tt.body, details, tt.field, tt.line, tt.col)
			}
		}
		if res := ta.json(campaign.RoleSales, "POST", "/api/v1/segments/parse", `{"text": "opened"}`); res.Status != 403 {
			t.Errorf("sales parse = %d, want 403", res.Status)
		}
		if res := ta.json("", "POST", "/api/v1/segments/parse", `{"text": "opened"}`); res.Status != 401 {
			t.Errorf("anonymous parse = %d, want 401", res.Status)
		}
	})
}
