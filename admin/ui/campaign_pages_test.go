package ui_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/funnel-email/funnel/admin"
	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

// campaignSite is the admin service with three contacts (a1, a2, a3 at
// example.com), a template, the segments "A people" (all three) and
// "Only a3", and the campaigns its tests put in the states they need.
type campaignSite struct {
	*site
	template      *campaign.Template
	people, only3 *campaign.Segment
}

func newCampaignSite(t *testing.T, db *store.DB) *campaignSite {
	t.Helper()
	s := &campaignSite{site: newSite(t, db, nil)}
	ctx := t.Context()
	for i := 1; i <= 3; i++ {
		if err := db.CreateContact(ctx, &campaign.Contact{Email: fmt.Sprintf("a%d@example.com", i)}); err != nil {
			t.Fatal(err)
		}
	}
	s.template = &campaign.Template{Name: "Launch", Subject: "S", HTML: "<p>x</p>"}
	if err := db.CreateTemplate(ctx, s.template); err != nil {
		t.Fatal(err)
	}
	s.people = &campaign.Segment{Name: "A people", Rule: &campaign.Rule{Field: "email", Op: campaign.OpStartsWith, Value: "a"}}
	s.only3 = &campaign.Segment{Name: "Only a3", Rule: &campaign.Rule{Field: "email", Op: campaign.OpStartsWith, Value: "a3@"}}
	for _, seg := range []*campaign.Segment{s.people, s.only3} {
		if err := db.CreateSegment(ctx, seg); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// sending creates campaign name to "A people" (edited by edit) and
// starts it: its deliveries are queued.
func (s *campaignSite) sending(t *testing.T, name string, edit func(*campaign.Campaign)) *campaign.Campaign {
	t.Helper()
	ctx := t.Context()
	c := &campaign.Campaign{Name: name, TemplateID: s.template.ID, SegmentIDs: []int64{s.people.ID}, FromEmail: "news@example.com"}
	if edit != nil {
		edit(c)
	}
	if err := s.db.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	c, err := s.db.ScheduleCampaign(ctx, c.ID, time.Now().Add(-time.Second))
	if err == nil {
		c, err = s.db.StartCampaign(ctx, c.ID, c.ScheduleVersion)
	}
	if err == nil {
		_, err = s.db.MaterializeAudience(ctx, c)
	}
	if err != nil {
		t.Fatalf("start campaign %q: %v", name, err)
	}
	return c
}

// settle claims n of campaign c's deliveries and records outcomes for
// them, in turn.
func (s *campaignSite) settle(t *testing.T, c *campaign.Campaign, n int, outcomes ...campaign.DeliveryStatus) {
	t.Helper()
	token := fmt.Sprintf("claim-%d-%d", c.ID, time.Now().UnixNano())
	claimed, err := s.db.ClaimDeliveries(t.Context(), store.Claim{CampaignID: c.ID, MaxID: 1 << 40, Limit: n, Token: token, Lease: time.Minute})
	if err != nil || len(claimed) != n {
		t.Fatalf("claim %d deliveries of campaign %d: %d, %v", n, c.ID, len(claimed), err)
	}
	var os []store.Outcome
	for i, d := range claimed {
		o := store.Outcome{ID: d.ID, Status: outcomes[i%len(outcomes)], SMTPCode: 250}
		switch o.Status {
		case campaign.DeliveryBounced:
			o.SMTPCode, o.ContactID = 550, d.ContactID
		case campaign.DeliveryFailed:
			o.SMTPCode = 554
		}
		os = append(os, o)
	}
	if err := s.db.RecordOutcomes(t.Context(), token, os); err != nil {
		t.Fatal(err)
	}
}

var (
	recentTable = regexp.MustCompile(`(?s)<table class="list" id="recent-results">.*?</table>`)
	recentRow   = regexp.MustCompile(`(?s)<tr data-campaign="\d+">\s*<td><a href="/campaigns/\d+">([^<]*)</a></td>(.*?)</tr>`)
	cell        = regexp.MustCompile(`<td data-label="(\w+)">(.*?)</td>`)
)

// recentResults reads the dashboard's recent results: each campaign's
// name and its cells by label, in page order.
func recentResults(page string) (names []string, cells map[string]map[string]string) {
	cells = map[string]map[string]string{}
	for _, row := range recentRow.FindAllStringSubmatch(recentTable.FindString(page), -1) {
		names = append(names, row[1])
		cells[row[1]] = map[string]string{}
		for _, c := range cell.FindAllStringSubmatch(row[2], -1) {
			cells[row[1]][c[1]] = regexp.MustCompile(`<[^>]*>`).ReplaceAllString(c[2], "")
		}
	}
	return names, cells
}

// TestDashboardShowsTheLatestEndedCampaignsWithTheirFinalCounts: recent
// results lists the five campaigns that ended last, the latest first,
// each with its delivered, bounced, failed, skipped and uncertain counts
// and a link to its report; a campaign still sending is in progress
// instead, polled live. Sales sees neither.
func TestDashboardShowsTheLatestEndedCampaignsWithTheirFinalCounts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newCampaignSite(t, db)
		ctx := t.Context()
		end := func(c *campaign.Campaign, err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("end campaign %d: %v", c.ID, err)
			}
		}
		old := s.sending(t, "Oldest", nil)
		end(s.db.TransitionCampaign(ctx, old.ID, campaign.Cancel))
		sent := s.sending(t, "Delivered", nil)
		s.settle(t, sent, 3, campaign.DeliverySent, campaign.DeliverySent, campaign.DeliveryBounced)
		end(s.db.CompleteCampaign(ctx, sent.ID))
		for _, name := range []string{"Drafted then cancelled", "Also cancelled"} {
			c := &campaign.Campaign{Name: name, TemplateID: s.template.ID, SegmentIDs: []int64{s.people.ID}, FromEmail: "news@example.com"}
			if err := db.CreateCampaign(ctx, c); err != nil {
				t.Fatal(err)
			}
			end(s.db.TransitionCampaign(ctx, c.ID, campaign.Cancel))
		}
		halfway := s.sending(t, "Cancelled halfway", nil)
		s.settle(t, halfway, 1, campaign.DeliveryFailed)
		end(s.db.TransitionCampaign(ctx, halfway.ID, campaign.Cancel))
		broken := s.sending(t, "Broken template", nil)
		end(s.db.FailCampaign(ctx, broken.ID, "template broke"))
		live := s.sending(t, "Still sending", nil)

		page := s.page(t, campaign.RoleMarketer, "/")
		names, cells := recentResults(page)
		if diff := cmp.Diff([]string{"Broken template", "Cancelled halfway", "Also cancelled", "Drafted then cancelled", "Delivered"}, names); diff != "" {
			t.Errorf("recent results, the latest ended first (-want +got):\n%s", diff)
		}
		// The bounce suppressed its contact: later audiences have two.
		want := map[string]map[string]string{
			"Delivered":         {"Status": "sent", "Delivered": "2 of 3", "Bounced": "1", "Failed": "0", "Skipped": "0", "Uncertain": "0"},
			"Cancelled halfway": {"Status": "cancelled", "Delivered": "0 of 2", "Bounced": "0", "Failed": "1", "Skipped": "1", "Uncertain": "0"},
			"Broken template":   {"Status": "failed", "Delivered": "0 of 2", "Bounced": "0", "Failed": "0", "Skipped": "2", "Uncertain": "0"},
		}
		if ended := cells["Delivered"]["Ended"]; !strings.HasSuffix(ended, " UTC") {
			t.Errorf("the sent campaign ended %q, want a time in the viewer's zone", ended)
		}
		for name, w := range want {
			got := cells[name]
			delete(got, "Ended")
			if diff := cmp.Diff(w, got); diff != "" {
				t.Errorf("recent result %q (-want +got):\n%s", name, diff)
			}
		}
		mustContain(t, "the dashboard", page,
			fmt.Sprintf(`<a href="/campaigns/%d">Delivered</a>`, sent.ID),
			fmt.Sprintf(`<tr data-campaign-live="%d"`, live.ID), `<span data-count="sent">0</span> / <span data-count="audience">2</span>`)
		if strings.Contains(recentTable.FindString(page), "Still sending") {
			t.Error("a campaign still sending is listed among the recent results")
		}
		if sales := s.page(t, campaign.RoleSales, "/"); strings.Contains(sales, "Recent results") || strings.Contains(sales, "data-campaign-live") {
			t.Error("sales sees campaigns on the dashboard")
		}
	})
}

// TestDashboardSaysWhenNoCampaignHasEnded: no table, a sentence.
func TestDashboardSaysWhenNoCampaignHasEnded(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newCampaignSite(t, db)
		page := s.page(t, campaign.RoleMarketer, "/")
		mustContain(t, "the dashboard", page, "Recent results", "No campaign has ended yet.", "No campaign is scheduled, sending or paused.")
	})
}

// TestQueueMonitorLinkIsForAdminsOnly: the navigation links the asynq
// monitor at /monitoring/ for an admin, not for a marketer or sales, and
// for nobody when no monitor is served.
func TestQueueMonitorLinkIsForAdminsOnly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		monitor := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
		s := newSiteWith(t, db, nil, admin.Config{Monitor: monitor})
		link := regexp.MustCompile(`<nav aria-label="Main">(?s:.*)<a href="/monitoring/"[^>]*>Queues</a>(?s:.*)</nav>`)
		for _, tt := range []struct {
			role campaign.Role
			want bool
		}{{campaign.RoleAdmin, true}, {campaign.RoleMarketer, false}, {campaign.RoleSales, false}} {
			for _, path := range []string{"/", "/contacts"} {
				if got := link.MatchString(s.page(t, tt.role, path)); got != tt.want {
					t.Errorf("monitor link in the navigation of %s for %s: %v, want %v", path, tt.role, got, tt.want)
				}
			}
		}
	})
}

// TestCampaignPageShowsEveryDeliveryStateTheRateAndTheSettings: the
// progress names each delivery state with its count, the rate over the
// last minute and when sending ends at it, each marked for app.js to
// update; the settings show the segments, the excluded ones, Reply-To
// and the rate limit.
func TestCampaignPageShowsEveryDeliveryStateTheRateAndTheSettings(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newCampaignSite(t, db)
		c := s.sending(t, "Spring", func(c *campaign.Campaign) {
			c.ExcludeSegmentIDs, c.ReplyTo, c.Rate = []int64{s.only3.ID}, "hello@example.com", 2.5
		})
		s.settle(t, c, 1, campaign.DeliverySent) // a3 is excluded: one left queued

		page := s.page(t, campaign.RoleMarketer, fmt.Sprintf("/campaigns/%d", c.ID))
		mustContain(t, "the campaign page", page,
			fmt.Sprintf(`<div data-campaign-live="%d"`, c.ID), `id="status" data-live-status>sending<`,
			`<dd data-count="audience">2</dd>`, `<dd data-count="sent">1</dd>`, `<dd data-count="queued">1</dd>`,
			`<dt>Deferred</dt><dd data-count="deferred">0</dd>`, `<dt>Skipped</dt><dd data-count="skipped">0</dd>`,
			`<dt>Uncertain</dt><dd data-count="uncertain">0</dd>`, `<dd data-rate>0.017 messages/s</dd>`,
			`<dt>Segments</dt><dd>A people</dd>`, `<dt>Excluding</dt><dd>Only a3</dd>`,
			`<dt>Reply-To</dt><dd>hello@example.com</dd>`, `<dt>Rate limit</dt><dd>2.5 messages/s</dd>`,
			`<dt>SMTP servers</dt><dd>every server</dd>`)
		eta := regexp.MustCompile(`<time data-eta data-zone="UTC" datetime="([^"]+)">([^<]+)</time>`).FindStringSubmatch(page)
		if eta == nil {
			t.Fatal("no ETA on the page")
		}
		at, err := time.Parse(time.RFC3339, eta[1])
		if err != nil || at.Before(time.Now()) || at.After(time.Now().Add(2*time.Minute)) {
			t.Errorf("ETA %q: one queued message at one a minute ends within a minute", eta[1])
		}
		if want := at.Format("2006-01-02 15:04 MST"); eta[2] != want {
			t.Errorf("ETA shown as %q, want %q", eta[2], want)
		}
	})
}

// TestNewCampaignFormOffersExclusionsReplyToAndRate: the form has a
// labelled control for each, named as the API's fields, with a slot for
// its error; Reply-To starts as the sender's.
func TestNewCampaignFormOffersExclusionsReplyToAndRate(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newCampaignSite(t, db)
		if err := db.SetSender(t.Context(), campaign.Sender{CompanyName: "N", PostalAddress: "Street 1", FromEmail: "news@example.com", ReplyTo: "hello@example.com"}); err != nil {
			t.Fatal(err)
		}
		page := s.page(t, campaign.RoleMarketer, "/campaigns/new")
		mustContain(t, "the new-campaign form", page,
			fmt.Sprintf(`<input type="checkbox" name="exclude_segment_ids" value="%d" data-int-list> Only a3</label>`, s.only3.ID),
			`data-error-for="exclude_segment_ids"`,
			`<label for="reply_to">Reply-To`, `<input id="reply_to" name="reply_to" type="email" value="hello@example.com">`, `data-error-for="reply_to"`,
			`<label for="rate">Rate limit`, `<input id="rate" name="rate" type="number" step="any"`, `data-number`, `id="rate-error" data-error-for="rate"`)
		if strings.Contains(page, `name="smtp_pool"`) {
			t.Error("the form offers SMTP pools when no server is in one")
		}
	})
}

// With SMTP servers in pools, the new-campaign form offers them, and the
// campaign page says which one a campaign goes through.
func TestCampaignFormsOfferTheSMTPPools(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		sending := admin.Sending{
			SMTP: []admin.SMTPServer{
				{Host: "a.example", Port: 25, Weight: 1, Pool: "bulk"},
				{Host: "b.example", Port: 25, Weight: 1, Pool: "transactional"},
				{Host: "c.example", Port: 25, Weight: 1, Pool: "bulk"},
			},
			CheckSMTP: func(context.Context, int) admin.SMTPCheck { return admin.SMTPCheck{} },
		}
		s := &campaignSite{site: newSiteWith(t, db, nil, admin.Config{Sending: sending})}
		page := s.page(t, campaign.RoleMarketer, "/campaigns/new")
		mustContain(t, "the new-campaign form", page,
			`<label for="smtp_pool">SMTP servers</label>`, `<select id="smtp_pool" name="smtp_pool"`,
			`<option value="">Every server</option>`, `<option value="bulk">Pool bulk</option>`,
			`<option value="transactional">Pool transactional</option>`, `data-error-for="smtp_pool"`)
		if n := strings.Count(page, `<option value="bulk">`); n != 1 {
			t.Errorf("pool bulk offered %d times, want once", n)
		}
	})
}

// Without a queue monitor (Redis Cluster or Sentinel), no link leads to a
// page that is not there.
func TestNoQueueLinkWithoutAMonitor(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, nil)
		if page := s.page(t, campaign.RoleAdmin, "/"); strings.Contains(page, `href="/monitoring/"`) {
			t.Error("an admin's navigation links /monitoring/ though no monitor is served")
		}
	})
}
