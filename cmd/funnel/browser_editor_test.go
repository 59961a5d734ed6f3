package main

import (
	"context"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/funnel-email/funnel/admin/ui/browsertest"
)

// TestBrowserMarketerBuildsSegmentAndPreviewsTemplateForContact walks the
// two editors of the web UI in headless Chromium against `funnel dev
// --demo`: a segment built only with the rule builder (the text follows
// and the live count equals the API's count for that text), a typed rule
// the builder redraws, a rule it cannot show and says so; then a
// template previewed for a contact found by email prefix and chosen with
// the keyboard. Both pages must not scroll sideways at 390 px.
func TestBrowserMarketerBuildsSegmentAndPreviewsTemplateForContact(t *testing.T) {
	ctx := newEditorBrowser(t)
	base, token, _ := startDev(t, "sqlite:"+filepath.Join(t.TempDir(), "dev.db"), "-demo")
	api := client{t: t, base: base, token: token}

	const built = `attr.country = "DE" and tag "customer"`
	var want struct {
		Count int64 `json:"count"`
	}
	if code := api.do("POST", "/api/v1/segments/preview", "application/json", strings.NewReader(`{"text": `+strconv.Quote(built)+`}`), &want); code != 200 || want.Count == 0 {
		t.Fatalf("API preview of %s = %d, count %d", built, code, want.Count)
	}
	tplID, prefix, person := demoTemplateAndContact(t, api)

	walkCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	fail := func(err error) {
		t.Helper()
		var at, page string
		_ = chromedp.Do(ctx, into(&at, chromedp.Location()), into(&page, chromedp.Text(chromedp.CSS(`main`))))
		t.Fatalf("browser walk: %v\nat %s:\n%s", err, at, page)
	}
	// The newest condition of the builder's top group.
	last := func(part string) chromedp.CSS {
		return chromedp.CSS(`#builder-tree .rb-root > .rb-items > li:last-child [data-key$="-` + part + `"]`)
	}
	// The sandboxed preview cannot be read from the page: window.painted
	// holds the document of the preview's last load, set two frames after
	// it, when it has been painted.
	watchPreview := chromedp.Evaluate[chromedp.Void](`(() => { const f = document.getElementById("preview-frame"); window.painted = "";
		f.addEventListener("load", () => { const doc = f.srcdoc; requestAnimationFrame(() => requestAnimationFrame(() => { window.painted = doc; })); }); })()`)
	addCondition := chromedp.Click(chromedp.CSS(`#builder-tree .rb-root > .rb-actions button`))
	var (
		text, countText, savedURL, redrawn, note, keptText, status string
		segNarrow, tplNarrow                                       bool
	)
	err := chromedp.Do(walkCtx,
		login(base, "marketer@example.com"),

		// Only the builder: attribute country = DE, then the tag customer.
		chromedp.Navigate(base+"/segments/new"),
		chromedp.WaitVisible(chromedp.CSS(`#builder-tree .rb-root`)),
		chromedp.SendKeys(chromedp.CSS(`#name`), "German customers, built"),
		addCondition,
		chromedp.SendKeys(last("subject"), "a"), // the keyboard picks "Attribute…"
		chromedp.WaitVisible(last("key")),
		chromedp.SendKeys(last("key"), "country"),
		chromedp.SendKeys(last("value"), "DE"),
		addCondition,
		chromedp.SendKeys(last("subject"), "t"), // "Tags"
		chromedp.WaitVisible(last("value")),
		chromedp.SendKeys(last("value"), "customer"),
		chromedp.Poll[chromedp.Void](`document.getElementById("text").value === `+strconv.Quote(built)),
		into(&text, chromedp.Value(chromedp.CSS(`#text`))),
		// The count follows the text; wait until it has caught up.
		chromedp.Poll[chromedp.Void](`document.getElementById("count").textContent.replace(/\D/g, "") === "`+strconv.FormatInt(want.Count, 10)+`"`),
		into(&countText, chromedp.Text(chromedp.CSS(`#count`))),
		shot(t, "segment-builder"),
		chromedp.Click(chromedp.CSS(`form[data-api-form] button.primary`)),
		chromedp.WaitVisible(chromedp.CSS(`form[data-method="PATCH"]`)),
		into(&savedURL, chromedp.Location()),
		// The saved segment opens in the builder.
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#builder-tree .rb-cond").length === 2`),

		// A typed rule re-draws the builder: a nested any group and a negated tag.
		chromedp.Evaluate[chromedp.Void](`(() => { const t = document.getElementById("text"); t.focus(); t.select(); })()`),
		chromedp.SendKeys(chromedp.CSS(`#text`), `(attr.plan = "pro" or attr.plan = "enterprise") and not tag "vip"`),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#builder-tree .rb-cond").length === 3`),
		into(&redrawn, chromedp.Evaluate[string](`(() => {
			const q = s => document.querySelector("#builder-tree " + s);
			const nested = q(".rb-nested");
			const conds = [...document.querySelectorAll("#builder-tree .rb-cond")];
			const not = c => c.querySelector('input[type=checkbox][data-key$="-not"]').checked ? "not " : "";
			const v = (c, p) => (c.querySelector('[data-key$="-' + p + '"]') || {}).value;
			return [q('select[data-key$="-join"]').value, nested.querySelector('select[data-key$="-join"]').value,
				...conds.map(c => not(c) + v(c, "subject") + ":" + (v(c, "key") || "") + ":" + v(c, "op") + ":" + v(c, "value"))].join(" | ");
		})()`)),
		shot(t, "segment-builder-redrawn"),

		// A rule the builder cannot show: it says so and keeps the text.
		chromedp.Evaluate[chromedp.Void](`(() => { const t = document.getElementById("text"); t.focus(); t.select(); })()`),
		chromedp.SendKeys(chromedp.CSS(`#text`), `not not opened`),
		chromedp.Poll[chromedp.Void](`!document.getElementById("builder-note").hidden && document.getElementById("builder-note").textContent.includes("only editable as text")`),
		into(&note, chromedp.Text(chromedp.CSS(`#builder-note`))),
		into(&keptText, chromedp.Value(chromedp.CSS(`#text`))),

		// The template preview for a contact found by the start of its email.
		chromedp.Navigate(base+"/templates/"+strconv.FormatInt(tplID, 10)),
		chromedp.Poll[chromedp.Void](`document.getElementById("preview-subject").textContent.length > 0`),
		chromedp.SendKeys(chromedp.CSS(`#contact-search`), prefix),
		chromedp.WaitVisible(chromedp.CSS(`#contact-options [role=option]`)),
		chromedp.SendKeys(chromedp.CSS(`#contact-search`), kb.ArrowDown+kb.ArrowDown+kb.ArrowUp),
		chromedp.Poll[chromedp.Void](`document.getElementById("contact-search").getAttribute("aria-activedescendant") === "contact-option-`+strconv.FormatInt(person.ID, 10)+`"`),
		shot(t, "template-contact-search"),
		watchPreview,
		chromedp.SendKeys(chromedp.CSS(`#contact-search`), kb.Enter),
		chromedp.Poll[chromedp.Void](`window.painted.includes("Hi "+`+strconv.Quote(person.FirstName)+`) &&
			document.getElementById("preview-subject").textContent.includes(`+strconv.Quote(person.FirstName)+`)`),
		into(&status, chromedp.Text(chromedp.CSS(`#contact-status`))),
		shot(t, "template-preview-contact"),

		// Both editors at 390 px.
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Navigate(savedURL)(ctx, tg) // known only once saved
			return err
		}),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#builder-tree .rb-cond").length === 2`),
		into(&segNarrow, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= 390`)),
		shot(t, "mobile-segment-builder"),
		chromedp.Navigate(base+"/templates/"+strconv.FormatInt(tplID, 10)),
		chromedp.Poll[chromedp.Void](`document.getElementById("preview-subject").textContent.length > 0`),
		watchPreview,
		chromedp.Click(chromedp.CSS(`#contact-sample`)),
		chromedp.Poll[chromedp.Void](`window.painted.includes("Hi ")`),
		into(&tplNarrow, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= 390`)),
		shot(t, "mobile-template-preview"),
		chromedp.EmulateReset(),
	)
	if err != nil {
		fail(err)
	}

	if text != built {
		t.Errorf("text written by the builder = %q, want %q", text, built)
	}
	if !strings.Contains(countText, "match") {
		t.Errorf("live count = %q, want %d contacts match", countText, want.Count)
	}
	id := savedURL[strings.LastIndex(savedURL, "/")+1:]
	var saved struct {
		RuleText string `json:"rule_text"`
	}
	if code := api.do("GET", "/api/v1/segments/"+id, "", nil, &saved); code != 200 || saved.RuleText != built {
		t.Errorf("saved segment %s = %d, rule %q, want %q", id, code, saved.RuleText, built)
	}
	wantRedrawn := "all | any | attr:plan:eq:pro | attr:plan:eq:enterprise | not tags::has:vip"
	if redrawn != wantRedrawn {
		t.Errorf("builder after typing the rule = %q, want %q", redrawn, wantRedrawn)
	}
	if !strings.Contains(note, "only editable as text") || keptText != "not not opened" {
		t.Errorf("for a rule it cannot show, the builder says %q and the text is %q", note, keptText)
	}
	if !strings.Contains(status, person.Email) {
		t.Errorf("picker status = %q, want it to name %s", status, person.Email)
	}
	if !segNarrow || !tplNarrow {
		t.Errorf("pages scroll sideways at 390 px: segment %v, template %v (true is narrow enough)", segNarrow, tplNarrow)
	}
}

// newEditorBrowser is newBrowser with sandboxed iframes in the page's own
// process: the template preview is a sandboxed iframe, and only then do
// the page's next frames after the iframe's load event show it painted,
// which the screenshot waits for.
func newEditorBrowser(t *testing.T) context.Context {
	return browsertest.Start(t, chromedp.Flag("disable-features", "IsolateSandboxedIframes"))
}

// demoContact is what the picker test needs of a contact.
type demoContact struct {
	ID        int64  `json:"id"`
	Email     string `json:"email"`
	FirstName string `json:"first_name"`
}

// demoTemplateAndContact returns the demo template's id, an email prefix
// (first.last.) and the first contact the API lists for that prefix,
// chosen so that its first name differs from the sample data's.
func demoTemplateAndContact(t *testing.T, api client) (int64, string, demoContact) {
	t.Helper()
	var tpls struct {
		Templates []struct {
			ID int64 `json:"id"`
		} `json:"templates"`
	}
	if code := api.do("GET", "/api/v1/templates", "", nil, &tpls); code != 200 || len(tpls.Templates) == 0 {
		t.Fatalf("demo templates: %d %+v", code, tpls)
	}
	var all struct {
		Contacts []demoContact `json:"contacts"`
	}
	api.do("GET", "/api/v1/contacts?limit=100", "", nil, &all)
	for _, c := range all.Contacts {
		parts := strings.SplitN(c.Email, ".", 3)
		if c.FirstName == "Ana" || len(parts) < 3 {
			continue
		}
		prefix := parts[0] + "." + parts[1] + "."
		var found struct {
			Contacts []demoContact `json:"contacts"`
		}
		api.do("GET", "/api/v1/contacts?limit=8&email_prefix="+url.QueryEscape(prefix), "", nil, &found)
		if len(found.Contacts) > 0 && found.Contacts[0].FirstName != "Ana" {
			return tpls.Templates[0].ID, prefix, found.Contacts[0]
		}
	}
	t.Fatal("no demo contact to preview")
	return 0, "", demoContact{}
}
