package tracking_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
	"github.com/funnel-email/funnel/token"
	"github.com/funnel-email/funnel/tracking"
	"github.com/funnel-email/funnel/worker"
)

// settle is what funnel work waits by default before scoring a click.
var settle = tracking.DefaultRules().Settle() + 20*time.Second

// scoring is a scorer over the fixture's database on a clock the test
// moves, and a webhook endpoint that collects lead events.
type scoring struct {
	f      *fixture
	now    time.Time
	scorer *worker.Scorer
	hook   int64
}

func newScoring(t *testing.T, f *fixture) *scoring {
	t.Helper()
	wh := &campaign.Webhook{URL: "https://crm.example.com/hook", Active: true,
		Events: []string{campaign.WebhookLeadCreated, campaign.WebhookLeadUpdated}}
	if err := f.db.CreateWebhook(t.Context(), wh, false); err != nil {
		t.Fatal(err)
	}
	s := &scoring{f: f, now: time.Now(), hook: wh.ID}
	s.scorer = &worker.Scorer{DB: f.db, Settle: settle, Now: func() time.Time { return s.now }}
	return s
}

// tick runs the scorer once at now.
func (s *scoring) tick(t *testing.T, now time.Time) {
	t.Helper()
	s.now = now
	if err := s.scorer.Once(t.Context(), false); err != nil {
		t.Fatal(err)
	}
}

// hooks returns the webhook deliveries queued so far, oldest first, as
// "event status-of-the-lead contact".
func (s *scoring) hooks(t *testing.T) []string {
	t.Helper()
	ds, err := s.f.db.WebhookDeliveries(t.Context(), s.hook, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(ds) - 1; i >= 0; i-- {
		var p struct{ Lead campaign.Lead }
		if err := json.Unmarshal(ds[i].Data, &p); err != nil {
			t.Fatal(err)
		}
		out = append(out, ds[i].Event+" "+string(p.Lead.Status)+" "+p.Lead.Email)
	}
	return out
}

type ledgerRow struct {
	Rule          string
	Points, After float64
}

func ledgerOf(t *testing.T, db *store.DB, contact int64) (*campaign.ScoreReport, []ledgerRow) {
	t.Helper()
	rep, err := db.ContactScore(t.Context(), contact)
	if err != nil {
		t.Fatal(err)
	}
	var rows []ledgerRow
	for _, e := range rep.Entries {
		rows = append(rows, ledgerRow{e.Rule, e.Points, e.ScoreAfter})
	}
	return rep, rows
}

func stagesOf(t *testing.T, db *store.DB, contact int64) []string {
	t.Helper()
	h, err := db.StageHistory(t.Context(), contact)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range h {
		out = append(out, string(c.From)+"->"+string(c.To))
	}
	return out
}

// A scanner follows the pricing link and then the honeypot, as scanners
// do: its click is a machine's before it is ever scored, so it earns no
// points, no stage, no lead and no webhook, while a person's click on the
// same link in another message makes a lead once it is settled.
func TestScannerClickBeforeItsHoneypotEarnsNoPointsStageOrLead(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db, "", time.Hour)
		s := newScoring(t, f)
		do(t, "GET", f.clickURL(f.delivery[0], 1), browserUA, nil) // the scanner
		do(t, "GET", f.clickURL(f.delivery[1], 1), browserUA, nil) // the person
		f.drain(t)
		s.tick(t, time.Now()) // the scorer runs between the scanner's hits
		if _, rows := ledgerOf(t, db, f.contacts[1]); len(rows) != 0 {
			t.Errorf("a click was scored before its verdict was final: %+v", rows)
		}
		do(t, "GET", f.clickURL(f.delivery[0], token.HoneypotLink), browserUA, nil)
		f.drain(t)
		s.tick(t, time.Now().Add(settle+time.Second))

		if diff := cmp.Diff([]row{{campaign.EventClicked, links[0].URL, false, "honeypot-window"}, {campaign.EventClicked, "", false, "honeypot"}},
			f.events(t, f.contacts[0])); diff != "" {
			t.Fatalf("scanner's events (-want +got):\n%s", diff)
		}
		rep, rows := ledgerOf(t, db, f.contacts[0])
		if rep.Score != 0 || len(rows) != 0 || rep.Stage != campaign.StageSubscriber {
			t.Errorf("scanner's contact: score %v, stage %s, ledger %+v; want 0, subscriber, nothing", rep.Score, rep.Stage, rows)
		}
		if h := stagesOf(t, db, f.contacts[0]); len(h) != 0 {
			t.Errorf("scanner's contact changed stage: %v", h)
		}
		rep, _ = ledgerOf(t, db, f.contacts[1])
		if rep.Score != 20 || rep.Stage != campaign.StageMQL {
			t.Errorf("person: score %v, stage %s; want 20, mql", rep.Score, rep.Stage)
		}
		leads, err := db.ListLeads(t.Context(), campaign.LeadFilter{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(leads) != 1 || leads[0].ContactID != f.contacts[1] {
			var got []string
			for _, l := range leads {
				got = append(got, l.Email)
			}
			t.Errorf("leads of %v, want the person's only", got)
		}
		if diff := cmp.Diff([]string{"lead.created new c1@example.com"}, s.hooks(t)); diff != "" {
			t.Errorf("webhooks (-want +got):\n%s", diff)
		}
	})
}

// When a click's verdict turns to machine after it was scored (here its
// honeypot hit reaches the database after the click was settled), the
// contact is rescored: the ledger takes the points back with the reason,
// and the lead sales has not touched yet is withdrawn and reported.
func TestClickJudgedMachineAfterScoringIsReversedAndItsLeadWithdrawn(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db, "", time.Hour)
		s := newScoring(t, f)
		do(t, "GET", f.clickURL(f.delivery[0], 1), browserUA, nil)
		f.drain(t)
		s.tick(t, time.Now().Add(settle+time.Second))
		if rep, _ := ledgerOf(t, db, f.contacts[0]); rep.Score != 20 {
			t.Fatalf("score %v before the honeypot hit, want 20", rep.Score)
		}
		do(t, "GET", f.clickURL(f.delivery[0], token.HoneypotLink), browserUA, nil)
		f.drain(t)
		s.tick(t, s.now.Add(time.Second))

		rep, rows := ledgerOf(t, db, f.contacts[0])
		want := []ledgerRow{
			{campaign.RuleClick, 5, 5}, {campaign.RuleHighIntentClick, 15, 20},
			{"reversed:honeypot-window", -5, 15}, {"reversed:honeypot-window", -15, 0},
		}
		if diff := cmp.Diff(want, rows); diff != "" {
			t.Errorf("ledger (-want +got):\n%s", diff)
		}
		if rep.Score != 0 || rep.Ledger != 0 || rep.Stage != campaign.StageRecycled {
			t.Errorf("score %v, ledger total %v, stage %s; want 0, 0, recycled", rep.Score, rep.Ledger, rep.Stage)
		}
		if diff := cmp.Diff([]string{"subscriber->engaged", "engaged->mql", "mql->recycled"}, stagesOf(t, db, f.contacts[0])); diff != "" {
			t.Errorf("stages (-want +got):\n%s", diff)
		}
		leads, err := db.ListLeads(t.Context(), campaign.LeadFilter{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(leads) != 1 || leads[0].Status != campaign.LeadRejected || !strings.Contains(leads[0].Reason, "honeypot-window") || leads[0].Score != 0 {
			for _, l := range leads {
				t.Errorf("lead: %s %q score %v", l.Status, l.Reason, l.Score)
			}
			t.Errorf("%d leads, want one rejected with the reason, score 0", len(leads))
		}
		if diff := cmp.Diff([]string{"lead.created new c0@example.com", "lead.updated rejected c0@example.com"}, s.hooks(t)); diff != "" {
			t.Errorf("webhooks (-want +got):\n%s", diff)
		}
		s.tick(t, s.now.Add(time.Second))
		if _, again := ledgerOf(t, db, f.contacts[0]); !cmp.Equal(rows, again) {
			t.Errorf("a second run changed the ledger: %+v", again)
		}
	})
}
