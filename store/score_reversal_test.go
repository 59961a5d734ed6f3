package store_test

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

// A human click that is not settled yet holds the cursor: what came
// before it is scored, it and what came after wait until it is settled.
func TestUnsettledClickHoldsTheCursor(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		a := newContact(t, db, "a@example.com", nil)
		b := newContact(t, db, "b@example.com", nil)
		insertEvents(t, db,
			open(a, 1, true, scoreT0),
			click(a, 1, "https://x.test/a", scoreT0.Add(50*time.Second)),
			open(b, 1, true, scoreT0.Add(10*time.Second)))
		run, err := db.ScoreSettled(t.Context(), 100, scoreT0.Add(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if run.Events != 1 || run.More || score(t, db, a).State.Score != 1 || score(t, db, b).State.Score != 0 {
			t.Errorf("before the click settled: %+v, scores %v and %v; want the first open only",
				run, score(t, db, a).State.Score, score(t, db, b).State.Score)
		}
		if _, err := db.ScoreSettled(t.Context(), 100, scoreT0.Add(50*time.Second)); err != nil {
			t.Fatal(err)
		}
		if got := []float64{score(t, db, a).State.Score, score(t, db, b).State.Score}; !cmp.Equal(got, []float64{6, 1}) {
			t.Errorf("once settled: scores %v, want [6 1]", got)
		}
	})
}

// A click judged machine after it was scored loses what decay left of its
// points, through a ledger row with the reason; the once key it held is
// free again, so the same contact's human click on that link, scored
// meanwhile without points, earns them; and the ledger equals the replay
// of the events as they are judged now.
func TestReversalTakesBackWhatDecayLeftAndFreesTheLink(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		rules := campaign.DefaultScoreRules()
		rules.HalfLifeDays, rules.Threshold = 1, 1e6
		if err := db.SaveScoreRules(t.Context(), &rules, 0); err != nil {
			t.Fatal(err)
		}
		rules, _ = db.ScoreRules(t.Context())
		now := scoreT0
		store.SetNow(db, func() time.Time { return now })
		c := newContact(t, db, "scanned@example.com", nil)
		insertEvents(t, db, click(c, 1, "https://x.test/a", scoreT0), open(c, 1, true, scoreT0))
		drain(t, db)
		now = scoreT0.Add(25 * time.Hour)
		if _, _, err := db.DecayScores(t.Context(), 10); err != nil {
			t.Fatal(err)
		}
		insertEvents(t, db, click(c, 1, "https://x.test/a", now)) // no points: the scanner's click holds the link
		drain(t, db)
		if _, err := db.ExecContext(t.Context(), db.Rebind(`UPDATE events SET human = ?, reason = 'burst'
			WHERE id = (SELECT MIN(id) FROM events WHERE contact_id = ?)`), false, c); err != nil {
			t.Fatal(err)
		}
		drain(t, db)
		drain(t, db) // the click the link was held from, queued by the reversal

		type row struct {
			Rule          string
			Points, After float64
		}
		var got []row
		rep := score(t, db, c)
		for _, e := range rep.Entries {
			got = append(got, row{e.Rule, e.Points, e.ScoreAfter})
		}
		want := []row{
			{campaign.RuleClick, 5, 5}, {campaign.RuleOpen, 1, 6}, {campaign.RuleDecay, -3, 3},
			{"reversed:burst", -2.5, 0.5}, {campaign.RuleClick, 5, 5.5},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ledger (-want +got):\n%s", diff)
		}
		events, err := db.ContactEvents(t.Context(), c)
		if err != nil {
			t.Fatal(err)
		}
		later := now.Add(3 * 24 * time.Hour)
		now = later
		if replay, stored := rules.Replay(events, nil, later), score(t, db, c).Score; math.Abs(replay.Score-stored) > 1e-9 {
			t.Errorf("score %v, replay of the events as judged now %v", stored, replay.Score)
		}
	})
}

// A contact whose only human click is judged machine after it was scored
// is a subscriber again, and the history says why.
func TestReversedOnlyClickMakesTheContactASubscriberAgain(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := newContact(t, db, "gateway@example.com", nil)
		insertEvents(t, db, click(c, 1, "https://x.test/blog", scoreT0))
		drain(t, db)
		if _, err := db.ExecContext(t.Context(), db.Rebind(`UPDATE events SET human = ?, reason = 'honeypot-window' WHERE contact_id = ?`), false, c); err != nil {
			t.Fatal(err)
		}
		drain(t, db)
		rep := score(t, db, c)
		if rep.Score != 0 || rep.Stage != campaign.StageSubscriber {
			t.Errorf("score %v, stage %s; want 0, subscriber", rep.Score, rep.Stage)
		}
		h, err := db.StageHistory(t.Context(), c)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range h {
			got = append(got, string(s.To)+": "+s.Reason)
		}
		want := []string{"engaged: engaged: first human clicked", "subscriber: subscriber: its click in campaign 1 was judged machine (honeypot-window)"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("stage history (-want +got):\n%s", diff)
		}
	})
}
