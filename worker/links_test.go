package worker_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
	"github.com/funnel-email/funnel/templates"
	"github.com/funnel-email/funnel/worker"
)

func TestLinkRecorderStoresCampaignLinksOnceAndOverridesOnlyDifferentMessages(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		tpl := &campaign.Template{Name: "t", Subject: "Hi", HTML: "<p>Hello</p>"}
		if err := db.CreateTemplate(ctx, tpl); err != nil {
			t.Fatal(err)
		}
		seg := &campaign.Segment{Name: "all", Rule: &campaign.Rule{Field: "email", Op: campaign.OpContains, Value: "@"}}
		if err := db.CreateSegment(ctx, seg); err != nil {
			t.Fatal(err)
		}
		c := &campaign.Campaign{Name: "c", TemplateID: tpl.ID, SegmentIDs: []int64{seg.ID}, FromEmail: "a@example.com"}
		if err := db.CreateCampaign(ctx, c); err != nil {
			t.Fatal(err)
		}
		var deliveries []int64
		for i := range 3 {
			ct := &campaign.Contact{Email: fmt.Sprintf("l%d@example.com", i)}
			if err := db.CreateContact(ctx, ct); err != nil {
				t.Fatal(err)
			}
			var id int64
			if err := db.QueryRowxContext(ctx, db.Rebind(`INSERT INTO deliveries (campaign_id, contact_id, created_at, updated_at)
				VALUES (?, ?, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP) RETURNING id`), c.ID, ct.ID).Scan(&id); err != nil {
				t.Fatal(err)
			}
			deliveries = append(deliveries, id)
		}
		shared := []templates.Link{{Index: 1, URL: "https://example.com/a", Intent: "pricing"}, {Index: 2, URL: "https://example.com/b"}}
		personal := []templates.Link{{Index: 1, URL: "https://example.com/a?u=2", Intent: "pricing"}, {Index: 2, URL: "https://example.com/b"}}
		r := worker.NewLinkRecorder(store.NewLinks(db))
		for i, l := range [][]templates.Link{shared, shared, personal} {
			if err := r.Record(ctx, c.ID, deliveries[i], l); err != nil {
				t.Fatal(err)
			}
		}
		// Recording again (a re-rendered message) is harmless.
		if err := r.Record(ctx, c.ID, deliveries[2], personal); err != nil {
			t.Fatal(err)
		}
		var campaignRows, deliveryRows int
		_ = db.GetContext(ctx, &campaignRows, `SELECT COUNT(*) FROM campaign_links`)
		_ = db.GetContext(ctx, &deliveryRows, `SELECT COUNT(*) FROM delivery_links`)
		if campaignRows != 2 || deliveryRows != 2 {
			t.Fatalf("%d campaign link rows, %d delivery link rows; want 2 and 2", campaignRows, deliveryRows)
		}
		// A fresh Links (another process) resolves each delivery to its own message's URLs.
		links := store.NewLinks(db)
		found, err := links.FindDeliveries(ctx, deliveries)
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range []string{"https://example.com/a", "https://example.com/a", "https://example.com/a?u=2"} {
			got, err := links.Link(ctx, found[deliveries[i]], 1)
			if err != nil || got.URL != want || got.Intent != "pricing" {
				t.Errorf("delivery %d link 1: %+v, %v; want %s", i, got, err, want)
			}
		}
		if _, err := links.Link(ctx, found[deliveries[0]], 3); campaign.ErrorCode(err) != campaign.ENOTFOUND {
			t.Errorf("missing link: %v, want ENOTFOUND", err)
		}
	})
}
