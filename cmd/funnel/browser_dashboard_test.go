package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserDashboardFollowsASlowCampaignLiveAndListsEndedOnes walks a
// marketer through a campaign with the new-campaign form's optional
// fields against `funnel dev --demo`: a rate out of range is refused next
// to its field; an exclusion segment, a Reply-To and a rate of 2
// messages/s are saved and shown on the campaign page, whose send time,
// rate and end time fill in as it sends; the dashboard's count of sent messages
// then grows without a reload; once cancelled, the campaign is among the
// recent results with the demo campaign that was sent before it.
func TestBrowserDashboardFollowsASlowCampaignLiveAndListsEndedOnes(t *testing.T) {
	ctx := newBrowser(t)
	base, token, _ := startDev(t, "sqlite:"+filepath.Join(t.TempDir(), "dev.db"), "-demo")
	api := client{t: t, base: base, token: token}
	// About 250 readers of whom some 60 are partners: at 2 messages/s,
	// well over a minute of sending.
	var readers, skip struct{ ID int64 }
	for _, seg := range []struct {
		body string
		into *struct{ ID int64 }
	}{{`{"name": "Newsletter readers", "text": "tag \"newsletter\""}`, &readers}, {`{"name": "Partners", "text": "tag \"partner\""}`, &skip}} {
		if status := api.do("POST", "/api/v1/segments", "application/json", strings.NewReader(seg.body), seg.into); status != 201 {
			t.Fatalf("create segment %s: %d", seg.body, status)
		}
	}
	// The demo's draft campaign, sent at full speed first.
	if status := api.do("POST", "/api/v1/campaigns/1/send", "", nil, nil); status >= 300 {
		t.Fatalf("send the demo campaign: %d", status)
	}

	var (
		rateError, settings, rate, eta, sendAt, campaignURL, recent, liveStatus, deliveryStates string
		first, later                                                                            int
		sameDocument                                                                            bool
	)
	walkCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	err := chromedp.Do(walkCtx,
		login(base, "marketer@example.com"),
		chromedp.Navigate(base+"/campaigns/1"),
		chromedp.Poll[chromedp.Void](`document.getElementById("status").textContent === "sent"`, chromedp.WithPollingTimeout(60*time.Second)),

		// A rate out of range is refused next to its field.
		chromedp.Navigate(base+"/campaigns/new"),
		chromedp.SendKeys(chromedp.CSS(`#name`), "Slow launch"),
		into(new(bool), chromedp.Evaluate[bool](`(()=>{const s=document.getElementById("template_id"); s.selectedIndex=s.options.length-1;
			const box=(name, label)=>[...document.querySelectorAll('input[name='+name+']')].find(c=>c.parentElement.textContent.includes(label));
			box("segment_ids", "Newsletter readers").checked=true; box("exclude_segment_ids", "Partners").checked=true; return true})()`)),
		chromedp.SetValue(chromedp.CSS(`#reply_to`), "replies@northwind.example"),
		chromedp.SendKeys(chromedp.CSS(`#rate`), "200000"),
		chromedp.Click(chromedp.CSS(`form[data-api-form] button.primary`)),
		chromedp.WaitVisible(chromedp.CSS(`#rate-error`)),
		into(&rateError, chromedp.Text(chromedp.CSS(`#rate-error`))),
		shot(t, "campaign-new-error"),

		// Two messages a second: saved, and shown on the campaign page.
		chromedp.SetValue(chromedp.CSS(`#rate`), "2"),
		chromedp.Click(chromedp.CSS(`form[data-api-form] button.primary`)),
		chromedp.WaitVisible(chromedp.CSS(`#send-now`)),
		into(&campaignURL, chromedp.Location()),
		into(&settings, chromedp.Text(chromedp.CSS(`#settings`))),

		// Sending: the rate and the end time fill in without a reload.
		chromedp.Click(chromedp.CSS(`#send-now`)),
		chromedp.Poll[chromedp.Void](`document.querySelector("[data-rate]").textContent !== "0.0 messages/s" &&
			document.querySelector("time[data-eta]").dateTime !== ""`, chromedp.WithPollingTimeout(60*time.Second)),
		into(&rate, chromedp.Text(chromedp.CSS(`[data-rate]`))),
		into(&eta, chromedp.Text(chromedp.CSS(`time[data-eta]`))),
		into(&sendAt, chromedp.Text(chromedp.CSS(`time[data-send-at]`))),
		into(&deliveryStates, chromedp.Evaluate[string](`[...document.querySelectorAll("#progress [data-count]")].map(e => e.dataset.count).join(" ")`)),
		shot(t, "campaign-sending"),

		// The dashboard's count grows in the same document.
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#in-progress [data-count="sent"]`)),
		into(new(bool), chromedp.Evaluate[bool](`window.notReloaded = true`)),
		into(&first, chromedp.Evaluate[int](`window.firstSent = parseInt(document.querySelector('#in-progress [data-count="sent"]').textContent, 10)`)),
		into(&later, chromedp.Poll[int](`(n => n > window.firstSent && n)(parseInt(document.querySelector('#in-progress [data-count="sent"]').textContent, 10))`,
			chromedp.WithPollingTimeout(30*time.Second))),
		into(&sameDocument, chromedp.Evaluate[bool](`window.notReloaded === true`)),
		shot(t, "dashboard"),
	)
	if err != nil {
		browserFail(t, ctx, err)
	}

	// Cancelled, it leaves the dashboard's progress (the row says so
	// live) and joins the recent results after the demo campaign.
	id := campaignURL[strings.LastIndex(campaignURL, "/")+1:]
	if status := api.do("POST", "/api/v1/campaigns/"+id+"/cancel", "", nil, nil); status >= 300 {
		t.Fatalf("cancel campaign %s: %d", id, status)
	}
	err = chromedp.Do(walkCtx,
		chromedp.Poll[chromedp.Void](`document.querySelector("#in-progress [data-live-status]").textContent === "cancelled"`, chromedp.WithPollingTimeout(30*time.Second)),
		into(&liveStatus, chromedp.Text(chromedp.CSS(`#in-progress [data-live-status]`))),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`#recent-results`)),
		into(&recent, chromedp.Evaluate[string](`[...document.querySelectorAll("#recent-results tbody tr")].map(tr => [...tr.cells].map(td => td.textContent.trim()).join(" | ")).join("\n")`)),
	)
	if err != nil {
		browserFail(t, ctx, err)
	}

	var saved struct {
		ExcludeSegmentIDs []int64 `json:"exclude_segment_ids"`
		ReplyTo           string  `json:"reply_to"`
		Rate              float64 `json:"rate"`
	}
	api.do("GET", "/api/v1/campaigns/"+id, "", nil, &saved)
	if !slices.Equal(saved.ExcludeSegmentIDs, []int64{skip.ID}) || saved.ReplyTo != "replies@northwind.example" || saved.Rate != 2 {
		b, _ := json.Marshal(saved)
		t.Errorf("the form saved %s, want exclude_segment_ids [%d], reply_to replies@northwind.example, rate 2", b, skip.ID)
	}
	if !sameDocument || later <= first {
		t.Errorf("the dashboard's sent count went from %d to %d (same document: %v), want it to grow without a reload", first, later, sameDocument)
	}
	rows := strings.Split(recent, "\n")
	if len(rows) != 2 || !strings.HasPrefix(rows[0], "Slow launch | cancelled") || !strings.HasPrefix(rows[1], "Product update for German customers | sent") {
		t.Errorf("recent results =\n%s\nwant Slow launch (cancelled), then the demo campaign (sent)", recent)
	}
	if n, _ := strconv.Atoi(strings.Fields(strings.Split(rows[len(rows)-1], " | ")[3])[0]); n == 0 {
		t.Errorf("the sent demo campaign shows no delivered messages: %q", rows[len(rows)-1])
	}
	checks := []struct{ what, got, want string }{
		{"rate out of range, next to the field", rateError, "between 0 (no limit) and 100000"},
		{"settings: excluded segment", settings, "Excluding\nPartners"},
		{"settings: Reply-To", settings, "replies@northwind.example"},
		{"settings: rate limit", settings, "2 messages/s"},
		{"live rate", rate, "messages/s"},
		{"live end time, in the viewer's zone", eta, " UTC"},
		{"live send time, in the viewer's zone", sendAt, " UTC"},
		{"delivery states on the campaign page", deliveryStates, "queued sending deferred bounced failed skipped uncertain"},
		{"status on the dashboard after cancelling", liveStatus, "cancelled"},
	}
	for _, c := range checks {
		if !strings.Contains(c.got, c.want) {
			t.Errorf("%s = %q, want it to contain %q", c.what, c.got, c.want)
		}
	}
}

// browserFail ends the test with err and the page the browser is on.
func browserFail(t *testing.T, ctx context.Context, err error) {
	t.Helper()
	var at, page string
	_ = chromedp.Do(ctx, into(&at, chromedp.Location()), into(&page, chromedp.Text(chromedp.CSS(`main`))))
	t.Fatalf("browser walk: %v\nat %s:\n%s", err, at, page)
}
