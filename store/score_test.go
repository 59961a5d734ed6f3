package store_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

var scoreT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newContact(t *testing.T, db *store.DB, email string, attrs campaign.Attributes) int64 {
	t.Helper()
	c := &campaign.Contact{Email: email, Attributes: attrs}
	if err := db.CreateContact(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	return c.ID
}

func insertEvents(t *testing.T, db *store.DB, es ...campaign.Event) {
	t.Helper()
	if err := db.InsertEvents(t.Context(), es); err != nil {
		t.Fatal(err)
	}
}

// drain scores until nothing is left.
func drain(t *testing.T, db *store.DB) {
	t.Helper()
	for range 1000 {
		run, err := db.ScoreEvents(t.Context(), 7)
		if err != nil {
			t.Fatal(err)
		}
		if !run.More && !run.Busy {
			return
		}
	}
	t.Fatal("scoring did not drain")
}

func open(contact, camp int64, human bool, at time.Time) campaign.Event {
	return campaign.Event{ContactID: contact, CampaignID: camp, Kind: campaign.EventOpened, Human: human, OccurredAt: at}
}

func click(contact, camp int64, link string, at time.Time) campaign.Event {
	return campaign.Event{ContactID: contact, CampaignID: camp, Kind: campaign.EventClicked, Link: link, Human: true, OccurredAt: at}
}

func score(t *testing.T, db *store.DB, contact int64) *campaign.ScoreReport {
	t.Helper()
	rep, err := db.ContactScore(t.Context(), contact)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(rep.Ledger-rep.State.Score) > 1e-9 {
		t.Fatalf("ledger total %v != stored score %v", rep.Ledger, rep.State.Score)
	}
	return rep
}

func leadCount(t *testing.T, db *store.DB) int {
	t.Helper()
	ls, err := db.ListLeads(t.Context(), campaign.LeadFilter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	return len(ls)
}

func TestScoringRulesOneByOne(t *testing.T) {
	m := func(d time.Duration) time.Time { return scoreT0.Add(d * time.Minute) }
	tests := []struct {
		name   string
		events func(c int64) []campaign.Event
		want   float64
		stage  campaign.LifecycleStage
		leads  int
	}{
		{"machine open earns nothing", func(c int64) []campaign.Event { return []campaign.Event{open(c, 1, false, m(1))} }, 0, campaign.StageSubscriber, 0},
		{"human open +1 once per campaign", func(c int64) []campaign.Event {
			return []campaign.Event{open(c, 1, true, m(1)), open(c, 1, true, m(2)), open(c, 2, true, m(3))}
		}, 2, campaign.StageEngaged, 0},
		{"human click +5 once per link per campaign", func(c int64) []campaign.Event {
			return []campaign.Event{click(c, 1, "https://x.test/a", m(1)), click(c, 1, "https://x.test/a#top", m(2)),
				click(c, 1, "https://x.test/b", m(3)), click(c, 2, "https://x.test/a", m(4))}
		}, 15, campaign.StageEngaged, 0},
		{"high-intent click +15 on top, and crossing 20 makes a lead", func(c int64) []campaign.Event {
			return []campaign.Event{click(c, 1, "https://x.test/pricing?plan=pro", m(1))}
		}, 20, campaign.StageMQL, 1},
		{"unsubscribe disqualifies", func(c int64) []campaign.Event {
			return []campaign.Event{click(c, 1, "https://x.test/a", m(1)),
				{ContactID: c, CampaignID: 1, Kind: campaign.EventUnsubscribed, OccurredAt: m(2)},
				click(c, 1, "https://x.test/pricing", m(3))}
		}, 0, campaign.StageDisqualified, 0},
		{"hard bounce disqualifies", func(c int64) []campaign.Event {
			return []campaign.Event{{ContactID: c, CampaignID: 1, Kind: campaign.EventBounced, OccurredAt: m(1)},
				click(c, 1, "https://x.test/pricing", m(3))}
		}, 0, campaign.StageDisqualified, 0},
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		rules := campaign.DefaultScoreRules()
		rules.HighIntentPatterns = []string{"/pricing"}
		if err := db.SaveScoreRules(t.Context(), &rules, 0); err != nil {
			t.Fatal(err)
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c := newContact(t, db, fmt.Sprintf("rule%d@example.com", i), nil)
				before := leadCount(t, db)
				insertEvents(t, db, tt.events(c)...)
				drain(t, db)
				rep := score(t, db, c)
				store.SetNow(db, func() time.Time { return m(10) })
				if got := score(t, db, c).Score; got != tt.want {
					t.Errorf("score = %v, want %v (ledger %+v)", got, tt.want, rep.Entries)
				}
				if rep.Stage != tt.stage {
					t.Errorf("stage = %s, want %s", rep.Stage, tt.stage)
				}
				if got := leadCount(t, db) - before; got != tt.leads {
					t.Errorf("leads created = %d, want %d", got, tt.leads)
				}
			})
		}
	})
}

func TestIntentTagMakesClickHighIntent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := newContact(t, db, "intent@example.com", nil)
		insertEvents(t, db, click(c, 3, "https://x.test/demo", scoreT0))
		if _, err := db.ExecContext(t.Context(), `UPDATE events SET intent = 'high'`); err != nil {
			t.Fatal(err)
		}
		drain(t, db)
		if got := score(t, db, c).State.Score; got != 20 {
			t.Fatalf("score = %v, want 20 (click 5 + high intent 15)", got)
		}
	})
}

func TestDecayHalvesAfterEachHalfLifeWithoutActivity(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		now := scoreT0
		store.SetNow(db, func() time.Time { return now })
		c := newContact(t, db, "decay@example.com", nil)
		insertEvents(t, db, click(c, 1, "https://x.test/a", scoreT0), click(c, 1, "https://x.test/b", scoreT0.Add(time.Hour)))
		drain(t, db)
		day := 24 * time.Hour
		last := scoreT0.Add(time.Hour)
		steps := []struct {
			at   time.Time
			want float64
		}{
			{last.Add(30*day - time.Second), 10},
			{last.Add(30 * day), 5},
			{last.Add(89 * day), 2.5},
			{last.Add(90 * day), 1.25},
		}
		for _, s := range steps {
			now = s.at
			if got := score(t, db, c).Score; got != s.want {
				t.Errorf("at +%v: score = %v, want %v", s.at.Sub(last), got, s.want)
			}
			if _, _, err := db.DecayScores(t.Context(), 100); err != nil {
				t.Fatal(err)
			}
			rep := score(t, db, c)
			if rep.State.Score != s.want || rep.Pending != 0 {
				t.Errorf("at +%v after the sweep: stored %v pending %v, want %v", s.at.Sub(last), rep.State.Score, rep.Pending, s.want)
			}
		}
		// Activity resets the clock: the open adds 1 and the next halving is
		// a half-life after it.
		insertEvents(t, db, open(c, 2, true, now.Add(day)))
		drain(t, db)
		now = now.Add(day + 30*day - time.Second)
		if got := score(t, db, c).Score; got != 2.25 {
			t.Errorf("after new activity: score = %v, want 2.25", got)
		}
		now = now.Add(time.Second)
		if got := score(t, db, c).Score; got != 1.125 {
			t.Errorf("a half-life after new activity: score = %v, want 1.125", got)
		}
		var decays int
		for _, e := range score(t, db, c).Entries {
			if e.Rule == campaign.RuleDecay {
				decays++
			}
		}
		if decays != 3 {
			t.Errorf("decay ledger rows = %d, want 3 (one per sweep that found a halving)", decays)
		}
	})
}

// TestLedgerMatchesReplay: on random event streams, scored in random
// batches with decay sweeps in between, the stored score (the ledger's
// sum) equals the in-memory replay of the same events under the same
// rules.
func TestLedgerMatchesReplay(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		rng := rand.New(rand.NewPCG(7, uint64(len(db.Dialect))))
		rules := campaign.DefaultScoreRules()
		rules.HalfLifeDays = 3
		rules.Threshold = 1e6 // leads are not the point here
		rules.HighIntentPatterns = []string{"/pricing"}
		if err := db.SaveScoreRules(t.Context(), &rules, 0); err != nil {
			t.Fatal(err)
		}
		rules, _ = db.ScoreRules(t.Context())
		now := scoreT0
		store.SetNow(db, func() time.Time { return now })
		const contacts = 6
		ids := make([]int64, contacts)
		for i := range ids {
			ids[i] = newContact(t, db, fmt.Sprintf("p%d@example.com", i), nil)
		}
		links := []string{"https://x.test/a", "https://x.test/b", "https://x.test/pricing"}
		var all []campaign.Event
		at := scoreT0
		for round := 0; round < 12; round++ {
			var batch []campaign.Event
			for range rng.IntN(15) {
				at = at.Add(time.Duration(rng.IntN(36*3600)) * time.Second)
				c := ids[rng.IntN(contacts)]
				camp := int64(1 + rng.IntN(3))
				var e campaign.Event
				switch k := rng.IntN(20); {
				case k < 8:
					e = open(c, camp, rng.IntN(3) > 0, at)
				case k < 18:
					e = click(c, camp, links[rng.IntN(len(links))], at)
					e.Human = rng.IntN(4) > 0
				case k < 19:
					e = campaign.Event{ContactID: c, CampaignID: camp, Kind: campaign.EventUnsubscribed, OccurredAt: at}
				default:
					e = campaign.Event{ContactID: c, CampaignID: camp, Kind: campaign.EventSent, OccurredAt: at}
				}
				batch = append(batch, e)
			}
			if len(batch) > 0 {
				insertEvents(t, db, batch...)
				all = append(all, batch...)
			}
			now = at
			drain(t, db)
			if rng.IntN(2) == 0 { // a sweep somewhere before the next event
				at = at.Add(time.Duration(rng.IntN(5*24*3600)) * time.Second)
				now = at
				if _, _, err := db.DecayScores(t.Context(), 100); err != nil {
					t.Fatal(err)
				}
			}
		}
		now = at.Add(10 * 24 * time.Hour)
		for _, c := range ids {
			var mine []campaign.Event
			for _, e := range all {
				if e.ContactID == c {
					mine = append(mine, e)
				}
			}
			want := rules.Replay(mine, nil, now)
			got := score(t, db, c)
			if math.Abs(got.Score-want.Score) > 1e-9 {
				t.Errorf("contact %d: stored score %v, replay %v (%d events)", c, got.Score, want.Score, len(mine))
			}
			if got.State.Disqualified != want.Disqualified {
				t.Errorf("contact %d: disqualified %v, replay %v", c, got.State.Disqualified, want.Disqualified)
			}
		}
	})
}

// TestConcurrentScoringMakesOneLead: two runs at once over one contact's
// events create one lead and award every point once.
func TestConcurrentScoringMakesOneLead(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := newContact(t, db, "race@example.com", nil)
		var es []campaign.Event
		for i := range 40 {
			es = append(es, click(c, int64(1+i%4), fmt.Sprintf("https://x.test/%d", i%10), scoreT0.Add(time.Duration(i)*time.Second)))
		}
		wh := &campaign.Webhook{URL: "https://crm.example.com/hook", Events: []string{campaign.WebhookLeadCreated}, Active: true}
		if err := db.CreateWebhook(t.Context(), wh, false); err != nil {
			t.Fatal(err)
		}
		for round := range 5 {
			insertEvents(t, db, es[round*8:round*8+8]...)
			var wg sync.WaitGroup
			for range 2 {
				wg.Go(func() {
					for {
						run, err := db.ScoreEvents(context.Background(), 3)
						if err != nil {
							t.Error(err)
							return
						}
						if !run.More && !run.Busy {
							return
						}
					}
				})
			}
			wg.Wait()
		}
		drain(t, db)
		// 10 distinct links per campaign index: links i%10 with campaign 1+i%4
		// give 20 distinct (campaign, link) pairs, 5 points each.
		if got := score(t, db, c).State.Score; got != 100 {
			t.Errorf("score = %v, want 100", got)
		}
		if n := leadCount(t, db); n != 1 {
			t.Errorf("leads = %d, want 1", n)
		}
		ds, err := db.WebhookDeliveries(t.Context(), wh.ID, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 1 {
			t.Errorf("lead.created deliveries = %d, want 1", len(ds))
		}
	})
}

func TestVerdictUpgradeIsScored(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := newContact(t, db, "upgrade@example.com", nil)
		insertEvents(t, db, open(c, 1, false, scoreT0))
		drain(t, db)
		if got := score(t, db, c).State.Score; got != 0 {
			t.Fatalf("machine open scored %v", got)
		}
		// The classifier upgrades the open when a human click arrives.
		if _, err := db.ExecContext(t.Context(), `UPDATE events SET human = TRUE, reason = 'human click followed'`); err != nil {
			t.Fatal(err)
		}
		drain(t, db)
		drain(t, db)
		rep := score(t, db, c)
		if rep.State.Score != 1 || len(rep.Entries) != 1 {
			t.Fatalf("after upgrade: score %v, ledger %+v; want one open row", rep.State.Score, rep.Entries)
		}
	})
}

func TestLeadOwners(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var sales []int64
		for i := range 3 {
			u := &campaign.User{Email: fmt.Sprintf("s%d@example.com", i), Role: campaign.RoleSales}
			if err := db.CreateUser(t.Context(), u, "correct horse battery"); err != nil {
				t.Fatal(err)
			}
			sales = append(sales, u.ID)
		}
		rules := campaign.DefaultScoreRules()
		rules.OwnerRules = []campaign.OwnerRule{{Attribute: "country", Value: "de", UserID: sales[2]}}
		if err := db.SaveScoreRules(t.Context(), &rules, 0); err != nil {
			t.Fatal(err)
		}
		var cs []int64
		for i, country := range []string{"FR", "DE", "US", "FR", "US"} {
			c := newContact(t, db, fmt.Sprintf("o%d@example.com", i), campaign.Attributes{"country": country})
			cs = append(cs, c)
			insertEvents(t, db, click(c, 1, "https://x.test/a", scoreT0), click(c, 1, "https://x.test/b", scoreT0),
				click(c, 1, "https://x.test/c", scoreT0), click(c, 1, "https://x.test/d", scoreT0))
		}
		drain(t, db)
		want := []int64{sales[0], sales[2], sales[1], sales[2], sales[0]}
		for i, c := range cs {
			ls, err := db.ListLeads(t.Context(), campaign.LeadFilter{Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			var owner int64 = -1
			for _, l := range ls {
				if l.ContactID == c {
					owner = l.OwnerID
				}
			}
			if owner != want[i] {
				t.Errorf("contact %d: owner %d, want %d", i, owner, want[i])
			}
		}
	})
}

func TestUpdateLeadTransitions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := newContact(t, db, "lead@example.com", nil)
		insertEvents(t, db, click(c, 1, "https://x.test/a", scoreT0), click(c, 1, "https://x.test/b", scoreT0),
			click(c, 1, "https://x.test/c", scoreT0), click(c, 1, "https://x.test/d", scoreT0))
		drain(t, db)
		ls, _ := db.ListLeads(t.Context(), campaign.LeadFilter{})
		if len(ls) != 1 {
			t.Fatalf("leads = %d", len(ls))
		}
		id := ls[0].ID
		st := func(s campaign.LeadStatus) *campaign.LeadStatus { return &s }
		str := func(s string) *string { return &s }
		steps := []struct {
			patch campaign.LeadPatch
			code  string
			stage campaign.LifecycleStage
		}{
			{campaign.LeadPatch{Status: st("bogus")}, campaign.EINVALID, campaign.StageMQL},
			{campaign.LeadPatch{Status: st(campaign.LeadRejected)}, campaign.EINVALID, campaign.StageMQL},
			{campaign.LeadPatch{Status: st(campaign.LeadWon)}, campaign.ECONFLICT, campaign.StageMQL},
			{campaign.LeadPatch{Status: st(campaign.LeadAccepted)}, "", campaign.StageSQL},
			{campaign.LeadPatch{Status: st(campaign.LeadWon)}, "", campaign.StageWon},
			{campaign.LeadPatch{Status: st(campaign.LeadRejected), Reason: str("no budget")}, campaign.ECONFLICT, campaign.StageWon},
		}
		for i, s := range steps {
			_, err := db.UpdateLead(t.Context(), id, s.patch, 0)
			if got := campaign.ErrorCode(err); (err == nil) != (s.code == "") || (err != nil && got != s.code) {
				t.Errorf("step %d: err = %v, want code %q", i, err, s.code)
			}
			if got := score(t, db, c).Stage; got != s.stage {
				t.Errorf("step %d: stage %s, want %s", i, got, s.stage)
			}
		}
		if _, err := db.UpdateLead(t.Context(), 999, campaign.LeadPatch{Status: st(campaign.LeadAccepted)}, 0); campaign.ErrorCode(err) != campaign.ENOTFOUND {
			t.Errorf("unknown lead: %v", err)
		}
	})
}

func TestRejectedLeadIsRecycledAndRequalifies(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		now := scoreT0
		store.SetNow(db, func() time.Time { return now })
		c := newContact(t, db, "recycle@example.com", nil)
		insertEvents(t, db, click(c, 1, "https://x.test/a", scoreT0), click(c, 1, "https://x.test/b", scoreT0),
			click(c, 1, "https://x.test/c", scoreT0), click(c, 1, "https://x.test/d", scoreT0))
		drain(t, db)
		ls, _ := db.ListLeads(t.Context(), campaign.LeadFilter{})
		reason := "not now"
		st := campaign.LeadRejected
		if _, err := db.UpdateLead(t.Context(), ls[0].ID, campaign.LeadPatch{Status: &st, Reason: &reason}, 0); err != nil {
			t.Fatal(err)
		}
		if got := score(t, db, c).Stage; got != campaign.StageRecycled {
			t.Fatalf("stage after rejection = %s", got)
		}
		// Decay to 10, then four new clicks cross the threshold again.
		now = scoreT0.Add(31 * 24 * time.Hour)
		insertEvents(t, db, click(c, 2, "https://x.test/a", now), click(c, 2, "https://x.test/b", now))
		drain(t, db)
		l, _ := db.FindLead(t.Context(), ls[0].ID)
		if l.Status != campaign.LeadNew || score(t, db, c).Stage != campaign.StageMQL {
			t.Fatalf("after requalifying: lead %s, stage %s", l.Status, score(t, db, c).Stage)
		}
		hist, _ := db.StageHistory(t.Context(), c)
		var path []campaign.LifecycleStage
		for _, h := range hist {
			path = append(path, h.To)
		}
		want := fmt.Sprint([]campaign.LifecycleStage{campaign.StageEngaged, campaign.StageMQL, campaign.StageRecycled, campaign.StageMQL})
		if fmt.Sprint(path) != want {
			t.Errorf("stage history %v, want %s", path, want)
		}
	})
}

// The leads board orders by the lead's copy of the contact's score: it must
// follow every change of the score, from new events and from decay.
func TestLeadsBoardFollowsTheCurrentScore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		now := scoreT0
		store.SetNow(db, func() time.Time { return now })
		a := newContact(t, db, "a@example.com", nil)
		b := newContact(t, db, "b@example.com", nil)
		for _, c := range []int64{a, b} {
			insertEvents(t, db, click(c, 1, "https://x.test/a", now), click(c, 1, "https://x.test/b", now),
				click(c, 1, "https://x.test/c", now), click(c, 1, "https://x.test/d", now))
		}
		drain(t, db)
		board := func() []int64 {
			t.Helper()
			ls, err := db.ListLeads(t.Context(), campaign.LeadFilter{Status: campaign.LeadNew})
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, l := range ls {
				if want := score(t, db, l.ContactID).State.Score; l.Score != want {
					t.Errorf("lead of contact %d shows score %v, the contact has %v", l.ContactID, l.Score, want)
				}
				ids = append(ids, l.ContactID)
			}
			return ids
		}
		if got := board(); !slices.Equal(got, []int64{a, b}) {
			t.Fatalf("equal scores: board %v, want %v (lead ID order)", got, []int64{a, b})
		}
		// b clicks again a day later: it leads the board.
		now = now.Add(24 * time.Hour)
		insertEvents(t, db, click(b, 2, "https://x.test/e", now))
		drain(t, db)
		if got := board(); !slices.Equal(got, []int64{b, a}) {
			t.Errorf("after b's click: board %v, want %v", got, []int64{b, a})
		}
		// A half-life later both halve; the order stays and the shown
		// scores are the decayed ones (checked in board).
		now = now.Add(30 * 24 * time.Hour)
		if _, _, err := db.DecayScores(t.Context(), 100); err != nil {
			t.Fatal(err)
		}
		if got := board(); !slices.Equal(got, []int64{b, a}) {
			t.Errorf("after decay: board %v, want %v", got, []int64{b, a})
		}
		// The minimum-score filter reads the same copy.
		ls, err := db.ListLeads(t.Context(), campaign.LeadFilter{MinScore: score(t, db, b).State.Score})
		if err != nil || len(ls) != 1 || ls[0].ContactID != b {
			t.Errorf("min_score = b's score: %+v, %v; want b's lead only", ls, err)
		}
	})
}
