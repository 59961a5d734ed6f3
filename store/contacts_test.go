package store_test

import (
	"context"
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
