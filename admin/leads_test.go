package admin_test

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/funnel-email/funnel/admin"
	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

// seedLeads makes n contacts with clicks worth 20+5i points, scored, so
// that each is a lead.
func seedLeads(t *testing.T, db *store.DB, n int) []int64 {
	t.Helper()
	var ids []int64
	at := time.Now().UTC().Add(-time.Hour)
	for i := range n {
		c := &campaign.Contact{Email: fmt.Sprintf("lead%d@example.com", i), FirstName: "=HYPERLINK(1)"}
		if err := db.CreateContact(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		var es []campaign.Event
		for j := range 4 + i {
			es = append(es, campaign.Event{ContactID: c.ID, CampaignID: 0, Kind: campaign.EventClicked, Human: true,
				Link: fmt.Sprintf("https://x.test/%d", j), OccurredAt: at})
		}
		if err := db.InsertEvents(t.Context(), es); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	for {
		run, err := db.ScoreEvents(t.Context(), 100)
		if err != nil {
			t.Fatal(err)
		}
		if !run.More && !run.Busy {
			break
		}
	}
	return ids
}

func TestLeadRoutesCheckRolesAndInput(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ta := newTestAPI(t, db, admin.Config{})
		seedLeads(t, db, 1)
		ls, _ := db.ListLeads(t.Context(), campaign.LeadFilter{})
		lead := "/api/v1/leads/" + itoa(ls[0].ID)
		tests := []struct {
			role   campaign.Role
			method string
			path   string
			body   string
			want   int
		}{
			{"", "GET", "/api/v1/leads", "", 401},
			{campaign.RoleSales, "GET", "/api/v1/leads", "", 200},
			{campaign.RoleMarketer, "GET", "/api/v1/leads", "", 200},
			{campaign.RoleSales, "GET", lead, "", 200},
			{campaign.RoleMarketer, "PATCH", lead, `{"status":"accepted"}`, 403},
			{campaign.RoleSales, "PATCH", lead, `{"status":"maybe"}`, 422},
			{campaign.RoleSales, "PATCH", lead, `{"status":"rejected"}`, 422},
			{campaign.RoleSales, "PATCH", lead, `{"status":"won"}`, 409},
			{campaign.RoleSales, "PATCH", lead, `{"owner_user_id":999}`, 422},
			{campaign.RoleSales, "PATCH", lead, `{}`, 422},
			{campaign.RoleSales, "PATCH", "/api/v1/leads/999", `{"status":"accepted"}`, 404},
			{campaign.RoleSales, "PATCH", lead, `{"status":"accepted"}`, 200},
			{campaign.RoleAdmin, "PATCH", lead, `{"status":"won"}`, 200},
			{campaign.RoleSales, "PATCH", lead, `{"status":"rejected","reason":"x"}`, 409},
			{campaign.RoleSales, "GET", "/api/v1/leads?status=open", "", 422},
			{campaign.RoleSales, "GET", "/api/v1/leads?min_score=lots", "", 422},
			{campaign.RoleSales, "GET", "/api/v1/leads?since=yesterday", "", 422},
			{campaign.RoleSales, "GET", "/api/v1/leads?cursor=abc", "", 422},
			{campaign.RoleSales, "GET", "/api/v1/engaged", "", 200},
			{campaign.RoleSales, "GET", "/api/v1/scoring", "", 200},
			{campaign.RoleSales, "PUT", "/api/v1/scoring", `{"threshold":10}`, 403},
			{campaign.RoleMarketer, "PUT", "/api/v1/scoring", `{"threshold":-1}`, 422},
			{campaign.RoleMarketer, "PUT", "/api/v1/scoring", `{"threshold":25,"owner_rules":[{"attribute":"country","value":"DE","user_id":77}]}`, 422},
			{campaign.RoleMarketer, "PUT", "/api/v1/scoring", `{"threshold":25}`, 200},
			{campaign.RoleSales, "GET", "/api/v1/webhooks", "", 403},
			{campaign.RoleSales, "GET", "/api/v1/contacts/" + itoa(ls[0].ContactID) + "/score", "", 200},
			{campaign.RoleSales, "GET", "/api/v1/contacts/999/score", "", 404},
		}
		for _, tt := range tests {
			got := ta.json(tt.role, tt.method, tt.path, tt.body)
			if got.Status != tt.want {
				t.Errorf("%s %s %s as %q: %d, want %d: %s", tt.method, tt.path, tt.body, tt.role, got.Status, tt.want, got.Body)
			}
			if got.Status >= 400 && got.Status != 401 && got.Status != 403 {
				got.errorBody(t)
			}
		}
		var rules campaign.ScoreRules
		_ = json.Unmarshal(ta.json(campaign.RoleSales, "GET", "/api/v1/scoring", "").Body, &rules)
		if rules.Threshold != 25 || rules.Version == 0 {
			t.Errorf("rules after PUT: %+v", rules)
		}
	})
}

func TestBadWebhookURLsAre422(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ta := newTestAPI(t, db, admin.Config{})
		for _, u := range []string{"", "ftp://crm.example.com/x", "javascript:alert(1)", "https://user:pw@crm.example.com/x",
			"http://127.0.0.1:8080/x", "http://localhost/x", "http://[::1]/x", "http://10.1.2.3/x", "http://169.254.169.254/latest",
			"https://crm.example.com/x#frag", "https://crm.example.com:99999/x", "https:///x", "https://crm example.com/"} {
			body := fmt.Sprintf(`{"url":%q,"events":["lead.created"]}`, u)
			if got := ta.json(campaign.RoleMarketer, "POST", "/api/v1/webhooks", body); got.Status != 422 {
				t.Errorf("url %q: %d, want 422: %s", u, got.Status, got.Body)
			}
		}
		if got := ta.json(campaign.RoleMarketer, "POST", "/api/v1/webhooks", `{"url":"https://crm.example.com/x","events":["lead.deleted"]}`); got.Status != 422 {
			t.Errorf("unknown event: %d", got.Status)
		}
		got := ta.json(campaign.RoleMarketer, "POST", "/api/v1/webhooks", `{"url":"https://crm.example.com/x","events":["lead.created","lead.updated"]}`)
		var wh campaign.Webhook
		if err := json.Unmarshal(got.Body, &wh); err != nil || got.Status != 201 || !strings.HasPrefix(wh.Secret, "whsec_") || !wh.Active {
			t.Fatalf("create: %d %s", got.Status, got.Body)
		}
		got = ta.json(campaign.RoleMarketer, "GET", "/api/v1/webhooks/"+itoa(wh.ID), "")
		if got.Status != 200 || strings.Contains(string(got.Body), wh.Secret) {
			t.Errorf("GET shows the secret or fails: %d %s", got.Status, got.Body)
		}
		if got := ta.json(campaign.RoleMarketer, "PATCH", "/api/v1/webhooks/"+itoa(wh.ID), `{"url":"http://127.0.0.1/x"}`); got.Status != 422 {
			t.Errorf("PATCH to loopback: %d", got.Status)
		}
		// With the allow setting (tests, funnel dev) loopback is accepted.
		ta2 := newTestAPI(t, db, admin.Config{AllowPrivateWebhooks: true})
		if got := ta2.json(campaign.RoleAdmin, "POST", "/api/v1/webhooks", `{"url":"http://127.0.0.1:9/x","events":["lead.created"]}`); got.Status != 201 {
			t.Errorf("loopback with AllowPrivateWebhooks: %d %s", got.Status, got.Body)
		}
	})
}

func TestLeadListSortsByScorePagesAndExports(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ta := newTestAPI(t, db, admin.Config{})
		seedLeads(t, db, 5)
		var seen []float64
		cursor := ""
		for range 10 {
			got := ta.json(campaign.RoleSales, "GET", "/api/v1/leads?limit=2&cursor="+cursor, "")
			var page struct {
				Leads      []campaign.Lead `json:"leads"`
				NextCursor string          `json:"next_cursor"`
			}
			if err := json.Unmarshal(got.Body, &page); err != nil || got.Status != 200 {
				t.Fatalf("%d %s", got.Status, got.Body)
			}
			for _, l := range page.Leads {
				seen = append(seen, l.Score)
			}
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
		if fmt.Sprint(seen) != "[40 35 30 25 20]" {
			t.Errorf("scores in page order %v, want [40 35 30 25 20]", seen)
		}
		got := ta.json(campaign.RoleSales, "GET", "/api/v1/leads?min_score=30", "")
		if n := strings.Count(string(got.Body), `"contact_id"`); n != 3 {
			t.Errorf("min_score=30 gave %d leads", n)
		}

		got = ta.json(campaign.RoleSales, "GET", "/api/v1/leads.csv", "")
		rows, err := csv.NewReader(strings.NewReader(string(got.Body))).ReadAll()
		if err != nil || len(rows) != 6 || rows[0][2] != "email" || rows[1][8] != "40" {
			t.Fatalf("leads.csv: %v %q", err, got.Body)
		}
		if rows[1][3] != "'=HYPERLINK(1)" {
			t.Errorf("a formula reached the CSV unescaped: %q", rows[1][3])
		}

		req, _ := http.NewRequest("GET", ta.srv.URL+"/api/v1/engaged?min_score=35", nil)
		req.Header.Set("Authorization", "Bearer "+ta.tokens[campaign.RoleSales])
		req.Header.Set("Accept", "text/csv")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		rows, err = csv.NewReader(resp.Body).ReadAll()
		resp.Body.Close()
		if err != nil || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" || len(rows) != 3 || rows[1][7] != "7" {
			t.Errorf("engaged CSV: %v %v", err, rows)
		}
		got = ta.json(campaign.RoleSales, "GET", "/api/v1/engaged", "")
		if n := strings.Count(string(got.Body), `"contact_id"`); n != 5 || got.Status != 200 {
			t.Errorf("engaged JSON: %d contacts: %s", n, got.Body)
		}
	})
}
