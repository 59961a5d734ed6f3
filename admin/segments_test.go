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
