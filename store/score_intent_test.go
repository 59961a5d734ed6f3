package store_test

import (
	"testing"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

// A click on a link the template tagged with data-funnel-intent, as the
// sender recorded it in the campaign's links, scores as high intent even
// though the event itself carries no intent.
func TestTaggedCampaignLinkMakesClickHighIntent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		tpl := &campaign.Template{Name: "t", Subject: "s", HTML: "<p>x</p>"}
		if err := db.CreateTemplate(ctx, tpl); err != nil {
			t.Fatal(err)
		}
		seg := &campaign.Segment{Name: "all", Rule: &campaign.Rule{Field: "email", Op: campaign.OpContains, Value: "@"}}
		if err := db.CreateSegment(ctx, seg); err != nil {
			t.Fatal(err)
		}
		camp := &campaign.Campaign{Name: "c", TemplateID: tpl.ID, SegmentIDs: []int64{seg.ID}, FromEmail: "news@example.com"}
		if err := db.CreateCampaign(ctx, camp); err != nil {
			t.Fatal(err)
		}
		links := []store.Link{{Index: 1, URL: "https://x.test/blog"}, {Index: 2, URL: "https://x.test/plans", Intent: "pricing"}}
		if _, err := store.NewLinks(db).RecordCampaign(ctx, camp.ID, links); err != nil {
			t.Fatal(err)
		}
		tagged := newContact(t, db, "tagged@example.com", nil)
		plain := newContact(t, db, "plain@example.com", nil)
		insertEvents(t, db, click(tagged, camp.ID, "https://x.test/plans", scoreT0), click(plain, camp.ID, "https://x.test/blog", scoreT0))
		drain(t, db)
		if got := score(t, db, tagged).State.Score; got != 20 {
			t.Errorf("click on the tagged link scores %v, want 20 (click 5 + high intent 15)", got)
		}
		if got := score(t, db, plain).State.Score; got != 5 {
			t.Errorf("click on an untagged link scores %v, want 5", got)
		}
	})
}
