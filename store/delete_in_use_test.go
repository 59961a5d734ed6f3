package store_test

import (
	"context"
	"testing"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

// A template stays while any campaign uses it: the campaign's report and
// its duplicates read it.
func TestTemplateUsedByACampaignIsNotDeleted(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c, _ := campaignFixture(t, db, 1)
		wantCode(t, db.DeleteTemplate(ctx, c.TemplateID), campaign.ECONFLICT)
		if _, err := db.FindTemplate(ctx, c.TemplateID); err != nil {
			t.Fatalf("template after the refused delete: %v", err)
		}
		if err := db.DeleteCampaign(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteTemplate(ctx, c.TemplateID); err != nil {
			t.Fatalf("delete of a template no campaign uses: %v", err)
		}
	})
}

// A segment stays while a campaign that has not drawn its audience sends
// to it or excludes it; once the audience is drawn it may go.
func TestSegmentOfAnUnsentCampaignIsNotDeleted(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c, _ := campaignFixture(t, db, 3)
		for _, id := range []int64{c.SegmentIDs[0], c.ExcludeSegmentIDs[0]} {
			wantCode(t, db.DeleteSegment(ctx, id), campaign.ECONFLICT)
			if _, err := db.FindSegment(ctx, id); err != nil {
				t.Fatalf("segment %d after the refused delete: %v", id, err)
			}
		}
		if _, err := db.MaterializeAudience(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteSegment(ctx, c.ExcludeSegmentIDs[0]); err != nil {
			t.Fatalf("delete of a segment whose campaign drew its audience: %v", err)
		}
	})
}
