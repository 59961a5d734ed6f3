package tracking_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
	"github.com/funnel-email/funnel/templates"
	"github.com/funnel-email/funnel/token"
)

// get fetches u with a browser's User-Agent and returns the answer and
// its body.
func get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", browserUA)
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

func (f *fixture) viewURL(d int64) string {
	return f.url(templates.PathView, token.Token{Kind: token.View, Delivery: d})
}

// editTemplate replaces the HTML of the fixture campaign's template and
// returns the template as saved.
func (f *fixture) editTemplate(t *testing.T, html string) *campaign.Template {
	t.Helper()
	ctx := context.Background()
	c, err := f.db.FindCampaign(ctx, f.campaign)
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := f.db.FindTemplate(ctx, c.TemplateID)
	if err != nil {
		t.Fatal(err)
	}
	tpl.HTML = html
	if err := f.db.UpdateTemplate(ctx, tpl); err != nil {
		t.Fatal(err)
	}
	return tpl
}

func TestViewInBrowserShowsTheContactsMessageAsSent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db, "", time.Hour)
		tpl := f.editTemplate(t, `<p>Hello {{ .Contact.Email }}, sent {{ date "2006-01-02 15:04" "UTC" .Now }}</p><a href="`+links[0].URL+`">Pricing</a>`)

		res, body := get(t, f.viewURL(f.delivery[0]))
		if res.StatusCode != http.StatusOK {
			t.Fatalf("view: %d %s", res.StatusCode, body)
		}
		// The message as the sender rendered it for this delivery.
		ct, err := db.FindContact(ctx, f.contacts[0])
		if err != nil {
			t.Fatal(err)
		}
		sent, err := db.SentDeliveries(ctx, f.delivery[:1])
		if err != nil {
			t.Fatal(err)
		}
		compiled, err := templates.Compile(*tpl, templates.Options{PublicURL: publicURL, Codec: f.codec})
		if err != nil {
			t.Fatal(err)
		}
		want, err := compiled.Render(templates.Input{Contact: *ct, Campaign: templates.CampaignData{ID: f.campaign, Name: "Launch"},
			Sender: campaign.Sender{FromEmail: "news@acme.example"}, Delivery: f.delivery[0], Now: sent[f.delivery[0]].SentAt})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want.HTML, body); diff != "" {
			t.Errorf("page (-want +got):\n%s", diff)
		}
		click := publicURL + templates.PathClick + f.codec.Encode(token.Token{Kind: token.Click, Delivery: f.delivery[0], Link: 1})
		if !strings.Contains(body, "c0@example.com") || strings.Contains(body, "c1@example.com") || !strings.Contains(body, click) {
			t.Errorf("page is not contact 0's message with its tracked link:\n%s", body)
		}
		for k, v := range map[string]string{"Content-Type": "text/html; charset=utf-8", "X-Frame-Options": "DENY"} {
			if got := res.Header.Get(k); got != v {
				t.Errorf("%s: %q, want %q", k, got, v)
			}
		}
		csp := res.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("CSP %q allows scripts or framing", csp)
		}
		if !strings.Contains(res.Header.Get("Cache-Control"), "no-store") {
			t.Errorf("Cache-Control %q", res.Header.Get("Cache-Control"))
		}
		f.drain(t)
		if n := f.count(t); n != 0 {
			t.Errorf("viewing recorded %d events; the page's pixel records the open", n)
		}
	})
}

func TestViewInBrowserWithABadTokenOrAGoneContactGets404(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db, "", time.Hour)
		u := f.viewURL(f.delivery[0])
		s := f.codec.Encode(token.Token{Kind: token.View, Delivery: f.delivery[0]})
		i, alphabet := len(s)/2, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		tampered := f.srv.URL + templates.PathView + s[:i] + string(alphabet[(strings.IndexByte(alphabet, s[i])+1)%64]) + s[i+1:]
		for name, bad := range map[string]string{
			"tampered":         tampered,
			"truncated":        u[:len(u)-1],
			"open token":       f.srv.URL + templates.PathView + f.codec.Encode(token.Token{Kind: token.Open, Delivery: f.delivery[0]}),
			"unknown delivery": f.viewURL(f.delivery[1] + 1000),
		} {
			if res, body := get(t, bad); res.StatusCode != http.StatusNotFound || strings.Contains(body, "example.com") {
				t.Errorf("%s: %d, want the 404 page\n%s", name, res.StatusCode, body)
			}
		}
		if err := db.DeleteContact(context.Background(), f.contacts[1]); err != nil {
			t.Fatal(err)
		}
		if res, _ := get(t, f.viewURL(f.delivery[1])); res.StatusCode != http.StatusNotFound {
			t.Errorf("deleted contact: %d, want 404", res.StatusCode)
		}
	})
}

func TestViewInBrowserOfAPreviewSaysSo(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db, "", time.Hour)
		res, body := get(t, f.viewURL(token.PreviewDelivery))
		if res.StatusCode != http.StatusOK || !strings.Contains(body, "preview") {
			t.Errorf("preview: %d\n%s", res.StatusCode, body)
		}
	})
}

func TestViewInBrowserOfAMessageThatNoLongerRendersIs500WithoutDetails(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db, "", time.Hour)
		c, err := db.FindCampaign(context.Background(), f.campaign)
		if err != nil {
			t.Fatal(err)
		}
		// Saved templates always compile; this one was broken behind the API's back.
		if _, err := db.ExecContext(context.Background(), db.Rebind(`UPDATE templates SET html = ?, updated_at = ? WHERE id = ?`),
			"<p>{{ .Nope }}</p>", time.Now().UTC(), c.TemplateID); err != nil {
			t.Fatal(err)
		}
		res, body := get(t, f.viewURL(f.delivery[0]))
		if res.StatusCode != http.StatusInternalServerError || strings.Contains(body, "Nope") || strings.Contains(body, "template") {
			t.Errorf("broken template: %d\n%s", res.StatusCode, body)
		}
	})
}
