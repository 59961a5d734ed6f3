package store_test

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

// walk lists every page of a listing in sort, pages of three, each
// resuming where Sorts.Last says the page before ended, and returns the
// IDs in the order listed.
func walk[T any](t *testing.T, sorts store.Sorts[T], sort campaign.Sort, list func(store.Page) ([]T, error)) []int64 {
	t.Helper()
	const size = 3
	ids := []int64{}
	p := store.Page{Sort: sort, Limit: size}
	for range 100 {
		items, err := list(p)
		if err != nil {
			t.Fatalf("sort %s: %v", sort, err)
		}
		for _, it := range items {
			id, _ := sorts.Last(sort, it)
			ids = append(ids, id)
		}
		if len(items) < size {
			return ids
		}
		p.After, p.AfterValue = sorts.Last(sort, items[len(items)-1])
	}
	t.Fatalf("sort %s: the walk did not end", sort)
	return nil
}

// checkWalks walks a listing in each of its sorts and compares the IDs
// listed with want: all sorted by the key's ascending order (asc, by key
// name), reversed for a descending sort. A row missed, repeated or out of
// place fails.
func checkWalks[T any](t *testing.T, name string, sorts store.Sorts[T], all []T, asc map[string]func(a, b T) int, list func(store.Page) ([]T, error)) {
	t.Helper()
	if len(all) == 0 {
		t.Fatalf("%s: no rows to walk", name)
	}
	for _, s := range sorts.Names() {
		sort := campaign.ParseSort(s)
		want := slices.Clone(all)
		slices.SortStableFunc(want, asc[sort.Key])
		if sort.Desc {
			slices.Reverse(want)
		}
		wantIDs := make([]int64, len(want))
		for i, it := range want {
			wantIDs[i], _ = sorts.Last(sort, it)
		}
		if diff := gocmp.Diff(wantIDs, walk(t, sorts, sort, list)); diff != "" {
			t.Errorf("%s sorted by %s: IDs listed (-want +got):\n%s", name, s, diff)
		}
	}
}

func byID[T any](id func(T) int64) func(a, b T) int {
	return func(a, b T) int { return cmp.Compare(id(a), id(b)) }
}

// thenID orders by key, then by ID.
func thenID[T any, K cmp.Ordered](key func(T) K, id func(T) int64) func(a, b T) int {
	return func(a, b T) int { return cmp.Or(cmp.Compare(key(a), key(b)), cmp.Compare(id(a), id(b))) }
}

// TestEveryListingPagesThroughEachSort: for every listing and each of its
// sorts, in both dialects, walking the pages lists every row once, in the
// sort's order; a descending sort is the exact reverse of the ascending
// one, ties included.
func TestEveryListingPagesThroughEachSort(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		// Emails, names and scores are not in ID order; campaign names and
		// lead scores repeat, so ties must go by ID.
		const n = 23
		var contacts []*campaign.Contact
		for i := range n {
			c := &campaign.Contact{Email: fmt.Sprintf("m%02d@x.io", i*7%n)}
			if i%3 == 0 {
				c.Tags = []string{"vip"}
			}
			if err := db.CreateContact(ctx, c); err != nil {
				t.Fatal(err)
			}
			if i%4 == 1 {
				bounced := campaign.ContactBounced
				var err error
				if c, err = db.UpdateContact(ctx, c.ID, campaign.ContactPatch{Status: &bounced}); err != nil {
					t.Fatal(err)
				}
			}
			contacts = append(contacts, c)
		}
		contactID := func(c *campaign.Contact) int64 { return c.ID }
		contactOrder := map[string]func(a, b *campaign.Contact) int{"id": byID(contactID),
			"email": thenID(func(c *campaign.Contact) string { return c.Email }, contactID)}
		for _, tt := range []struct {
			name string
			f    campaign.ContactFilter
			keep func(*campaign.Contact) bool
		}{
			{"all contacts", campaign.ContactFilter{}, func(*campaign.Contact) bool { return true }},
			{"tag vip", campaign.ContactFilter{Tag: "vip"}, func(c *campaign.Contact) bool { return slices.Contains(c.Tags, "vip") }},
			{"status bounced", campaign.ContactFilter{Status: campaign.ContactBounced}, func(c *campaign.Contact) bool { return c.Status == campaign.ContactBounced }},
			{"status active", campaign.ContactFilter{Status: campaign.ContactActive}, func(c *campaign.Contact) bool { return c.Status == campaign.ContactActive }},
			{"email_prefix m1", campaign.ContactFilter{EmailPrefix: "m1"}, func(c *campaign.Contact) bool { return strings.HasPrefix(c.Email, "m1") }},
			{"tag vip and bounced", campaign.ContactFilter{Tag: "vip", Status: campaign.ContactBounced},
				func(c *campaign.Contact) bool {
					return slices.Contains(c.Tags, "vip") && c.Status == campaign.ContactBounced
				}},
		} {
			checkWalks(t, tt.name, store.ContactSorts, slices.DeleteFunc(slices.Clone(contacts), func(c *campaign.Contact) bool { return !tt.keep(c) }), contactOrder,
				func(p store.Page) ([]*campaign.Contact, error) {
					f := tt.f
					f.Sort, f.After, f.AfterValue, f.Limit = p.Sort, p.After, p.AfterValue, p.Limit
					return db.ListContacts(ctx, f)
				})
		}

		vip := &campaign.Segment{Name: "s-vip", Rule: &campaign.Rule{Field: "tags", Op: campaign.OpHas, Value: "vip"}}
		if err := db.CreateSegment(ctx, vip); err != nil {
			t.Fatal(err)
		}
		checkWalks(t, "segment contacts", store.ContactSorts, slices.DeleteFunc(slices.Clone(contacts), func(c *campaign.Contact) bool { return !slices.Contains(c.Tags, "vip") }),
			contactOrder, func(p store.Page) ([]*campaign.Contact, error) { return db.ListSegmentContactsPage(ctx, vip.ID, p) })

		segments := []*campaign.Segment{vip}
		for i := range 6 {
			s := &campaign.Segment{Name: fmt.Sprintf("s%02d", i*5%7), Rule: &campaign.Rule{Field: "email", Op: campaign.OpContains, Value: "@"}}
			if err := db.CreateSegment(ctx, s); err != nil {
				t.Fatal(err)
			}
			segments = append(segments, s)
		}
		segmentID := func(s *campaign.Segment) int64 { return s.ID }
		checkWalks(t, "segments", store.SegmentSorts, segments, map[string]func(a, b *campaign.Segment) int{"id": byID(segmentID),
			"name": thenID(func(s *campaign.Segment) string { return s.Name }, segmentID)}, func(p store.Page) ([]*campaign.Segment, error) { return db.ListSegmentsPage(ctx, p) })

		var templates []*campaign.Template
		for i := range 7 {
			tpl := &campaign.Template{Name: fmt.Sprintf("t%02d", i*3%7), Subject: "Hi", HTML: "<p>Hi</p>"}
			if err := db.CreateTemplate(ctx, tpl); err != nil {
				t.Fatal(err)
			}
			templates = append(templates, tpl)
		}
		templateID := func(t *campaign.Template) int64 { return t.ID }
		checkWalks(t, "templates", store.TemplateSorts, templates, map[string]func(a, b *campaign.Template) int{"id": byID(templateID),
			"name": thenID(func(t *campaign.Template) string { return t.Name }, templateID)}, func(p store.Page) ([]*campaign.Template, error) { return db.ListTemplatesPage(ctx, p) })

		var campaigns []*campaign.Campaign
		for i := range 8 {
			c := &campaign.Campaign{Name: []string{"beta", "alpha", "gamma"}[i%3], TemplateID: templates[0].ID, SegmentIDs: []int64{segments[1].ID}, FromEmail: "news@x.io"}
			if err := db.CreateCampaign(ctx, c); err != nil {
				t.Fatal(err)
			}
			campaigns = append(campaigns, c)
		}
		campaignID := func(c *campaign.Campaign) int64 { return c.ID }
		checkWalks(t, "campaigns", store.CampaignSorts, campaigns, map[string]func(a, b *campaign.Campaign) int{"id": byID(campaignID),
			"name": thenID(func(c *campaign.Campaign) string { return c.Name }, campaignID)}, func(p store.Page) ([]*campaign.Campaign, error) { return db.ListCampaignsPage(ctx, p) })

		var users []*campaign.User
		for i := range 7 {
			users = append(users, newUser(t, db, fmt.Sprintf("u%02d@x.io", i*4%7), campaign.RoleSales))
		}
		userID := func(u *campaign.User) int64 { return u.ID }
		checkWalks(t, "users", store.UserSorts, users, map[string]func(a, b *campaign.User) int{"id": byID(userID),
			"email": thenID(func(u *campaign.User) string { return u.Email }, userID)}, func(p store.Page) ([]*campaign.User, error) {
			return db.ListAllUsers(ctx, store.UserFilter{Sort: p.Sort, After: p.After, AfterValue: p.AfterValue, Limit: p.Limit})
		})

		if _, err := db.MaterializeAudience(ctx, campaigns[0]); err != nil {
			t.Fatal(err)
		}
		deliveries, err := db.ListDeliveries(ctx, campaigns[0].ID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		checkWalks(t, "deliveries", store.DeliverySorts, deliveries, map[string]func(a, b campaign.Delivery) int{"id": byID(func(d campaign.Delivery) int64 { return d.ID })},
			func(p store.Page) ([]campaign.Delivery, error) { return db.ListDeliveriesPage(ctx, campaigns[0].ID, p) })

		now := time.Now().UTC().Truncate(time.Microsecond)
		for i, c := range contacts[:11] {
			if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO leads (contact_id, score_at_creation, score, created_at, updated_at)
				VALUES (?, 50, ?, ?, ?)`), c.ID, float64(10*(i*5%4))+0.5, now, now); err != nil {
				t.Fatal(err)
			}
		}
		leads, err := db.ListLeads(ctx, campaign.LeadFilter{Limit: store.MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		leadID := func(l *campaign.Lead) int64 { return l.ID }
		checkWalks(t, "leads", store.LeadSorts, leads, map[string]func(a, b *campaign.Lead) int{"id": byID(leadID),
			// Ascending score breaks ties by the higher ID first, so that
			// -score (the default) is highest score, then oldest lead.
			"score": func(a, b *campaign.Lead) int { return cmp.Or(cmp.Compare(a.Score, b.Score), cmp.Compare(b.ID, a.ID)) }},
			func(p store.Page) ([]*campaign.Lead, error) {
				f := campaign.LeadFilter{Sort: p.Sort, AfterID: p.After, Limit: p.Limit}
				if v, ok := p.AfterValue.(float64); ok {
					f.AfterScore = &v
				}
				return db.ListLeads(ctx, f)
			})

		for i, c := range contacts {
			if i%2 == 0 {
				insertEvents(t, db, open(c.ID, campaigns[0].ID, true, now.Add(-time.Duration(i)*time.Minute)))
			}
		}
		engaged, err := db.EngagedContacts(ctx, campaign.EngagedFilter{Limit: store.MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		checkWalks(t, "engaged", store.EngagedSorts, engaged, map[string]func(a, b campaign.EngagedContact) int{"id": byID(func(e campaign.EngagedContact) int64 { return e.ContactID })},
			func(p store.Page) ([]campaign.EngagedContact, error) {
				return db.EngagedContacts(ctx, campaign.EngagedFilter{Sort: p.Sort, AfterID: p.After, Limit: p.Limit})
			})
	})
}

// TestListingsRefuseUnknownSortsAndForeignCursors: a sort a listing does
// not have, or a cursor value of another key's type, is EINVALID naming
// the field, and the message lists the sorts there are.
func TestListingsRefuseUnknownSortsAndForeignCursors(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		_, err := db.ListContacts(ctx, campaign.ContactFilter{Sort: campaign.Sort{Key: "created_at"}})
		wantCode(t, err, campaign.EINVALID)
		want := []campaign.FieldError{{Field: "sort", Message: `must be one of id, -id, email, -email, not "created_at"`}}
		if diff := gocmp.Diff(want, err.(*campaign.Error).Details, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("unknown sort (-want +got):\n%s", diff)
		}
		_, err = db.ListContacts(ctx, campaign.ContactFilter{Sort: campaign.Sort{Key: "email"}, After: 3, AfterValue: 2.5})
		wantCode(t, err, campaign.EINVALID)
		_, err = db.ListLeads(ctx, campaign.LeadFilter{Sort: campaign.Sort{Key: "email"}})
		wantCode(t, err, campaign.EINVALID)
		_, err = db.ListCampaignsPage(ctx, store.Page{Sort: campaign.Sort{Key: "name", Desc: true}, After: 1, AfterValue: 7.0})
		wantCode(t, err, campaign.EINVALID)
	})
}

// TestContactsSortedByEmailInAStatusReadTheirIndex: a page of contacts in
// a status other than active, sorted by email either way, is read from
// contacts_inactive_email (migration 00016) rather than from the email
// index past every active contact, or from every contact in the status.
// (On 20,000 contacts PostgreSQL may still sort the range it reads; on
// 1,000,000 it reads the index in order.)
func TestContactsSortedByEmailInAStatusReadTheirIndex(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		now := time.Now().UTC()
		fill := `INSERT INTO contacts (email, created_at, updated_at)
			SELECT 'c' || g || '@x.io', $1, $1 FROM generate_series(1, 20000) g`
		if db.Dialect == store.SQLite {
			fill = `WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 20000)
				INSERT INTO contacts (email, created_at, updated_at) SELECT 'c' || n || '@x.io', ?1, ?1 FROM g`
		}
		if _, err := db.ExecContext(ctx, fill, now); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{`UPDATE contacts SET status = 'bounced' WHERE id % 10 = 3`, `ANALYZE`} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		for _, sort := range []campaign.Sort{{Key: "email"}, {Key: "email", Desc: true}} {
			f := campaign.ContactFilter{Status: campaign.ContactBounced, Sort: sort, After: 5003, AfterValue: "c5003@x.io", Limit: 50}
			q, args, ok := store.ContactListQuery(db, f)
			if !ok {
				t.Fatalf("sort %s: no query", sort)
			}
			text := queryPlan(t, db, q, args...)
			if !strings.Contains(text, "contacts_inactive_email") {
				t.Errorf("sort %s: plan does not read contacts_inactive_email:\n%s", sort, text)
			}
		}
	})
}
