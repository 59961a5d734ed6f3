package store_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

func TestCampaignReportSplitsHumanAndMachine(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := &campaign.Contact{Email: "r@example.com"}
		if err := db.CreateContact(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		at := time.Date(2026, 3, 1, 9, 15, 0, 0, time.UTC)
		ev := func(kind campaign.EventKind, human bool, link string, campaignID int64, later time.Duration) campaign.Event {
			return campaign.Event{ContactID: c.ID, CampaignID: campaignID, Kind: kind, Human: human, Link: link, OccurredAt: at.Add(later)}
		}
		err := db.InsertEvents(t.Context(), []campaign.Event{
			ev(campaign.EventOpened, true, "", 7, 0),
			ev(campaign.EventOpened, false, "", 7, 0),
			ev(campaign.EventClicked, true, "https://x.test/pricing", 7, time.Hour),
			ev(campaign.EventClicked, true, "https://x.test/pricing", 7, time.Hour),
			ev(campaign.EventClicked, false, "https://x.test/news", 7, time.Hour),
			ev(campaign.EventClicked, true, "https://x.test/other", 8, 0), // another campaign
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := db.CampaignReport(t.Context(), 7)
		if err != nil {
			t.Fatal(err)
		}
		want := &store.CampaignReport{
			HumanOpens: 1, MachineOpens: 1, HumanClicks: 2, MachineClicks: 1,
			Links: []store.LinkClicks{{Link: "https://x.test/pricing", Human: 2}, {Link: "https://x.test/news", Machine: 1}},
			Hours: []store.HourCount{{Hour: at.Truncate(time.Hour), Opens: 1}, {Hour: at.Truncate(time.Hour).Add(time.Hour), Clicks: 2}},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("report (-want +got):\n%s", diff)
		}
	})
}
