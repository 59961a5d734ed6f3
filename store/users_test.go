package store_test

import (
	"strings"
	"testing"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

func TestUsersStorePasswordsHashedAndAuthenticate(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		u := &campaign.User{Email: " Sam@Example.com", Name: "Sam", Role: campaign.RoleSales}
		if err := db.CreateUser(ctx, u, "correct horse battery"); err != nil {
			t.Fatal(err)
		}
		var hash string
		if err := db.GetContext(ctx, &hash, db.Rebind(`SELECT password_hash FROM users WHERE id = ?`), u.ID); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(hash, "$argon2id$") || strings.Contains(hash, "correct horse") {
			t.Errorf("password stored as %q", hash)
		}
		got, err := db.AuthenticateUser(ctx, "SAM@example.com", "correct horse battery")
		if err != nil || got.ID != u.ID || got.Role != campaign.RoleSales {
			t.Fatalf("authenticate: %+v %v", got, err)
		}
		for _, bad := range [][2]string{{"sam@example.com", "wrong password!!"}, {"nobody@example.com", "correct horse battery"}} {
			if _, err := db.AuthenticateUser(ctx, bad[0], bad[1]); campaign.ErrorCode(err) != campaign.EUNAUTH {
				t.Errorf("authenticate %v: %v, want EUNAUTH", bad, err)
			}
		}
		if err := db.CreateUser(ctx, &campaign.User{Email: "sam@example.com", Role: campaign.RoleAdmin}, "another long password"); campaign.ErrorCode(err) != campaign.ECONFLICT {
			t.Errorf("duplicate email: %v, want ECONFLICT", err)
		}
		if err := db.CreateUser(ctx, &campaign.User{Email: "x@example.com", Role: campaign.RoleAdmin}, "short"); campaign.ErrorCode(err) != campaign.EINVALID {
			t.Errorf("short password: %v, want EINVALID", err)
		}
		if err := db.SetUserPassword(ctx, u.ID, "a brand new passphrase"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.AuthenticateUser(ctx, "sam@example.com", "correct horse battery"); campaign.ErrorCode(err) != campaign.EUNAUTH {
			t.Errorf("old password still works: %v", err)
		}
		sales, err := db.ListUsers(ctx, campaign.RoleSales)
		if err != nil || len(sales) != 1 || sales[0].Email != "sam@example.com" {
			t.Errorf("sales users = %+v %v", sales, err)
		}
	})
}
