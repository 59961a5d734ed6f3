package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserAdminChecksSendingSetupAddsWebhookAndScoring walks the admin
// pages of the sending setup and the handoff in a real Chromium against
// `funnel dev` with a DKIM key: the navigation leads to the queue
// monitor, the SMTP page checks the in-process
// catcher by keyboard, the domains page publishes the key's record, a
// webhook is created through its form (a bad URL first, refused next to
// the field) and listed, and a scoring change becomes a new version.
func TestBrowserAdminChecksSendingSetupAddsWebhookAndScoring(t *testing.T) {
	ctx := newBrowser(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "dkim.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	// The demo data sends from news@northwind.example.
	base, _, _ := startDev(t, "sqlite:"+filepath.Join(t.TempDir(), "dev.db"), "-demo", "-dkim-keys", "northwind.example:s2026:"+keyFile)

	var (
		monitorURL, check, catcherNote, records, urlError, secret, listed, saved, versions, threshold, ownerRules string
		dkimValues                                                                                                []string
		narrow                                                                                                    = map[string]bool{}
	)
	fits := func(name string) chromedp.Action[chromedp.Void] {
		var ok bool
		return chromedp.Steps(
			into(&ok, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= 390`)),
			chromedp.Func(func(context.Context, *chromedp.Target) error { narrow[name] = ok; return nil }),
		)
	}
	walkCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err = chromedp.Do(walkCtx,
		login(base, "admin@example.com"),

		// The queue monitor, linked from the navigation.
		into(&monitorURL, chromedp.Evaluate[string](`document.querySelector('header nav a[href="/monitoring/"]').href`)),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Navigate(monitorURL)(ctx, tg)
			return err
		}),
		chromedp.Poll[chromedp.Void](`document.title === "Asynq - Monitoring"`),
		chromedp.Navigate(base+"/"),

		// SMTP servers: funnel dev's catcher, checked from the keyboard.
		chromedp.Click(chromedp.CSS(`header nav a[href="/settings/smtp"]`)),
		chromedp.WaitVisible(chromedp.CSS(`form[data-smtp-check] button`)),
		into(&catcherNote, chromedp.Text(chromedp.CSS(`section.smtp-server`))),
		chromedp.Focus(chromedp.CSS(`form[data-smtp-check] button`)),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.CSS(`.check-result p`)),
		into(&check, chromedp.Text(chromedp.CSS(`.check-result`))),
		shot(t, "settings-smtp"),

		// Sending domains, reached by the settings tabs.
		chromedp.Click(chromedp.CSS(`nav.tabs a[href="/settings/domains"]`)),
		chromedp.WaitVisible(chromedp.CSS(`section.domain`)),
		into(&records, chromedp.Text(chromedp.CSS(`main`))),
		into(&dkimValues, chromedp.Evaluate[[]string](`[...document.querySelectorAll("dl.record code.value")].map(c => c.textContent).filter(v => v.startsWith("v=DKIM1"))`)),
		shot(t, "settings-domains"),

		// A webhook through its form: a bad URL is refused next to the field.
		chromedp.Navigate(base+"/webhooks"),
		chromedp.Click(chromedp.CSS(`main a.button.primary`)),
		chromedp.WaitVisible(chromedp.CSS(`#url`)),
		chromedp.SendKeys(chromedp.CSS(`#url`), "ftp://crm.example.com/hooks"),
		chromedp.SendKeys(chromedp.CSS(`#description`), "CRM lead sync"),
		chromedp.Click(chromedp.CSS(`form[data-webhook-create] button.primary`)),
		chromedp.WaitVisible(chromedp.CSS(`#url-error`)),
		into(&urlError, chromedp.Text(chromedp.CSS(`#url-error`))),
		shot(t, "webhook-error"),
		chromedp.SetValue(chromedp.CSS(`#url`), "http://127.0.0.1:9/hooks/crm"),
		chromedp.Click(chromedp.CSS(`form[data-webhook-create] button.primary`)),
		chromedp.WaitVisible(chromedp.CSS(`#webhook-secret`)),
		into(&secret, chromedp.Text(chromedp.CSS(`#secret`))),
		shot(t, "webhook-created"),
		chromedp.Click(chromedp.CSS(`#webhook-link`)),
		chromedp.WaitVisible(chromedp.CSS(`form[data-method="PATCH"]`)),
		shot(t, "webhook"),
		chromedp.Navigate(base+"/webhooks"),
		chromedp.WaitVisible(chromedp.CSS(`table.list`)),
		into(&listed, chromedp.Text(chromedp.CSS(`table.list tbody`))),
		shot(t, "webhooks"),

		// Scoring: a higher threshold and pricing patterns saved as a new version,
		// then an owner rule as another.
		chromedp.Click(chromedp.CSS(`header nav a[href="/scoring"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#threshold`)),
		chromedp.SetValue(chromedp.CSS(`#threshold`), "35"),
		chromedp.SetValue(chromedp.CSS(`#high_intent_patterns`), "/pricing\n/demo"),
		chromedp.Click(chromedp.CSS(`#scoring-form button.primary`)),
		chromedp.WaitVisible(chromedp.CSS(`.notice[role=status]`)),
		// An owner rule, added as a row of the form.
		chromedp.Click(chromedp.CSS(`[data-add-rule]`)),
		chromedp.SendKeys(chromedp.CSS(`table.rules tbody tr:last-child input[data-k="attribute"]`), "country"),
		chromedp.SendKeys(chromedp.CSS(`table.rules tbody tr:last-child input[data-k="value"]`), "DE"),
		into(new(bool), chromedp.Evaluate[bool](`(()=>{const s=document.querySelector('table.rules tbody tr:last-child select');
			s.value=[...s.options].find(o=>o.textContent.includes("sales@example.com")).value; s.dispatchEvent(new Event("change", {bubbles:true})); return true})()`)),
		chromedp.Click(chromedp.CSS(`#scoring-form button.primary`)),
		chromedp.WaitVisible(chromedp.CSS(`table.rules tbody tr input[value="country"]`)),
		into(&saved, chromedp.Text(chromedp.CSS(`.notice[role=status]`))),
		into(&threshold, chromedp.Value(chromedp.CSS(`#threshold`))),
		into(&versions, chromedp.Text(chromedp.CSS(`table.versions tbody`))),
		into(&ownerRules, chromedp.Text(chromedp.CSS(`table.versions tbody tr:first-child td[data-label="Owner rules"]`))),
		shot(t, "scoring"),

		// The pages stay readable on a 390 px wide phone.
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Navigate(base+"/settings/domains"),
		chromedp.WaitVisible(chromedp.CSS(`section.domain`)),
		fits("domains"),
		shot(t, "mobile-settings-domains"),
		chromedp.Navigate(base+"/settings/smtp"),
		chromedp.WaitVisible(chromedp.CSS(`section.smtp-server`)),
		fits("smtp"),
		chromedp.Navigate(base+"/scoring"),
		chromedp.WaitVisible(chromedp.CSS(`table.versions`)),
		fits("scoring"),
		shot(t, "mobile-scoring"),
		chromedp.Navigate(base+"/webhooks"),
		chromedp.Click(chromedp.CSS(`table.list tbody a`)),
		chromedp.WaitVisible(chromedp.CSS(`form[data-method="PATCH"]`)),
		fits("webhook"),
		chromedp.EmulateReset(),
	)
	if err != nil {
		var at, page string
		_ = chromedp.Do(ctx, into(&at, chromedp.Location()), into(&page, chromedp.Text(chromedp.CSS(`main`))))
		t.Fatalf("browser walk: %v\nat %s:\n%s", err, at, page)
	}

	checks := []struct{ what, got, want string }{
		{"queue monitor reached from the navigation", monitorURL, base + "/monitoring/"},
		{"SMTP page names the catcher", catcherNote, "funnel dev catcher"},
		{"SMTP check result", check, "OK: connected"},
		{"SMTP check shows the greeting", check, "ESMTP"},
		{"domains page lists the demo sender's domain", records, "northwind.example"},
		{"domains page names the DKIM record", records, "s2026._domainkey.northwind.example"},
		{"domains page gives the DMARC record", records, "_dmarc.northwind.example"},
		{"bad webhook URL, next to the field", urlError, "http or https"},
		{"webhook list", listed, "http://127.0.0.1:9/hooks/crm"},
		{"webhook list description", listed, "CRM lead sync"},
		{"scoring saved notice", saved, "Saved as version"},
		{"threshold in force", threshold, "35"},
		{"versions list", versions, "admin@example.com"},
		{"owner rules of the version in force", ownerRules, "1"},
	}
	for _, c := range checks {
		if !strings.Contains(c.got, c.want) {
			t.Errorf("%s = %q, want it to contain %q", c.what, c.got, c.want)
		}
	}
	if !strings.HasPrefix(secret, "whsec_") {
		t.Errorf("webhook secret shown after creating = %q, want whsec_...", secret)
	}
	if len(dkimValues) != 1 {
		t.Fatalf("DKIM records on the domains page = %q, want one", dkimValues)
	}
	p, _ := strings.CutPrefix(dkimValues[0], "v=DKIM1; k=rsa; p=")
	der, _ := base64.StdEncoding.DecodeString(p)
	if pub, err := x509.ParsePKIXPublicKey(der); err != nil || !key.PublicKey.Equal(pub) {
		t.Errorf("the DKIM record on the page (%.60q…) is not the configured key's public key (%v)", dkimValues[0], err)
	}
	for _, name := range []string{"domains", "smtp", "scoring", "webhook"} {
		if !narrow[name] {
			t.Errorf("the %s page scrolls sideways at 390 px", name)
		}
	}
}
