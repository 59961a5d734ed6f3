package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/funnel-email/funnel/admin/ui/browsertest"
)

// The web UI in a real headless Chromium (Debian's chromium package),
// driven over the DevTools protocol by chromedp, against `funnel dev`
// started through run. Set FUNNEL_SCREENSHOTS=docs/screenshots (a path
// relative to the repository root, or absolute) to write screenshots of
// the main pages.

// newBrowser starts Chromium for the walks through funnel dev, with a
// desktop user agent so that its clicks count as human.
func newBrowser(t *testing.T) context.Context {
	return browsertest.Start(t, chromedp.UserAgent(browsertest.DesktopUserAgent))
}

// shot saves a full-page screenshot when FUNNEL_SCREENSHOTS is set.
func shot(t *testing.T, name string) chromedp.Action[chromedp.Void] {
	dir := os.Getenv("FUNNEL_SCREENSHOTS")
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if dir == "" {
			return nil
		}
		if !filepath.IsAbs(dir) {
			dir = filepath.Join("..", "..", dir) // tests run in cmd/funnel
		}
		buf, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644)
	})
}

func login(base, email string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/login"] #email`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), email),
		chromedp.SendKeys(chromedp.CSS(`#password`), demoPassword),
		chromedp.Submit(chromedp.CSS(`#password`)),
		chromedp.WaitVisible(chromedp.CSS(`header.top`)),
	)
}

func logout() chromedp.Action[chromedp.Void] {
	return chromedp.Steps(chromedp.Click(chromedp.CSS(`form.logout button`)), chromedp.WaitVisible(chromedp.CSS(`form[action="/login"] #email`)))
}

// TestBrowserMarketerSendsCampaignSalesCannotEdit walks the product as a
// marketer: sign in, import a CSV, build a segment with a live count,
// write and preview a template, send a campaign and find it in the
// outbox; then a sales user finds campaign editing forbidden.
func TestBrowserMarketerSendsCampaignSalesCannotEdit(t *testing.T) {
	ctx := newBrowser(t)
	base, token, _ := startDev(t, "sqlite:"+filepath.Join(t.TempDir(), "dev.db"), "-demo")
	csv := filepath.Join(t.TempDir(), "people.csv")
	if err := os.WriteFile(csv, []byte("email,first_name,company\nada@example.com,Ada,Analytical\ngrace@example.com,Grace,Navy\nnot-an-email,Bad,Row\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var (
		narrow         bool
		report, secret string
		monitorLinks   = -1
	)
	var (
		messageURL, leadWhy, leadStatus, wrongLogin, importStatus, importErrors, count, previewSubject, subject, forbidden, url string
	)
	walkCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	fail := func(err error) {
		t.Helper()
		api := client{t: t, base: base, token: token}
		var found struct {
			Contacts []struct{ ID int64 } `json:"contacts"`
		}
		api.do("GET", "/api/v1/contacts?email_prefix=ada", "", nil, &found)
		for _, c := range found.Contacts {
			var score any
			api.do("GET", "/api/v1/contacts/"+strconv.FormatInt(c.ID, 10)+"/score", "", nil, &score)
			t.Logf("score of contact %d: %v", c.ID, score)
		}
		var at, page string
		_ = chromedp.Do(ctx, into(&at, chromedp.Location()), into(&page, chromedp.Text(chromedp.CSS(`main`))))
		t.Fatalf("browser walk: %v\nat %s:\n%s", err, at, page)
	}
	err := chromedp.Do(walkCtx,
		// A wrong password is shown next to the field.
		chromedp.Navigate(base+"/campaigns"),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/login"] #email`)),
		shot(t, "login"),
		chromedp.SendKeys(chromedp.CSS(`#email`), "marketer@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "not the password"),
		chromedp.Submit(chromedp.CSS(`#password`)),
		chromedp.WaitVisible(chromedp.CSS(`#password-error`)),
		into(&wrongLogin, chromedp.Text(chromedp.CSS(`#password-error`))),
		login(base, "marketer@example.com"),
		into(&monitorLinks, chromedp.Evaluate[int](`document.querySelectorAll('a[href^="/monitoring"]').length`)),

		// Import a CSV with one bad row.
		chromedp.Navigate(base+"/contacts/import"),
		chromedp.SetUploadFiles(chromedp.CSS(`#file`), []string{csv}),
		chromedp.Click(chromedp.CSS(`#import-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#import-progress[data-done]`)),
		into(&importStatus, chromedp.Text(chromedp.CSS(`#import-status`))),
		into(&importErrors, chromedp.Text(chromedp.CSS(`#import-errors tbody`))),
		shot(t, "import"),
		chromedp.Navigate(base+"/contacts?q=ada"),
		chromedp.WaitVisible(chromedp.CSS(`table.list`)),
		shot(t, "contacts"),

		// A segment with a live count.
		chromedp.Navigate(base+"/segments/new"),
		chromedp.SendKeys(chromedp.CSS(`#name`), "Ada and Grace"),
		chromedp.SendKeys(chromedp.CSS(`#text`), `email ends_with "@example.com" and attr.company = "Analytical"`),
		chromedp.Poll[chromedp.Void](`document.getElementById("count").textContent.includes("match")`),
		into(&count, chromedp.Text(chromedp.CSS(`#count`))),
		shot(t, "segment"),
		chromedp.Click(chromedp.CSS(`form[data-api-form] button.primary`)),
		chromedp.WaitVisible(chromedp.CSS(`form[data-method="PATCH"]`)),

		// A template: a parse error shows at its line, then it saves and previews.
		chromedp.Navigate(base+"/templates/new"),
		chromedp.SendKeys(chromedp.CSS(`#name`), "Launch"),
		chromedp.SendKeys(chromedp.CSS(`#subject`), "Hello {{ .Contact.FirstName }}"),
		chromedp.SendKeys(chromedp.CSS(`#html`), "<p>Hi {{ .Contact.FirstName }},</p>\n<p>{{ .Nope }</p>"),
		chromedp.Click(chromedp.CSS(`form[data-api-form] button.primary`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-error-for="html"] li`)),
		shot(t, "template-error"),
		chromedp.SetValue(chromedp.CSS(`#html`), `<h1>Big news, {{ .Contact.FirstName | default "friend" }}</h1><p>We launched. <a href="https://example.com/pricing" data-funnel-intent="pricing">See pricing</a></p><p><a href="https://example.com/news">Read the announcement</a></p>`),
		chromedp.Click(chromedp.CSS(`form[data-api-form] button.primary`)),
		chromedp.WaitVisible(chromedp.CSS(`form[data-preview]`)),
		chromedp.Poll[chromedp.Void](`document.getElementById("preview-subject").textContent.length > 0`),
		into(&previewSubject, chromedp.Text(chromedp.CSS(`#preview-subject`))),
		shot(t, "template"),

		// A campaign from the template and the segment, sent now.
		chromedp.Navigate(base+"/campaigns/new"),
		chromedp.SendKeys(chromedp.CSS(`#name`), "Launch day"),
		into(new(bool), chromedp.Evaluate[bool](`(()=>{const s=document.getElementById("template_id"); s.selectedIndex=s.options.length-1;
			[...document.querySelectorAll('input[name=segment_ids]')].find(c=>c.parentElement.textContent.includes("Ada and Grace")).checked=true;
			document.getElementById("from_email").value ||= "news@example.com"; return true})()`)),
		shot(t, "campaign-new"),
		chromedp.Click(chromedp.CSS(`form[data-api-form] button.primary`)),
		chromedp.WaitVisible(chromedp.CSS(`#send-now`)),
		chromedp.Click(chromedp.CSS(`#send-now`)),
		chromedp.Poll[chromedp.Void](`document.getElementById("status").textContent === "sent"`, chromedp.WithPollingTimeout(60*time.Second)),
		shot(t, "campaign"),

		// The message in the outbox, rendered like a mail client.
		chromedp.Navigate(base+"/outbox"),
		chromedp.WaitVisible(chromedp.CSS(`table.list tbody a`)),
		shot(t, "outbox"),
		chromedp.Click(chromedp.CSS(`table.list tbody a`)),
		chromedp.WaitVisible(chromedp.CSS(`iframe.mail-body`)),
		into(&subject, chromedp.Text(chromedp.CSS(`article.mail h1`))),
		chromedp.Sleep(300*time.Millisecond), // the iframe paints after load
		shot(t, "outbox-message"),
		into(&messageURL, chromedp.Location()),
	)
	if err != nil {
		fail(err)
	}

	// Ada reads the message and clicks its two links, as a person would:
	// more than click_min_delay (5 s) after delivery and more than
	// burst_window (2 s) apart, or the classifier calls it a scanner.
	var links []string
	if err := chromedp.Do(walkCtx,
		chromedp.Navigate(messageURL+"/html"),
		into(&links, chromedp.Evaluate[[]string](`[...document.links].filter(a => a.href.includes("/t/") && a.offsetParent !== null && a.textContent.trim() !== "").map(a => a.href)`)),
	); err != nil {
		fail(err)
	}
	if len(links) != 2 {
		t.Fatalf("tracked links in the message = %q, want 2", links)
	}
	for i, l := range links {
		// The classifier's timing rules, not a wait for a signal.
		time.Sleep(map[bool]time.Duration{true: 6 * time.Second, false: 3 * time.Second}[i == 0])
		// The redirect goes to example.com, which this machine cannot reach: only the click matters.
		_ = chromedp.Do(walkCtx, chromedp.Navigate(l))
	}

	err = chromedp.Do(walkCtx,
		chromedp.Navigate(base+"/login"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("form.logout") && document.querySelector("form.logout").submit()`),
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/login"] #email`)),

		// Sales sees the lead with its reason and accepts it.
		login(base, "sales@example.com"),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			var err error
			for range 30 {
				_, err = chromedp.Steps(chromedp.Navigate(base+"/leads"),
					chromedp.Poll[chromedp.Void](`document.querySelector("a.lead") !== null`, chromedp.WithPollingTimeout(2*time.Second)))(ctx, tg)
				if err == nil || ctx.Err() != nil {
					break
				}
			}
			return err
		}),
		shot(t, "leads"),
		chromedp.Click(chromedp.CSS(`a.lead`)),
		chromedp.WaitVisible(chromedp.CSS(`#accept`)),
		into(&leadWhy, chromedp.Text(chromedp.CSS(`main .grid2 section`))),
		shot(t, "lead"),
		chromedp.Click(chromedp.CSS(`#accept`)),
		chromedp.WaitVisible(chromedp.CSS(`.head .badge.accepted`)),
		into(&leadStatus, chromedp.Text(chromedp.CSS(`.head .badge`))),

		// Sales cannot reach campaign editing.
		chromedp.Navigate(base+"/campaigns/new"),
		chromedp.WaitVisible(chromedp.CSS(`main h1`)),
		into(&forbidden, chromedp.Text(chromedp.CSS(`main h1`))),
		into(&url, chromedp.Location()),
		shot(t, "sales-forbidden"),

		// The pages stay readable on a 390 px wide phone.
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Navigate(base+"/leads"),
		chromedp.WaitVisible(chromedp.CSS(`.board`)),
		shot(t, "mobile-leads"),
		chromedp.Navigate(base+"/contacts"),
		chromedp.WaitVisible(chromedp.CSS(`table.list`)),
		into(&narrow, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= 390`)),
		shot(t, "mobile-contacts"),

		// The marketer reads the campaign's report and Ada's timeline.
		chromedp.EmulateReset(),
		chromedp.EmulateViewport(1280, 900),
		logout(),
		login(base, "marketer@example.com"),
		chromedp.Navigate(base+"/campaigns"),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			href, err := chromedp.Evaluate[string](`[...document.querySelectorAll("table.list tbody a")].find(a => a.textContent === "Launch day").href`)(ctx, tg)
			if err == nil {
				_, err = chromedp.Navigate(href)(ctx, tg)
			}
			return err
		}),
		chromedp.WaitVisible(chromedp.CSS(`section.report`)),
		into(&report, chromedp.Text(chromedp.CSS(`section.report`))),
		shot(t, "campaign-report"),
		chromedp.Navigate(base+"/contacts?q=ada"),
		chromedp.Click(chromedp.CSS(`table.list tbody a`)),
		chromedp.WaitVisible(chromedp.CSS(`ol.timeline`)),
		shot(t, "contact"),

		// An API token, shown once.
		chromedp.Navigate(base+"/tokens"),
		chromedp.SendKeys(chromedp.CSS(`#name`), "CRM sync"),
		chromedp.Click(chromedp.CSS(`form[data-token-create] button`)),
		chromedp.WaitVisible(chromedp.CSS(`#new-secret`)),
		into(&secret, chromedp.Text(chromedp.CSS(`#secret`))),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#tokens tbody tr").length > 0`),
		shot(t, "tokens"),
	)
	if err != nil {
		fail(err)
	}
	checks := []struct{ what, got, want string }{
		{"wrong password message", wrongLogin, "Wrong email or password"},
		{"import status", importStatus, "done"},
		{"import error report (the bad row is line 4)", importErrors, "4"},
		{"live count", count, "1 contact matches"},
		{"preview subject", previewSubject, "Hello "},
		{"outbox message subject", subject, "Hello Ada"},
		{"sales on campaign editing", forbidden, "403"},
		{"why the lead is a lead", leadWhy, "Score ledger"},
		{"lead status after accepting", leadStatus, "accepted"},
		{"campaign report", report, "https://example.com/pricing"},
	}
	if !narrow {
		t.Error("the contacts page scrolls sideways at 390 px")
	}
	if monitorLinks != 0 {
		t.Errorf("a marketer's page has %d links to the queue monitor, want none", monitorLinks)
	}
	if !strings.HasPrefix(secret, "fnl_") {
		t.Errorf("new token secret = %q, want fnl_...", secret)
	}
	for _, c := range checks {
		if !strings.Contains(c.got, c.want) {
			t.Errorf("%s = %q, want it to contain %q", c.what, c.got, c.want)
		}
	}
}

// into runs a, storing its value in dst.
func into[T any](dst *T, a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		v, err := a(ctx, tg)
		*dst = v
		return err
	})
}
