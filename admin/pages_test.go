package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

// page GETs a page of the UI with a session of the role and returns the
// status and the HTML.
func (w *walkAPI) page(t *testing.T, role campaign.Role, path string) (int, string) {
	t.Helper()
	cookie, _ := w.session(t, role)
	req, _ := http.NewRequest("GET", w.srv.URL+path, nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: cookie})
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// apiAs calls the API with the role's user token and decodes the answer.
func (w *walkAPI) apiAs(t *testing.T, role campaign.Role, method, path, body string, out any) {
	t.Helper()
	req, _ := http.NewRequest(method, w.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+w.tokens[role])
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatal(err)
		}
	}
}

func mustContain(t *testing.T, what, html string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(html, want) {
			t.Errorf("%s does not contain %q", what, want)
		}
	}
}

func mustNotContain(t *testing.T, what, html string, nots ...string) {
	t.Helper()
	for _, not := range nots {
		if strings.Contains(html, not) {
			t.Errorf("%s contains %q", what, not)
		}
	}
}

// TestWebhookPagesShowEndpointsButNeverTheSecret: marketers and admins
// list, create and edit webhooks; the signing secret, which the API
// gives only when an endpoint is created, is on no page.
func TestWebhookPagesShowEndpointsButNeverTheSecret(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWalkAPI(t, db)
		var wh campaign.Webhook
		w.apiAs(t, campaign.RoleMarketer, "POST", "/api/v1/webhooks",
			`{"url": "https://crm.example.com/hooks/funnel?src=<x>", "events": ["lead.created"], "description": "CRM sync"}`, &wh)
		if wh.Secret == "" {
			t.Fatal("creating a webhook gave no secret")
		}
		for _, role := range []campaign.Role{campaign.RoleMarketer, campaign.RoleAdmin} {
			status, html := w.page(t, role, "/webhooks")
			if status != 200 {
				t.Fatalf("/webhooks as %s: %d", role, status)
			}
			mustContain(t, "the webhook list", html, `href="/webhooks/`+strconv.FormatInt(wh.ID, 10)+`"`,
				"https://crm.example.com/hooks/funnel?src=&lt;x&gt;", "CRM sync", wh.SecretPrefix+"…", "lead.created")

			status, html = w.page(t, role, "/webhooks/new")
			if status != 200 {
				t.Fatalf("/webhooks/new as %s: %d", role, status)
			}
			mustContain(t, "the new webhook form", html, `data-action="/api/v1/webhooks"`, "data-webhook-create", `<label for="url">`,
				`value="lead.created" data-str-list checked`, `value="contact.unsubscribed" data-str-list checked`)

			status, html = w.page(t, role, "/webhooks/"+strconv.FormatInt(wh.ID, 10))
			if status != 200 {
				t.Fatalf("/webhooks/%d as %s: %d", wh.ID, role, status)
			}
			mustContain(t, "the webhook page", html, `data-method="PATCH"`, `data-method="DELETE"`,
				`value="lead.created" data-str-list checked`, "No deliveries yet", "The latest 50 deliveries", wh.SecretPrefix+"…")
			mustNotContain(t, "the webhook page", html, wh.Secret, `value="lead.updated" data-str-list checked`)
		}
		if status, _ := w.page(t, campaign.RoleMarketer, "/webhooks/999999"); status != 404 {
			t.Errorf("a missing webhook's page: %d, want 404", status)
		}
		if status, _ := w.page(t, campaign.RoleSales, "/webhooks"); status != 403 {
			t.Errorf("/webhooks as sales: %d, want 403", status)
		}
	})
}

// TestScoringPageEditableOnlyByThoseWhoMaySave: the page shows the rules
// in force to every reader; the form is enabled and the versions (with
// who saved them) are listed only for roles the route table lets save
// and list them.
func TestScoringPageEditableOnlyByThoseWhoMaySave(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWalkAPI(t, db)
		w.apiAs(t, campaign.RoleMarketer, "PUT", "/api/v1/scoring",
			`{"open": 2, "click": 6, "high_intent_click": 20, "high_intent_patterns": ["/pricing"], "threshold": 35, "half_life_days": 14,
			  "owner_rules": [{"attribute": "country", "value": "DE", "user_id": `+strconv.FormatInt(w.users[campaign.RoleSales].ID, 10)+`}]}`, nil)
		w.apiAs(t, campaign.RoleAdmin, "PUT", "/api/v1/scoring", `{"threshold": 40}`, nil)

		for _, role := range []campaign.Role{campaign.RoleMarketer, campaign.RoleAdmin} {
			status, html := w.page(t, role, "/scoring")
			if status != 200 {
				t.Fatalf("/scoring as %s: %d", role, status)
			}
			mustContain(t, "the scoring page as "+string(role), html, `<label for="threshold">`, `id="threshold" name="threshold"`,
				`value="40"`, "Save as a new version", `<table class="list versions">`)
			mustNotContain(t, "the scoring page as "+string(role), html, "disabled>")
			rows := regexp.MustCompile(`(?s)<table class="list versions">.*?</table>`).FindString(html)
			mustContain(t, "the versions", rows, `data-label="Version">2 <span class="badge active">in force`,
				"admin@example.com", "marketer@example.com", `data-label="Threshold">35<`, `<code>/pricing</code>`)
		}
		status, html := w.page(t, campaign.RoleSales, "/scoring")
		if status != 200 {
			t.Fatalf("/scoring as sales: %d", status)
		}
		mustContain(t, "the scoring page as sales", html, `<fieldset class="plain" disabled>`, `value="40"`, "marketers and admins change them")
		mustNotContain(t, "the scoring page as sales", html, "Save as a new version", `<table class="list versions">`, "Add owner rule")
	})
}

// TestSettingsPagesRenderForAdmins: with nothing configured the pages
// say what to set.
func TestSettingsPagesRenderForAdmins(t *testing.T) {
	w := newWalkAPI(t, storetest.Open(t, store.SQLite))
	for path, want := range map[string]string{
		"/settings/smtp":    "No SMTP server is configured for this process",
		"/settings/domains": "No domain yet",
	} {
		status, html := w.page(t, campaign.RoleAdmin, path)
		if status != 200 {
			t.Fatalf("%s: %d", path, status)
		}
		mustContain(t, path, html, want, `<nav class="tabs" aria-label="Settings">`, `href="/settings/smtp" aria-current="page">Settings</a>`)
	}
}
