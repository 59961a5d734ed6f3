package admin

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

// TestDashboardListsOnlyCampaignsInProgress: the dashboard shows the
// campaigns that are scheduled, sending or paused with their progress;
// ended campaigns appear only under recent results, drafts nowhere; a
// small list's size is exact.
func TestDashboardListsOnlyCampaignsInProgress(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		w := newWalkAPI(t, db)
		for _, e := range []string{"a@example.com", "b@example.com", "c@example.com"} {
			if err := db.CreateContact(ctx, &campaign.Contact{Email: e}); err != nil {
				t.Fatal(err)
			}
		}
		tpl := &campaign.Template{Name: "T", Subject: "S", HTML: "<p>x</p>"}
		if err := db.CreateTemplate(ctx, tpl); err != nil {
			t.Fatal(err)
		}
		seg := &campaign.Segment{Name: "all", Rule: &campaign.Rule{Field: "email", Op: campaign.OpStartsWith, Value: "a"}}
		if err := db.CreateSegment(ctx, seg); err != nil {
			t.Fatal(err)
		}
		ids := map[string]int64{}
		for _, name := range []string{"Draft one", "Cancelled one", "Scheduled one"} {
			c := &campaign.Campaign{Name: name, TemplateID: tpl.ID, SegmentIDs: []int64{seg.ID}, FromEmail: "news@example.com"}
			if err := db.CreateCampaign(ctx, c); err != nil {
				t.Fatal(err)
			}
			ids[name] = c.ID
		}
		if _, err := db.TransitionCampaign(ctx, ids["Cancelled one"], campaign.Cancel); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ScheduleCampaign(ctx, ids["Scheduled one"], time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}

		cookie, _ := w.session(t, campaign.RoleMarketer)
		req, _ := http.NewRequest("GET", w.srv.URL+"/", nil)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: cookie})
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		page := string(b)
		if resp.StatusCode != 200 {
			t.Fatalf("GET /: %d\n%s", resp.StatusCode, page)
		}
		// The campaigns in progress, then the recent results of ended ones.
		inProgress, recent, _ := strings.Cut(page, "Recent results")
		for name, want := range map[string]bool{"Scheduled one": true, "Draft one": false, "Cancelled one": false} {
			if got := strings.Contains(inProgress, name); got != want {
				t.Errorf("campaigns in progress show %q: %v, want %v", name, got, want)
			}
		}
		for name, want := range map[string]bool{"Cancelled one": true, "Draft one": false, "Scheduled one": false} {
			if got := strings.Contains(recent, name); got != want {
				t.Errorf("recent results show %q: %v, want %v", name, got, want)
			}
		}
		if !strings.Contains(page, `<span class="n">3</span><span>contacts</span>`) || strings.Contains(page, "estimate") {
			t.Errorf("dashboard does not show exactly 3 contacts:\n%s", page)
		}
	})
}
