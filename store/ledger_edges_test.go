package store_test

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

// The ledger's edge cases: what happens when a campaign ends while its
// rows are in flight, when a journal lost entries, and when an outcome
// arrives after the sweep.

// ledgerStatuses maps each delivery of campaign id to its status.
func ledgerStatuses(t *testing.T, db *store.DB, id int64) map[int64]campaign.DeliveryStatus {
	t.Helper()
	ds, err := db.ListDeliveries(context.Background(), id, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]campaign.DeliveryStatus{}
	for _, d := range ds {
		out[d.ID] = d.Status
	}
	return out
}

// progressCounts is campaign id's progress by delivery status.
func progressCounts(t *testing.T, db *store.DB, id int64) map[campaign.DeliveryStatus]int64 {
	t.Helper()
	p, err := db.CampaignProgress(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return p.Counts
}

// claimAll claims up to n of campaign c's deliveries under token.
func claimAll(t *testing.T, db *store.DB, c *campaign.Campaign, token string, n int, lease time.Duration) []store.Claimed {
	t.Helper()
	got, err := db.ClaimDeliveries(context.Background(), store.Claim{CampaignID: c.ID, MaxID: 1 << 40, Limit: n, Token: token, Lease: lease})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("claimed %d deliveries, want %d", len(got), n)
	}
	return got
}

// A journal with an outcome for a later row than one it lacks lost
// entries (Redis failed over or came back from an older snapshot): the
// rows it lacks were started, so each may have been sent, and only the
// rows after its last entry are known never to have started.
func TestJournalWithAGapMakesTheRowsItLacksUncertain(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c, _ := campaignFixture(t, db, 6) // 6 deliveries
		if _, err := db.MaterializeAudience(ctx, c); err != nil {
			t.Fatal(err)
		}
		rows := claimAll(t, db, c, "gap", 6, -time.Second)
		journal := func(context.Context, string) ([]store.Outcome, bool, error) {
			return []store.Outcome{
				{ID: rows[0].ID, Status: campaign.DeliverySent, SMTPCode: 250},
				{ID: rows[3].ID, Status: campaign.DeliverySent, SMTPCode: 250},
			}, true, nil
		}
		if _, err := db.RecoverLeases(ctx, journal); err != nil {
			t.Fatal(err)
		}
		want := map[int64]campaign.DeliveryStatus{
			rows[0].ID: campaign.DeliverySent,
			rows[1].ID: campaign.DeliveryUncertain, rows[2].ID: campaign.DeliveryUncertain, // lost from the journal
			rows[3].ID: campaign.DeliverySent,
			rows[4].ID: campaign.DeliveryUncertain, // may have been in its transaction
			rows[5].ID: campaign.DeliveryQueued,
		}
		if diff := cmp.Diff(want, ledgerStatuses(t, db, c.ID)); diff != "" {
			t.Errorf("statuses (-want +got):\n%s", diff)
		}
	})
}

// A campaign that resends uncertain deliveries does not queue them again
// once it was cancelled: they stay uncertain.
func TestSweepOfACancelledCampaignResendsNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c, _ := campaignFixture(t, db, 3)
		c.ResendUncertain = true
		if err := db.UpdateCampaign(ctx, c); err != nil {
			t.Fatal(err)
		}
		if _, err := db.MaterializeAudience(ctx, c); err != nil {
			t.Fatal(err)
		}
		rows := claimAll(t, db, c, "w", 3, -time.Second)
		if _, err := db.TransitionCampaign(ctx, c.ID, campaign.Cancel); err != nil {
			t.Fatal(err)
		}
		requeued, err := db.RecoverLeases(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if requeued[c.ID] {
			t.Errorf("the sweep reports rows of cancelled campaign %d queued again", c.ID)
		}
		want := map[int64]campaign.DeliveryStatus{
			rows[0].ID: campaign.DeliveryUncertain, rows[1].ID: campaign.DeliverySkipped, rows[2].ID: campaign.DeliverySkipped,
		}
		if diff := cmp.Diff(want, ledgerStatuses(t, db, c.ID)); diff != "" {
			t.Errorf("statuses (-want +got):\n%s", diff)
		}
	})
}

// A start that loses the race with a cancel draws no audience: rows
// queued for a cancelled campaign would wait for ever.
func TestCancelledCampaignGetsNoAudience(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c, _ := campaignFixture(t, db, 5)
		if _, err := db.TransitionCampaign(ctx, c.ID, campaign.Cancel); err != nil {
			t.Fatal(err)
		}
		_, err := db.MaterializeAudience(ctx, c)
		wantCode(t, err, campaign.ECONFLICT)
		if got := ledgerStatuses(t, db, c.ID); len(got) != 0 {
			t.Errorf("cancelled campaign has %d deliveries, want none", len(got))
		}
	})
}

// A failed campaign skips its pending deliveries as a cancelled one does;
// a row a worker holds is skipped when it is handed back.
func TestFailedCampaignSkipsItsPendingDeliveries(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c, _ := campaignFixture(t, db, 4)
		c, err := db.ScheduleCampaign(ctx, c.ID, time.Now().Add(-time.Second))
		if err == nil {
			c, err = db.StartCampaign(ctx, c.ID, c.ScheduleVersion)
		}
		if err == nil {
			_, err = db.MaterializeAudience(ctx, c)
		}
		if err != nil {
			t.Fatal(err)
		}
		held := claimAll(t, db, c, "w", 1, time.Hour)
		if _, err := db.FailCampaign(ctx, c.ID, "template no longer compiles"); err != nil {
			t.Fatal(err)
		}
		if err := db.ReleaseClaim(ctx, "w"); err != nil {
			t.Fatal(err)
		}
		for id, s := range ledgerStatuses(t, db, c.ID) {
			if s != campaign.DeliverySkipped {
				t.Errorf("delivery %d (held %v) of the failed campaign is %s, want skipped", id, id == held[0].ID, s)
			}
		}
	})
}

// An outcome that reaches an uncertain row after the campaign's counts
// were recorded is what really happened: the counts follow it.
func TestLateOutcomeUpdatesAFinishedCampaignsCounts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c, _ := campaignFixture(t, db, 3)
		if _, err := db.MaterializeAudience(ctx, c); err != nil {
			t.Fatal(err)
		}
		rows := claimAll(t, db, c, "slow", 3, -time.Second)
		if _, err := db.RecoverLeases(ctx, nil); err != nil { // rows[0] uncertain, the rest queued
			t.Fatal(err)
		}
		if _, err := db.TransitionCampaign(ctx, c.ID, campaign.Cancel); err != nil {
			t.Fatal(err)
		}
		counts := func() map[campaign.DeliveryStatus]int64 { return progressCounts(t, db, c.ID) }
		if got := counts(); got[campaign.DeliveryUncertain] != 1 || got[campaign.DeliverySkipped] != 2 {
			t.Fatalf("before the late outcome: %v, want 1 uncertain, 2 skipped", got)
		}
		// The slow holder's outcome arrives.
		if err := db.RecordOutcome(ctx, store.Outcome{ID: rows[0].ID, Claim: "slow", Status: campaign.DeliverySent, SMTPCode: 250}); err != nil {
			t.Fatal(err)
		}
		if got := counts(); got[campaign.DeliverySent] != 1 || got[campaign.DeliveryUncertain] != 0 {
			t.Errorf("after the late outcome: %v, want 1 sent, 0 uncertain", got)
		}
	})
}

// An SMTP reply of any length is stored cut to the ledger's bound at a
// rune boundary: Postgres refuses text that is not UTF-8.
func TestOutcomeReasonIsBoundedWithoutSplittingARune(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c, _ := campaignFixture(t, db, 1)
		if _, err := db.MaterializeAudience(ctx, c); err != nil {
			t.Fatal(err)
		}
		rows := claimAll(t, db, c, "w", 1, time.Hour)
		// "é" is two bytes: an odd prefix puts the bound inside one.
		reason := "550 x" + strings.Repeat("é", store.MaxOutcomeReason)
		err := db.RecordOutcome(ctx, store.Outcome{ID: rows[0].ID, Claim: "w", Status: campaign.DeliveryFailed, SMTPCode: 550, Reason: reason})
		if err != nil {
			t.Fatal(err)
		}
		ds, err := db.ListDeliveries(ctx, c.ID, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		got := ds[0].Reason
		if len(got) > store.MaxOutcomeReason || len(got) < store.MaxOutcomeReason-1 || !utf8.ValidString(got) || !strings.HasPrefix(reason, got) {
			t.Errorf("stored reason of %d bytes (valid UTF-8 %v), want a prefix of at most %d", len(got), utf8.ValidString(got), store.MaxOutcomeReason)
		}
	})
}
