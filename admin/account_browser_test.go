package admin

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/funnel-email/funnel/admin/ui/browsertest"
	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

// startChromium starts Chromium in a zone other than the user's: the
// forms must use the user's.
func startChromium(t *testing.T) context.Context {
	return browsertest.Start(t, chromedp.Env("TZ=Asia/Tokyo"))
}

// evalInto stores the result of an action.
func evalInto[T any](dst *T, a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		v, err := a(ctx, tg)
		*dst = v
		return err
	})
}

func signIn(base, email string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/login"] #email`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), email),
		chromedp.SendKeys(chromedp.CSS(`#password`), "correct horse battery"),
		chromedp.Submit(chromedp.CSS(`#password`)),
		chromedp.WaitVisible(chromedp.CSS(`header.top`)),
	)
}

// TestBrowserSchedulesInTheUsersZoneAndAdminMakesResetLink: a marketer
// in Europe/Berlin, in a browser set to Tokyo, schedules campaigns for
// 09:00 Berlin time in winter and in summer (on the new-campaign form
// and on the campaign page); an admin makes a reset link on the users
// page, and the link sets the marketer's password.
func TestBrowserSchedulesInTheUsersZoneAndAdminMakesResetLink(t *testing.T) {
	ctx := startChromium(t)
	db := storetest.Open(t, store.SQLite)
	w := newWalkAPI(t, db)
	base := w.srv.URL
	m := w.users[campaign.RoleMarketer]
	if _, err := db.UpdateUser(t.Context(), m.ID, campaign.UserPatch{TimeZone: ptrTo("Europe/Berlin")}); err != nil {
		t.Fatal(err)
	}
	tpl := &campaign.Template{Name: "Welcome", Subject: "Hi", HTML: "<p>Hi</p>"}
	if err := db.CreateTemplate(t.Context(), tpl); err != nil {
		t.Fatal(err)
	}
	seg := &campaign.Segment{Name: "everyone", Rule: &campaign.Rule{Field: "email", Op: campaign.OpContains, Value: "@"}}
	if err := db.CreateSegment(t.Context(), seg); err != nil {
		t.Fatal(err)
	}
	walk, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var label, location, winter, resetURL, done string
	err := chromedp.Do(walk,
		signIn(base, m.Email),
		chromedp.Navigate(base+"/campaigns/new"),
		chromedp.WaitVisible(chromedp.CSS(`#send_at`)),
		chromedp.SendKeys(chromedp.CSS(`#name`), "Winter"),
		chromedp.Evaluate[chromedp.Void](`(()=>{const s=document.getElementById("template_id"); s.selectedIndex=s.options.length-1;
			document.querySelector('input[name=segment_ids]').checked=true;
			document.getElementById("from_email").value="news@example.com";
			document.getElementById("send_at").value="2030-01-15T09:00"})()`),
		evalInto(&label, chromedp.Text(chromedp.CSS(`label[for=send_at]`))),
		chromedp.Click(chromedp.CSS(`form[data-api-form] button.primary`)),
		chromedp.WaitVisible(chromedp.CSS(`#send-now`)),
		evalInto(&location, chromedp.Location()),
		evalInto(&winter, chromedp.Evaluate[string](`document.querySelector("dl.kv time").dateTime`)),
		// Reschedule on the campaign page, for a summer date.
		chromedp.Evaluate[chromedp.Void](`document.getElementById("send_at").value="2030-07-15T09:00"`),
		chromedp.Click(chromedp.CSS(`form[data-local-schedule] button`)),
	)
	if err != nil {
		var page string
		_ = chromedp.Do(ctx, evalInto(&page, chromedp.Text(chromedp.CSS(`main`))))
		t.Fatalf("marketer walk: %v\n%s", err, page)
	}
	if winter != "2030-01-15T08:00:00Z" {
		t.Errorf("09:00 on 2030-01-15 in Berlin scheduled for %q, want 2030-01-15T08:00:00Z", winter)
	}
	if !strings.Contains(label, "Europe/Berlin") {
		t.Errorf("the schedule field does not name the user's zone: %q", label)
	}
	// The form reloads the page once the schedule is saved; the database
	// says when.
	summer := time.Date(2030, 7, 15, 7, 0, 0, 0, time.UTC)
	var cs []*campaign.Campaign
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cs, err = db.ListCampaigns(t.Context(), 0, 10); err != nil || len(cs) == 1 && cs[0].SendAt != nil && cs[0].SendAt.Equal(summer) {
			break
		}
	}
	if err != nil || len(cs) != 1 || cs[0].SendAt == nil || !cs[0].SendAt.Equal(summer) ||
		!strings.HasSuffix(location, "/campaigns/"+itoa(cs[0].ID)) {
		t.Fatalf("campaigns after the walk: %+v %v (at %s)", cs, err, location)
	}
	if v := cs[0].ScheduleVersion; v != 2 {
		t.Errorf("schedule version %d, want 2 (scheduled on the new-campaign form, then on its page)", v)
	}

	// Without a time the form makes a draft, as before.
	var status string
	err = chromedp.Do(walk,
		chromedp.Navigate(base+"/campaigns/new"),
		chromedp.WaitVisible(chromedp.CSS(`#send_at`)),
		chromedp.SendKeys(chromedp.CSS(`#name`), "Unscheduled"),
		chromedp.Evaluate[chromedp.Void](`(()=>{const s=document.getElementById("template_id"); s.selectedIndex=s.options.length-1;
			document.querySelector('input[name=segment_ids]').checked=true;
			document.getElementById("from_email").value="news@example.com"})()`),
		chromedp.Click(chromedp.CSS(`form[data-api-form] button.primary`)),
		chromedp.WaitVisible(chromedp.CSS(`#send-now`)),
		evalInto(&status, chromedp.Text(chromedp.CSS(`#status`))),
	)
	if err != nil || status != "draft" {
		t.Fatalf("new campaign without a time: %v, status %q", err, status)
	}

	err = chromedp.Do(walk,
		chromedp.Click(chromedp.CSS(`form.logout button`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/login"] #email`)),
		signIn(base, w.users[campaign.RoleAdmin].Email),
		chromedp.Navigate(base+"/users"),
		chromedp.Click(chromedp.CSS(`button[aria-label="Create a password reset link for `+m.Email+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#reset-link`)),
		evalInto(&resetURL, chromedp.Text(chromedp.CSS(`#reset-url`))),
		chromedp.Click(chromedp.CSS(`form.logout button`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/login"] #email`)),
	)
	if err != nil {
		t.Fatalf("admin walk: %v", err)
	}
	if !strings.HasPrefix(resetURL, base+"/reset/") {
		t.Fatalf("reset link %q", resetURL)
	}
	err = chromedp.Do(walk,
		chromedp.Navigate(resetURL),
		chromedp.WaitVisible(chromedp.CSS(`#password`)),
		chromedp.SendKeys(chromedp.CSS(`#password`), "a brand new passphrase"),
		chromedp.SendKeys(chromedp.CSS(`#confirm`), "a brand new passphrase"),
		chromedp.Submit(chromedp.CSS(`#confirm`)),
		chromedp.WaitVisible(chromedp.CSS(`main [role=status]`)),
		evalInto(&done, chromedp.Text(chromedp.CSS(`main [role=status]`))),
	)
	if err != nil || !strings.Contains(done, "password is set") {
		t.Fatalf("reset walk: %v %q", err, done)
	}
	if _, err := db.AuthenticateUser(t.Context(), m.Email, "a brand new passphrase"); err != nil {
		t.Errorf("the password set in the browser does not work: %v", err)
	}
}
