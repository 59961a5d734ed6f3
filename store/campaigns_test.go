package store_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

// campaignFixture creates n contacts (c0..), a template, a segment of
// every contact whose email contains "@" and an exclusion segment of the
// contacts tagged "vip", and a draft campaign over them.
func campaignFixture(t *testing.T, db *store.DB, n int) (*campaign.Campaign, []*campaign.Contact) {
	t.Helper()
	ctx := context.Background()
	var contacts []*campaign.Contact
	for i := range n {
		c := &campaign.Contact{Email: fmt.Sprintf("c%d@example.com", i)}
		if i%10 == 9 {
			c.Tags = []string{"vip"}
		}
		if err := db.CreateContact(ctx, c); err != nil {
			t.Fatal(err)
		}
		contacts = append(contacts, c)
	}
	tpl := &campaign.Template{Name: "t", Subject: "Hi", HTML: "<p>Hello</p>"}
	if err := db.CreateTemplate(ctx, tpl); err != nil {
		t.Fatal(err)
	}
	all := &campaign.Segment{Name: "all", Rule: &campaign.Rule{Field: "email", Op: campaign.OpContains, Value: "@"}}
	vip := &campaign.Segment{Name: "vip", Rule: &campaign.Rule{Field: "tags", Op: campaign.OpHas, Value: "vip"}}
	for _, s := range []*campaign.Segment{all, vip} {
		if err := db.CreateSegment(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	c := &campaign.Campaign{Name: "Launch", TemplateID: tpl.ID, SegmentIDs: []int64{all.ID}, ExcludeSegmentIDs: []int64{vip.ID},
		FromName: "Acme", FromEmail: "news@acme.example"}
	if err := db.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	return c, contacts
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := campaign.ErrorCode(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
}

func TestCampaignTransitionsAreEnforcedInTheUpdate(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c, _ := campaignFixture(t, db, 1)
		if _, err := db.TransitionCampaign(ctx, c.ID, campaign.Pause); err == nil {
			t.Fatal("pausing a draft succeeded")
		} else {
			wantCode(t, err, campaign.ECONFLICT)
			if want := "it is draft"; !contains(err.Error(), want) {
				t.Errorf("conflict %q does not name the status (%q)", err, want)
			}
		}
		s1, err := db.ScheduleCampaign(ctx, c.ID, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		s2, err := db.ScheduleCampaign(ctx, c.ID, time.Now().Add(2*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if s2.ScheduleVersion != s1.ScheduleVersion+1 {
			t.Errorf("reschedule: version %d after %d", s2.ScheduleVersion, s1.ScheduleVersion)
		}
		// A start task of the first schedule is stale.
		_, err = db.StartCampaign(ctx, c.ID, s1.ScheduleVersion)
		wantCode(t, err, campaign.ECONFLICT)
		got, err := db.StartCampaign(ctx, c.ID, s2.ScheduleVersion)
		if err != nil || got.Status != campaign.StatusSending || got.StartedAt == nil {
			t.Fatalf("start: %+v, %v", got, err)
		}
		// Not complete before the audience is drawn.
		_, err = db.CompleteCampaign(ctx, c.ID)
		wantCode(t, err, campaign.ECONFLICT)
		for _, step := range []struct {
			t    campaign.Transition
			want campaign.Status
		}{{campaign.Pause, campaign.StatusPaused}, {campaign.Resume, campaign.StatusSending}, {campaign.Cancel, campaign.StatusCancelled}} {
			got, err := db.TransitionCampaign(ctx, c.ID, step.t)
			if err != nil || got.Status != step.want {
				t.Fatalf("%s: %v, %v", step.t.Name, got, err)
			}
		}
		_, err = db.TransitionCampaign(ctx, c.ID, campaign.Resume)
		wantCode(t, err, campaign.ECONFLICT)
		_, err = db.TransitionCampaign(ctx, 9999, campaign.Pause)
		wantCode(t, err, campaign.ENOTFOUND)
		c.Name = "renamed"
		wantCode(t, db.UpdateCampaign(ctx, c), campaign.ECONFLICT)
	})
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub)))
}

func TestAudienceLeavesOutSuppressedAndExcludedAndIsDrawnOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c, contacts := campaignFixture(t, db, 20)
		st := campaign.ContactUnsubscribed
		if _, err := db.UpdateContact(ctx, contacts[0].ID, campaign.ContactPatch{Status: &st}); err != nil {
			t.Fatal(err)
		}
		n, err := db.MaterializeAudience(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		// 20 contacts, 2 vip excluded (c9, c19), 1 unsubscribed.
		if n != 17 {
			t.Fatalf("audience %d, want 17", n)
		}
		// A contact added later is not drawn by a second run.
		if err := db.CreateContact(ctx, &campaign.Contact{Email: "late@example.com"}); err != nil {
			t.Fatal(err)
		}
		if n2, err := db.MaterializeAudience(ctx, c); err != nil || n2 != 17 {
			t.Fatalf("second run: %d, %v", n2, err)
		}
		ds, err := db.ListDeliveries(ctx, c.ID, 0, 100)
		if err != nil || len(ds) != 17 {
			t.Fatalf("deliveries: %d, %v", len(ds), err)
		}
		// The range of its delivery IDs is recorded, for listing them.
		var first, last int64
		if err := db.QueryRowxContext(ctx, db.Rebind(`SELECT first_delivery_id, last_delivery_id FROM campaigns WHERE id = ?`), c.ID).Scan(&first, &last); err != nil {
			t.Fatal(err)
		}
		if first != ds[0].ID || last != ds[len(ds)-1].ID {
			t.Errorf("recorded delivery IDs %d-%d, want %d-%d", first, last, ds[0].ID, ds[len(ds)-1].ID)
		}
		for _, d := range ds {
			if d.ContactID == contacts[0].ID || d.ContactID == contacts[9].ID {
				t.Errorf("contact %d is in the audience", d.ContactID)
			}
		}
	})
}

func TestClaimOutcomeAndLeaseRecovery(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c, _ := campaignFixture(t, db, 10) // 9 deliveries
		if _, err := db.MaterializeAudience(ctx, c); err != nil {
			t.Fatal(err)
		}
		claim := func(token string, n int, lease time.Duration) []store.Claimed {
			got, err := db.ClaimDeliveries(ctx, store.Claim{CampaignID: c.ID, MinID: 0, MaxID: 1 << 40, Limit: n, Token: token, Lease: lease})
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		a := claim("a", 4, time.Hour)
		b := claim("b", 4, -time.Second) // already expired: its worker "died"
		if len(a) != 4 || len(b) != 4 || a[3].ID >= b[0].ID {
			t.Fatalf("claims a=%d b=%d not disjoint in order", len(a), len(b))
		}
		if a[0].Contact == nil || a[0].Contact.Email == "" {
			t.Fatalf("claimed delivery without its contact: %+v", a[0])
		}
		// a sends its first, defers its second; b finished its first only.
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(db.RecordOutcome(ctx, store.Outcome{ID: a[0].ID, Claim: "a", Status: campaign.DeliverySent, SMTPCode: 250, MessageID: "m1"}))
		must(db.RecordOutcome(ctx, store.Outcome{ID: a[1].ID, Claim: "a", Status: campaign.DeliveryDeferred, SMTPCode: 451,
			NextAttemptAt: time.Now().Add(-time.Second)}))
		must(db.RecordOutcome(ctx, store.Outcome{ID: b[0].ID, Claim: "b", Status: campaign.DeliveryBounced, SMTPCode: 550, ContactID: b[0].ContactID}))
		// Another claim's token cannot write a's rows.
		if err := db.RecordOutcome(ctx, store.Outcome{ID: a[2].ID, Claim: "b", Status: campaign.DeliverySent}); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("foreign outcome: %v", err)
		}
		got, err := db.RecoverLeases(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !got[c.ID] {
			t.Errorf("recovery did not report campaign %d", c.ID)
		}
		must(db.ReleaseClaim(ctx, "a"))
		ds, err := db.ListDeliveries(ctx, c.ID, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		status := map[int64]campaign.DeliveryStatus{}
		for _, d := range ds {
			status[d.ID] = d.Status
		}
		want := map[int64]campaign.DeliveryStatus{
			a[0].ID: campaign.DeliverySent, a[1].ID: campaign.DeliveryDeferred, a[2].ID: campaign.DeliveryQueued, a[3].ID: campaign.DeliveryQueued,
			// b's lowest unfinished row may have been in its transaction.
			b[0].ID: campaign.DeliveryBounced, b[1].ID: campaign.DeliveryUncertain, b[2].ID: campaign.DeliveryQueued, b[3].ID: campaign.DeliveryQueued,
			ds[8].ID: campaign.DeliveryQueued,
		}
		if diff := cmp.Diff(want, status); diff != "" {
			t.Errorf("statuses (-want +got):\n%s", diff)
		}
		bounced, err := db.FindContact(ctx, b[0].ContactID)
		if err != nil || bounced.Status != campaign.ContactBounced {
			t.Errorf("bounced contact: %+v, %v", bounced, err)
		}
		// The released rows and the due deferred row are claimable again,
		// with the deferred one's attempts counted.
		again := claim("c", 10, time.Hour)
		if len(again) != 6 {
			t.Fatalf("reclaimed %d, want 6", len(again))
		}
		for _, d := range again {
			if d.ID == a[1].ID && d.Attempts != 2 {
				t.Errorf("deferred delivery attempts %d, want 2", d.Attempts)
			}
			if d.ID == a[2].ID && d.Attempts != 1 {
				t.Errorf("released delivery attempts %d, want 1", d.Attempts)
			}
		}
		p, err := db.CampaignProgress(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if p.Audience != 9 || p.Counts[campaign.DeliverySent] != 1 || p.Counts[campaign.DeliverySending] != 6 || p.Counts[campaign.DeliveryUncertain] != 1 {
			t.Errorf("progress %+v", p)
		}
		must(db.InsertMissingSentEvents(ctx, c.ID))
		must(db.InsertMissingSentEvents(ctx, c.ID))
		evs, err := db.ContactEvents(ctx, a[0].ContactID)
		if err != nil || len(evs) != 1 || evs[0].Kind != campaign.EventSent || evs[0].CampaignID != c.ID {
			t.Errorf("sent events: %+v, %v", evs, err)
		}
	})
}

// A claim whose worker kept outcomes in a journal is settled from it: the
// journaled rows get their outcomes, the first row after them may have
// been in its transaction, the rest go back to the queue. A lost journal
// makes every unsettled row uncertain, so that none is sent twice.
func TestLeaseRecoveryReadsTheJournal(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c, _ := campaignFixture(t, db, 10) // 9 deliveries
		if _, err := db.MaterializeAudience(ctx, c); err != nil {
			t.Fatal(err)
		}
		claim := func(token string, n int) []store.Claimed {
			got, err := db.ClaimDeliveries(ctx, store.Claim{CampaignID: c.ID, MinID: 0, MaxID: 1 << 40, Limit: n, Token: token, Lease: -time.Second})
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		kept, lost, live := claim("kept", 4), claim("lost", 3), claim("live", 2)
		sentAt := time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)
		journals := map[string][]store.Outcome{
			"kept": {
				{ID: kept[0].ID, Status: campaign.DeliverySent, SMTPCode: 250, MessageID: "m0", At: sentAt},
				{ID: kept[1].ID, Status: campaign.DeliveryBounced, SMTPCode: 550, Reason: "5.1.1 no such user", ContactID: kept[1].ContactID},
			},
		}
		var read []string
		journal := func(_ context.Context, claim string) ([]store.Outcome, bool, error) {
			read = append(read, claim)
			if claim == "lost" {
				return nil, false, nil
			}
			return journals[claim], true, nil
		}
		// The live claim's holder writes its outcomes itself, one of them
		// for a row that is not its own.
		err := db.RecordOutcomes(ctx, "live", []store.Outcome{
			{ID: live[0].ID, Status: campaign.DeliverySent, SMTPCode: 250},
			{ID: live[1].ID, Status: campaign.DeliveryDeferred, SMTPCode: 451, NextAttemptAt: time.Now().Add(time.Hour)},
			{ID: kept[3].ID, Status: campaign.DeliverySent, SMTPCode: 250},
		})
		if !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("outcome for another claim's row: got %v, want ErrLeaseLost", err)
		}
		requeued, err := db.RecoverLeases(ctx, journal)
		if err != nil {
			t.Fatal(err)
		}
		if !requeued[c.ID] {
			t.Errorf("recovery did not report campaign %d", c.ID)
		}
		slices.Sort(read)
		if diff := cmp.Diff([]string{"kept", "lost"}, read); diff != "" {
			t.Errorf("journals read (-want +got):\n%s", diff)
		}
		ds, err := db.ListDeliveries(ctx, c.ID, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		got := map[int64]campaign.DeliveryStatus{}
		for _, d := range ds {
			got[d.ID] = d.Status
			if d.ID == kept[0].ID && (d.SentAt == nil || !d.SentAt.Equal(sentAt) || d.MessageID != "m0") {
				t.Errorf("journaled sent delivery: sent_at %v, message id %q", d.SentAt, d.MessageID)
			}
		}
		want := map[int64]campaign.DeliveryStatus{
			kept[0].ID: campaign.DeliverySent, kept[1].ID: campaign.DeliveryBounced,
			kept[2].ID: campaign.DeliveryUncertain, kept[3].ID: campaign.DeliveryQueued,
			lost[0].ID: campaign.DeliveryUncertain, lost[1].ID: campaign.DeliveryUncertain, lost[2].ID: campaign.DeliveryUncertain,
			live[0].ID: campaign.DeliverySent, live[1].ID: campaign.DeliveryDeferred,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("statuses (-want +got):\n%s", diff)
		}
		bounced, err := db.FindContact(ctx, kept[1].ContactID)
		if err != nil || bounced.Status != campaign.ContactBounced {
			t.Errorf("journaled bounce did not suppress the contact: %+v, %v", bounced, err)
		}
		// Settled claims are not read again.
		read = nil
		if _, err := db.RecoverLeases(ctx, journal); err != nil || len(read) != 0 {
			t.Errorf("second sweep read %v, %v", read, err)
		}
	})
}

// A finished campaign's counts are recorded once every delivery has
// settled, not before, and then read back unchanged.
func TestFinishedCampaignKeepsItsFinalCounts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c, _ := campaignFixture(t, db, 10) // 9 deliveries
		if _, err := db.MaterializeAudience(ctx, c); err != nil {
			t.Fatal(err)
		}
		held, err := db.ClaimDeliveries(ctx, store.Claim{CampaignID: c.ID, MaxID: 1 << 40, Limit: 2, Token: "w", Lease: time.Hour})
		if err != nil || len(held) != 2 {
			t.Fatalf("claim: %d, %v", len(held), err)
		}
		if _, err := db.TransitionCampaign(ctx, c.ID, campaign.Cancel); err != nil {
			t.Fatal(err)
		}
		recorded := func() bool {
			t.Helper()
			var final *string
			if err := db.GetContext(ctx, &final, db.Rebind(`SELECT final_counts FROM campaigns WHERE id = ?`), c.ID); err != nil {
				t.Fatal(err)
			}
			return final != nil
		}
		counts := func() map[campaign.DeliveryStatus]int64 { return progressCounts(t, db, c.ID) }
		// Cancelled with two messages in flight: still live.
		if got := counts(); got[campaign.DeliverySending] != 2 || got[campaign.DeliverySkipped] != 7 || recorded() {
			t.Fatalf("in flight after cancel: %v, recorded %v; want 2 sending, 7 skipped, not recorded", got, recorded())
		}
		for i, d := range held {
			o := store.Outcome{ID: d.ID, Claim: "w", Status: campaign.DeliverySent, SMTPCode: 250, MessageID: fmt.Sprintf("<%d@t>", i)}
			if err := db.RecordOutcome(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
		want := counts()
		if want[campaign.DeliverySent] != 2 || want[campaign.DeliverySending] != 0 || !recorded() {
			t.Fatalf("settled: %v, recorded %v; want 2 sent and the counts recorded", want, recorded())
		}
		// Deleting a contact who was sent the campaign removes its ledger
		// row; the finished campaign's report keeps what was sent.
		if err := db.DeleteContact(ctx, held[0].ContactID); err != nil {
			t.Fatal(err)
		}
		if got := counts(); !maps.Equal(got, want) {
			t.Errorf("after a contact's deletion: %v, want the recorded %v", got, want)
		}
	})
}
