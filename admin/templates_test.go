package admin_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/funnel-email/funnel/admin"
	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/mailer"
	"github.com/funnel-email/funnel/outbox"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
	"github.com/funnel-email/funnel/templates"
	"github.com/funnel-email/funnel/token"
)

const publicURL = "https://mail.example.com"

// newTemplateAPI returns an API whose template routes use the real
// template engine and composer, and whose test sends go to a real SMTP
// server in the test.
func newTemplateAPI(t *testing.T, db *store.DB) (*testAPI, *outbox.Server, *token.Codec) {
	t.Helper()
	codec, err := token.NewCodec([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	composer, err := mailer.NewComposer(mailer.ComposerConfig{BounceDomain: "bounces.example.com"}, codec)
	if err != nil {
		t.Fatal(err)
	}
	smtpSrv, err := outbox.Listen("127.0.0.1:0", outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { smtpSrv.Close() })
	smtpCfg, err := mailer.ParseSMTPURL("smtp://" + smtpSrv.Addr() + "?tls=none")
	if err != nil {
		t.Fatal(err)
	}
	sender, err := mailer.NewSender(smtpCfg)
	if err != nil {
		t.Fatal(err)
	}
	mail := &mailer.TemplateMail{Options: templates.Options{PublicURL: publicURL, Codec: codec}, Composer: composer, Sender: sender}
	return newTestAPI(t, db, admin.Config{Mail: mail}), smtpSrv, codec
}

const welcomeHTML = `<p>Hello {{ .Contact.FirstName | default "there" }} from {{ .Attr "company" | default "your team" }},</p>
<p><a href="https://example.com/pricing" data-funnel-intent="pricing">See pricing</a> or <a href="mailto:sales@example.com">write to us</a>.</p>`

func TestTemplateSaveReportsErrorsWithLineAndColumn(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ta, _, _ := newTemplateAPI(t, db)
		tests := []struct {
			name  string
			body  map[string]string
			field string
			line  int
		}{
			{"unclosed action", map[string]string{"name": "a", "subject": "Hi", "html": "<p>ok</p>\n<p>{{ .Contact.FirstName </p>"}, "html", 2},
			{"unknown field", map[string]string{"name": "b", "subject": "Hi", "html": "<p>one</p>\n<p>two</p>\n<p>{{ .Contact.Emial }}</p>"}, "html", 3},
			{"unknown function", map[string]string{"name": "c", "subject": "Hi {{ shout .Contact.FirstName }}", "html": "<p>x</p>"}, "subject", 1},
			{"no unsubscribe link without layout", map[string]string{"name": "d", "subject": "Hi", "html": "<html><body>x</body></html>", "layout": "none"}, "html", 0},
			{"missing subject", map[string]string{"name": "e", "html": "<p>x</p>"}, "subject", 0},
		}
		for _, tt := range tests {
			b, _ := json.Marshal(tt.body)
			got := ta.json(campaign.RoleMarketer, "POST", "/api/v1/templates", string(b))
			if got.Status != 422 {
				t.Errorf("%s: status %d, want 422: %s", tt.name, got.Status, got.Body)
				continue
			}
			_, _, details := got.errorBody(t)
			if len(details) == 0 || details[0].Field != tt.field || details[0].Line != tt.line || (tt.line > 0 && details[0].Column == 0) {
				t.Errorf("%s: details %+v, want field %s line %d with a column", tt.name, details, tt.field, tt.line)
			}
		}
		if ts, _ := db.ListTemplates(t.Context(), 0, 10); len(ts) != 0 {
			t.Errorf("invalid templates were stored: %d", len(ts))
		}
	})
}

func TestTemplatePreviewAndTestSend(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ta, smtpSrv, codec := newTemplateAPI(t, db)
		c := &campaign.Contact{Email: "ana@example.org", FirstName: "Ana", Attributes: campaign.Attributes{"company": "Acme"}}
		if err := db.CreateContact(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(map[string]string{"name": "Welcome", "subject": "Welcome, {{ .Contact.FirstName }}", "html": welcomeHTML})
		created := ta.json(campaign.RoleMarketer, "POST", "/api/v1/templates", string(b))
		if created.Status != 201 {
			t.Fatalf("create = %d %s", created.Status, created.Body)
		}
		var tpl campaign.Template
		json.Unmarshal(created.Body, &tpl)
		base := "/api/v1/templates/" + itoa(tpl.ID)

		if got := ta.json(campaign.RoleSales, "POST", base+"/preview", ""); got.Status != 403 {
			t.Errorf("sales preview = %d, want 403", got.Status)
		}
		got := ta.json(campaign.RoleMarketer, "POST", base+"/preview", `{"contact_id":`+itoa(c.ID)+`}`)
		if got.Status != 200 {
			t.Fatalf("preview = %d %s", got.Status, got.Body)
		}
		var p campaign.Preview
		json.Unmarshal(got.Body, &p)
		if p.Subject != "Welcome, Ana" || !strings.Contains(p.HTML, "Hello Ana from Acme") || !strings.Contains(p.Text, "Hello Ana from Acme") {
			t.Errorf("preview not personalized: subject %q html %q", p.Subject, p.HTML)
		}
		headers := map[string]string{}
		for _, h := range p.Headers {
			headers[h.Name] = h.Value
		}
		if !strings.Contains(headers["List-Unsubscribe"], publicURL+"/u/") || headers["List-Unsubscribe-Post"] != "List-Unsubscribe=One-Click" {
			t.Errorf("preview lacks one-click unsubscribe headers: %v", headers)
		}
		links := regexp.MustCompile(regexp.QuoteMeta(publicURL)+`/t/c/([A-Za-z0-9_-]+)`).FindAllStringSubmatch(p.HTML, -1)
		if len(links) == 0 {
			t.Fatalf("preview has no tracked links: %s", p.HTML)
		}
		for _, l := range links {
			tk, err := codec.Decode(l[1], token.Click)
			if err != nil || !tk.Preview() {
				t.Errorf("preview link %s is not a preview token: %+v %v", l[1], tk, err)
			}
		}

		if got := ta.json(campaign.RoleMarketer, "POST", base+"/test", `{"to":["qa@example.com"]}`); got.Status != 409 {
			t.Errorf("test send without a sender = %d, want 409: %s", got.Status, got.Body)
		}
		sender := `{"company_name":"Acme","postal_address":"1 Main St, Springfield","from_name":"Acme News","from_email":"news@acme.example"}`
		if got := ta.json(campaign.RoleMarketer, "PUT", "/api/v1/settings/sender", sender); got.Status != 403 {
			t.Errorf("marketer sets sender = %d, want 403 (admin only)", got.Status)
		}
		if got := ta.json(campaign.RoleAdmin, "PUT", "/api/v1/settings/sender", sender); got.Status != 200 {
			t.Fatalf("admin sets sender = %d %s", got.Status, got.Body)
		}
		for _, bad := range []string{`{"to":[]}`, `{"to":["not an address"]}`, `{"to":["a@x.io","b@x.io","c@x.io","d@x.io","e@x.io","f@x.io","g@x.io","h@x.io","i@x.io","j@x.io","k@x.io"]}`} {
			if got := ta.json(campaign.RoleMarketer, "POST", base+"/test", bad); got.Status != 422 {
				t.Errorf("test send %s = %d, want 422", bad, got.Status)
			}
		}
		if got := ta.json(campaign.RoleMarketer, "POST", base+"/test", `{"to":["QA@example.com"],"contact_id":`+itoa(c.ID)+`}`); got.Status != 200 {
			t.Fatalf("test send = %d %s", got.Status, got.Body)
		}
		msgs := smtpSrv.Messages()
		if len(msgs) != 1 || msgs[0].To[0] != "qa@example.com" || !strings.HasPrefix(msgs[0].Subject, "[Test] Welcome, Ana") {
			t.Fatalf("caught %+v", msgs)
		}
		if raw := string(msgs[0].Raw); !strings.Contains(raw, mailer.HeaderTest+": ") || !strings.Contains(raw, "Acme News") {
			t.Errorf("test message lacks the test header or the sender:\n%s", raw[:min(len(raw), 2000)])
		}
	})
}

// TestTemplatePreviewForAChosenContact: the preview renders the chosen
// contact's fields and attributes, sample data without one, and refuses
// an unknown or negative contact id with a 422 on contact_id.
func TestTemplatePreviewForAChosenContact(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ta, _, _ := newTemplateAPI(t, db)
		bea := &campaign.Contact{Email: "bea@example.org", FirstName: "Bea", Attributes: campaign.Attributes{"company": "Brightpath"}}
		cem := &campaign.Contact{Email: "cem@example.org", FirstName: "Cem"}
		gone := &campaign.Contact{Email: "gone@example.org", FirstName: "Gone"}
		for _, c := range []*campaign.Contact{bea, cem, gone} {
			if err := db.CreateContact(t.Context(), c); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.DeleteContact(t.Context(), gone.ID); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(map[string]string{"name": "Welcome", "subject": "Welcome, {{ .Contact.FirstName }}", "html": welcomeHTML})
		created := ta.json(campaign.RoleMarketer, "POST", "/api/v1/templates", string(b))
		if created.Status != 201 {
			t.Fatalf("create = %d %s", created.Status, created.Body)
		}
		var tpl campaign.Template
		json.Unmarshal(created.Body, &tpl)
		path := "/api/v1/templates/" + itoa(tpl.ID) + "/preview"

		sample := templates.SampleInput().Contact
		ok := []struct {
			name, body, subject, html string
		}{
			{"no body: sample data", "", "Welcome, " + sample.FirstName, "Hello " + sample.FirstName + " from " + sample.Attributes["company"].(string)},
			{"contact_id 0: sample data", `{"contact_id": 0}`, "Welcome, " + sample.FirstName, "Hello " + sample.FirstName},
			{"Bea", `{"contact_id": ` + itoa(bea.ID) + `}`, "Welcome, Bea", "Hello Bea from Brightpath"},
			{"Cem, without a company", `{"contact_id": ` + itoa(cem.ID) + `}`, "Welcome, Cem", "Hello Cem from your team"},
		}
		for _, tt := range ok {
			got := ta.json(campaign.RoleMarketer, "POST", path, tt.body)
			var p campaign.Preview
			if err := json.Unmarshal(got.Body, &p); got.Status != 200 || err != nil {
				t.Errorf("%s: %d %s", tt.name, got.Status, got.Body)
				continue
			}
			if p.Subject != tt.subject || !strings.Contains(p.HTML, tt.html) {
				t.Errorf("%s: subject %q, html %q; want subject %q and html with %q", tt.name, p.Subject, p.HTML, tt.subject, tt.html)
			}
		}

		bad := []struct {
			name, body, want string
		}{
			{"unknown id", `{"contact_id": 999999}`, "999999"},
			{"deleted contact", `{"contact_id": ` + itoa(gone.ID) + `}`, itoa(gone.ID)},
			{"negative id", `{"contact_id": -3}`, "sample data"},
		}
		for _, tt := range bad {
			got := ta.json(campaign.RoleMarketer, "POST", path, tt.body)
			if got.Status != 422 {
				t.Errorf("%s: status %d, want 422: %s", tt.name, got.Status, got.Body)
				continue
			}
			_, _, details := got.errorBody(t)
			if len(details) != 1 || details[0].Field != "contact_id" || !strings.Contains(details[0].Message, tt.want) {
				t.Errorf("%s: details %+v, want one on contact_id that mentions %q", tt.name, details, tt.want)
			}
		}
		if got := ta.json(campaign.RoleSales, "POST", path, `{"contact_id": `+itoa(bea.ID)+`}`); got.Status != 403 {
			t.Errorf("sales preview for a contact = %d, want 403", got.Status)
		}
		if got := ta.json(campaign.RoleMarketer, "POST", "/api/v1/templates/999999/preview", `{"contact_id": `+itoa(bea.ID)+`}`); got.Status != 404 {
			t.Errorf("preview of an unknown template = %d, want 404", got.Status)
		}
	})
}
