package store_test

import (
	"sync"
	"testing"
	"time"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

// versioned is one editable resource of the version tests: how to read
// its version and how to update it based on a version.
type versioned struct {
	kind    string
	version func(t *testing.T) (time.Time, string)
	update  func(name string, version time.Time) error
}

// versionedFixtures creates a template, a segment and a draft campaign.
func versionedFixtures(t *testing.T, db *store.DB) []versioned {
	t.Helper()
	ctx := t.Context()
	c, _ := campaignFixture(t, db, 1)
	tplID, segID := c.TemplateID, c.SegmentIDs[0]
	return []versioned{
		{"template",
			func(t *testing.T) (time.Time, string) {
				tpl, err := db.FindTemplate(ctx, tplID)
				if err != nil {
					t.Fatal(err)
				}
				return tpl.UpdatedAt, tpl.Name
			},
			func(name string, v time.Time) error {
				tpl, err := db.FindTemplate(ctx, tplID)
				if err != nil {
					return err
				}
				tpl.Name = name
				return db.UpdateTemplateIf(ctx, tpl, v)
			}},
		{"segment",
			func(t *testing.T) (time.Time, string) {
				s, err := db.FindSegment(ctx, segID)
				if err != nil {
					t.Fatal(err)
				}
				return s.UpdatedAt, s.Name
			},
			func(name string, v time.Time) error {
				_, err := db.UpdateSegmentIf(ctx, segID, campaign.SegmentPatch{Name: &name}, v)
				return err
			}},
		{"campaign",
			func(t *testing.T) (time.Time, string) {
				got, err := db.FindCampaign(ctx, c.ID)
				if err != nil {
					t.Fatal(err)
				}
				return got.UpdatedAt, got.Name
			},
			func(name string, v time.Time) error {
				got, err := db.FindCampaign(ctx, c.ID)
				if err != nil {
					return err
				}
				got.Name = name
				return db.UpdateCampaignIf(ctx, got, v)
			}},
	}
}

// TestConcurrentUpdatesOfOneVersionOneWins: two updates based on the same
// version, started together, never both succeed: one wins, the other is
// ESTALE, and the stored name is the winner's.
func TestConcurrentUpdatesOfOneVersionOneWins(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		for _, r := range versionedFixtures(t, db) {
			for round := range 5 {
				v, _ := r.version(t)
				start := make(chan struct{})
				errs := make([]error, 2)
				var wg sync.WaitGroup
				for i := range 2 {
					wg.Go(func() {
						<-start
						errs[i] = r.update([]string{"alice", "bob"}[i]+itoa(int64(round)), v)
					})
				}
				close(start)
				wg.Wait()
				won := -1
				for i, err := range errs {
					switch campaign.ErrorCode(err) {
					case "":
						if won >= 0 {
							t.Fatalf("%s round %d: both updates of version %s succeeded", r.kind, round, v)
						}
						won = i
					case campaign.ESTALE:
					default:
						t.Fatalf("%s round %d: update %d: %v, want success or ESTALE", r.kind, round, i, err)
					}
				}
				if won < 0 {
					t.Fatalf("%s round %d: neither update succeeded: %v", r.kind, round, errs)
				}
				after, name := r.version(t)
				if !after.After(v) {
					t.Errorf("%s round %d: version %s after the update, want later than %s", r.kind, round, after, v)
				}
				if want := []string{"alice", "bob"}[won] + itoa(int64(round)); name != want {
					t.Errorf("%s round %d: name %q, want the winner's %q", r.kind, round, name, want)
				}
			}
		}
	})
}

// TestStaleVersionChangesNothingAndNoVersionStillUpdates: an update based
// on an old version is ESTALE; one without a version wins whatever the
// version (the API without If-Match).
func TestStaleVersionChangesNothingAndNoVersionStillUpdates(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		for _, r := range versionedFixtures(t, db) {
			old, _ := r.version(t)
			if err := r.update("first", old); err != nil {
				t.Fatalf("%s: update at the current version: %v", r.kind, err)
			}
			wantCode(t, r.update("stale", old), campaign.ESTALE)
			if _, name := r.version(t); name != "first" {
				t.Errorf("%s: name %q after a stale update, want first", r.kind, name)
			}
			if err := r.update("unconditional", time.Time{}); err != nil {
				t.Fatalf("%s: update without a version: %v", r.kind, err)
			}
			if _, name := r.version(t); name != "unconditional" {
				t.Errorf("%s: name %q after an update without a version, want unconditional", r.kind, name)
			}
		}
	})
}

// TestUpdatesInOneMicrosecondGetTwoVersions: with the clock standing
// still, each update still writes a new, later version, so that an ETag
// never names two contents.
func TestUpdatesInOneMicrosecondGetTwoVersions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		fixtures := versionedFixtures(t, db)
		frozen := time.Now().UTC().Truncate(time.Microsecond)
		store.SetNow(db, func() time.Time { return frozen })
		for _, r := range fixtures {
			v0, _ := r.version(t)
			if err := r.update("one", v0); err != nil {
				t.Fatal(err)
			}
			v1, _ := r.version(t)
			if err := r.update("two", v1); err != nil {
				t.Fatalf("%s: update at version %s: %v", r.kind, v1, err)
			}
			v2, _ := r.version(t)
			if !v1.After(v0) || !v2.After(v1) {
				t.Errorf("%s: versions %s, %s, %s with a frozen clock, want each later than the last", r.kind, v0, v1, v2)
			}
			wantCode(t, r.update("stale", v1), campaign.ESTALE)
		}
	})
}
