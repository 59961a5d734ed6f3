package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

func TestContactLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		consent := time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("CET", 3600))
		c := &campaign.Contact{
			Email: "  Ana@Example.COM ", FirstName: "Ana", LastName: "Lima",
			Attributes:    campaign.Attributes{"country": "DE", "seats": 12.0, "trial": true},
			Tags:          []string{"Customer", "vip", "customer"},
			ConsentSource: "signup form", ConsentAt: &consent,
		}
		if err := db.CreateContact(ctx, c); err != nil {
			t.Fatal(err)
		}
		got, err := db.FindContact(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(c, got); diff != "" {
			t.Errorf("stored contact differs (-created +found):\n%s", diff)
		}
		if got.Email != "ana@example.com" || !cmp.Equal(got.Tags, []string{"customer", "vip"}) {
			t.Errorf("email/tags not normalized: %q %v", got.Email, got.Tags)
		}
		if !got.ConsentAt.Equal(consent) {
			t.Errorf("consent_at = %v, want %v", got.ConsentAt, consent)
		}

		dup := &campaign.Contact{Email: "ANA@example.com"}
		if err := db.CreateContact(ctx, dup); campaign.ErrorCode(err) != campaign.ECONFLICT {
			t.Errorf("duplicate email: got %v, want ECONFLICT", err)
		}

		first := "Ana Maria"
		updated, err := db.UpdateContact(ctx, c.ID, campaign.ContactPatch{
			FirstName:  &first,
			Attributes: map[string]any{"trial": nil, "plan": "pro"},
		})
		if err != nil {
			t.Fatal(err)
		}
		want := campaign.Attributes{"country": "DE", "seats": 12.0, "plan": "pro"}
		if updated.FirstName != first || !cmp.Equal(updated.Attributes, want) {
			t.Errorf("after patch: first=%q attrs=%v", updated.FirstName, updated.Attributes)
		}
		bad := "not-an-email"
		if _, err := db.UpdateContact(ctx, c.ID, campaign.ContactPatch{Email: &bad}); campaign.ErrorCode(err) != campaign.EINVALID {
			t.Errorf("invalid email patch: got %v, want EINVALID", err)
		}
		if again, _ := db.FindContact(ctx, c.ID); again.Email != "ana@example.com" {
			t.Errorf("a rejected patch changed the contact: %q", again.Email)
		}

		if err := db.DeleteContact(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.FindContact(ctx, c.ID); campaign.ErrorCode(err) != campaign.ENOTFOUND {
			t.Errorf("after delete: got %v, want ENOTFOUND", err)
		}
	})
}

func TestListContactsFiltersAndPages(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for _, e := range []struct {
			email  string
			tags   []string
			status campaign.ContactStatus
		}{
			{"a1@x.io", []string{"lead"}, campaign.ContactActive},
			{"a2@x.io", []string{"customer"}, campaign.ContactActive},
			{"a_3@x.io", []string{"customer", "lead"}, campaign.ContactUnsubscribed},
			{"b1@x.io", nil, campaign.ContactBounced},
			{"a%@x.io", nil, campaign.ContactActive},
		} {
			if err := db.CreateContact(ctx, &campaign.Contact{Email: e.email, Tags: e.tags, Status: e.status}); err != nil {
				t.Fatal(err)
			}
		}
		emails := func(f campaign.ContactFilter) []string {
			t.Helper()
			cs, err := db.ListContacts(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, c := range cs {
				out = append(out, c.Email)
			}
			return out
		}
		tests := []struct {
			name string
			f    campaign.ContactFilter
			want []string
		}{
			{"prefix", campaign.ContactFilter{EmailPrefix: "A"}, []string{"a1@x.io", "a2@x.io", "a_3@x.io", "a%@x.io"}},
			{"prefix with underscore is literal", campaign.ContactFilter{EmailPrefix: "a_"}, []string{"a_3@x.io"}},
			{"prefix with percent is literal", campaign.ContactFilter{EmailPrefix: "a%"}, []string{"a%@x.io"}},
			{"tag", campaign.ContactFilter{Tag: "Customer"}, []string{"a2@x.io", "a_3@x.io"}},
			{"status", campaign.ContactFilter{Status: campaign.ContactBounced}, []string{"b1@x.io"}},
			{"tag and status", campaign.ContactFilter{Tag: "lead", Status: campaign.ContactActive}, []string{"a1@x.io"}},
			{"page size", campaign.ContactFilter{Limit: 2}, []string{"a1@x.io", "a2@x.io"}},
		}
		for _, tt := range tests {
			if diff := cmp.Diff(tt.want, emails(tt.f)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tt.name, diff)
			}
		}
		page1, _ := db.ListContacts(ctx, campaign.ContactFilter{Limit: 2})
		if diff := cmp.Diff([]string{"a_3@x.io", "b1@x.io", "a%@x.io"}, emails(campaign.ContactFilter{After: page1[1].ID})); diff != "" {
			t.Errorf("second page (-want +got):\n%s", diff)
		}
	})
}

func TestAPITokens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		tok, secret, err := db.CreateAPIToken(ctx, "ci", campaign.RoleMarketer)
		if err != nil {
			t.Fatal(err)
		}
		p, err := db.AuthenticateAPIToken(ctx, secret)
		if err != nil || p.Role != campaign.RoleMarketer || p.TokenID != tok.ID {
			t.Fatalf("authenticate: %+v, %v", p, err)
		}
		if _, err := db.AuthenticateAPIToken(ctx, secret+"x"); campaign.ErrorCode(err) != campaign.EUNAUTH {
			t.Errorf("wrong secret: got %v, want EUNAUTH", err)
		}
		var stored int
		if err := db.GetContext(ctx, &stored, db.Rebind(`SELECT count(*) FROM api_tokens WHERE prefix = ? AND hash <> ?`), tok.Prefix, []byte(secret)); err != nil || stored != 1 {
			t.Errorf("token must be stored hashed: %d, %v", stored, err)
		}
		if err := db.RevokeAPIToken(ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.AuthenticateAPIToken(ctx, secret); campaign.ErrorCode(err) != campaign.EUNAUTH {
			t.Errorf("revoked token: got %v, want EUNAUTH", err)
		}
	})
}

// TestListContactsByStatusReadsTheInactiveIndex: a page of contacts in a
// status other than active comes from the partial index of inactive
// contacts in both dialects (rather than a walk of the primary key past
// every active contact), and holds the right contacts.
func TestListContactsByStatusReadsTheInactiveIndex(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		const n = 20000
		now := time.Now().UTC()
		fill := `INSERT INTO contacts (email, created_at, updated_at)
			SELECT 'c' || g || '@x.io', $1, $1 FROM generate_series(1, 20000) g`
		if db.Dialect == store.SQLite {
			fill = `WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 20000)
				INSERT INTO contacts (email, created_at, updated_at) SELECT 'c' || n || '@x.io', ?1, ?1 FROM g`
		}
		for _, q := range []string{fill,
			`UPDATE contacts SET status = 'bounced' WHERE id % 4000 = 7`,
			`UPDATE contacts SET status = 'complained' WHERE id = (SELECT max(id) FROM contacts)`,
			`ANALYZE`} {
			var args []any
			if q == fill {
				args = []any{now}
			}
			if _, err := db.ExecContext(ctx, q, args...); err != nil {
				t.Fatal(err)
			}
		}
		for _, tt := range []struct {
			status campaign.ContactStatus
			want   int
		}{{campaign.ContactBounced, n / 4000}, {campaign.ContactComplained, 1}, {campaign.ContactUnsubscribed, 0}} {
			f := campaign.ContactFilter{Status: tt.status, Limit: 50}
			q, args, _ := store.ContactListQuery(db, f)
			if plan := queryPlan(t, db, q, args...); !strings.Contains(plan, "contacts_inactive") {
				t.Errorf("status %s: plan does not use contacts_inactive:\n%s", tt.status, plan)
			}
			cs, err := db.ListContacts(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cs {
				if c.Status != tt.status {
					t.Errorf("status %s: listed %s in status %s", tt.status, c.Email, c.Status)
				}
			}
			if len(cs) != tt.want {
				t.Errorf("status %s: %d contacts, want %d", tt.status, len(cs), tt.want)
			}
		}
	})
}

// TestEstimateContactsIsExactUnlessLarge: a list under the threshold,
// or one PostgreSQL has no statistics for yet, is counted exactly; past
// the threshold PostgreSQL answers from its statistics and says so.
// SQLite always counts.
func TestEstimateContactsIsExactUnlessLarge(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		for i := range 30 {
			if err := db.CreateContact(ctx, &campaign.Contact{Email: fmt.Sprintf("e%d@x.io", i)}); err != nil {
				t.Fatal(err)
			}
		}
		check := func(name string, exactBelow int64, want store.ContactCount) {
			t.Helper()
			got, err := db.EstimateContacts(ctx, exactBelow)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", name, diff)
			}
		}
		check("no statistics yet", 10, store.ContactCount{N: 30})
		if _, err := db.ExecContext(ctx, "ANALYZE contacts"); err != nil {
			t.Fatal(err)
		}
		check("under the threshold", 1000, store.ContactCount{N: 30})
		check("past the threshold", 10, store.ContactCount{N: 30, Approximate: db.Dialect == store.Postgres})
	})
}

// The tag filter must see every write of tags: creation, a patch, an import
// that merges tags, deletion. On SQLite it reads contact_tags, which
// triggers keep; the oracle is the tags each contact has.
func TestTagFilterFollowsEveryWrite(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		tags := []string{"vip", "old", "new", "imported", "gone"}
		check := func(step string) {
			t.Helper()
			all, err := db.ListContacts(ctx, campaign.ContactFilter{Limit: store.MaxPageSize})
			if err != nil {
				t.Fatal(err)
			}
			for _, tag := range tags {
				var want []string
				for _, c := range all {
					if slices.Contains(c.Tags, tag) {
						want = append(want, c.Email)
					}
				}
				var got []string
				// Pages of one, so the keyset cursor is exercised too.
				for after := int64(0); ; {
					cs, err := db.ListContacts(ctx, campaign.ContactFilter{Tag: tag, After: after, Limit: 1})
					if err != nil {
						t.Fatal(err)
					}
					if len(cs) == 0 {
						break
					}
					got, after = append(got, cs[0].Email), cs[0].ID
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s: tag %q lists %v, the contacts with it are %v", step, tag, got, want)
				}
			}
		}
		var ids []int64
		for i, ts := range [][]string{{"vip", "old"}, {"old"}, nil, {"gone", "vip"}} {
			c := &campaign.Contact{Email: fmt.Sprintf("t%d@example.com", i), Tags: ts}
			if err := db.CreateContact(ctx, c); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, c.ID)
		}
		check("after create")

		newTags := []string{"new", "vip"}
		if _, err := db.UpdateContact(ctx, ids[0], campaign.ContactPatch{Tags: &newTags}); err != nil {
			t.Fatal(err)
		}
		none := []string{}
		if _, err := db.UpdateContact(ctx, ids[3], campaign.ContactPatch{Tags: &none}); err != nil {
			t.Fatal(err)
		}
		check("after patches")

		importCSV(t, db, "email,tags\nt1@example.com,new\nt2@example.com,old\nt9@example.com,vip\n",
			campaign.ImportOptions{UpdateExisting: true, Tags: []string{"imported"}}, 0)
		check("after an import")

		for _, id := range ids[:2] {
			if err := db.DeleteContact(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		check("after deletes")
	})
}

// queryPlan is the database's plan of q (EXPLAIN, or SQLite's EXPLAIN
// QUERY PLAN): the last column of each of its rows, one per line.
func queryPlan(t *testing.T, db *store.DB, q string, args ...any) string {
	t.Helper()
	explain := "EXPLAIN "
	if db.Dialect == store.SQLite {
		explain = "EXPLAIN QUERY PLAN "
	}
	rows, err := db.QueryContext(t.Context(), explain+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, fmt.Sprint(vals[len(vals)-1]))
	}
	return strings.Join(plan, "\n")
}
