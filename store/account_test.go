package store_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

const testPassword = "correct horse battery"

func newUser(t *testing.T, db *store.DB, email string, role campaign.Role) *campaign.User {
	t.Helper()
	u := &campaign.User{Email: email, Role: role}
	if err := db.CreateUser(t.Context(), u, testPassword); err != nil {
		t.Fatal(err)
	}
	return u
}

func ptr[T any](v T) *T { return &v }

// TestDisablingAUserEndsSessionsAndTokens: once disabled, a user's
// session and API token are refused; enabled again, the token works (the
// sessions stay ended).
func TestDisablingAUserEndsSessionsAndTokens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		newUser(t, db, "admin@example.com", campaign.RoleAdmin)
		m := newUser(t, db, "m@example.com", campaign.RoleMarketer)
		_, cookie, err := db.CreateSession(ctx, m.ID, time.Hour, "", "")
		if err != nil {
			t.Fatal(err)
		}
		_, token, err := db.CreateUserToken(ctx, m.ID, "sync")
		if err != nil {
			t.Fatal(err)
		}
		got, err := db.UpdateUser(ctx, m.ID, campaign.UserPatch{Disabled: ptr(true)})
		if err != nil || got.DisabledAt == nil {
			t.Fatalf("disable: %+v %v", got, err)
		}
		_, _, err = db.FindSession(ctx, cookie)
		wantCode(t, err, campaign.EUNAUTH)
		_, err = db.AuthenticateAPIToken(ctx, token)
		wantCode(t, err, campaign.EUNAUTH)
		_, err = db.AuthenticateUser(ctx, m.Email, testPassword)
		wantCode(t, err, campaign.EUNAUTH)

		if _, err := db.UpdateUser(ctx, m.ID, campaign.UserPatch{Disabled: ptr(false)}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.AuthenticateAPIToken(ctx, token); err != nil {
			t.Errorf("token after enabling again: %v", err)
		}
		_, _, err = db.FindSession(ctx, cookie)
		wantCode(t, err, campaign.EUNAUTH)
	})
}

// TestTokenActsWithTheUsersCurrentRole: demoting a user demotes the
// tokens they made as an admin.
func TestTokenActsWithTheUsersCurrentRole(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		newUser(t, db, "boss@example.com", campaign.RoleAdmin)
		u := newUser(t, db, "was-admin@example.com", campaign.RoleAdmin)
		_, token, err := db.CreateUserToken(ctx, u.ID, "script")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.UpdateUser(ctx, u.ID, campaign.UserPatch{Role: ptr(campaign.RoleSales)}); err != nil {
			t.Fatal(err)
		}
		p, err := db.AuthenticateAPIToken(ctx, token)
		if err != nil || p.Role != campaign.RoleSales {
			t.Fatalf("token principal %+v %v, want role sales", p, err)
		}
	})
}

// TestLastEnabledAdminStays: the last enabled admin can be neither
// disabled nor demoted, also when two admins demote each other at once.
func TestLastEnabledAdminStays(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		a := newUser(t, db, "a@example.com", campaign.RoleAdmin)
		_, err := db.UpdateUser(ctx, a.ID, campaign.UserPatch{Disabled: ptr(true)})
		wantCode(t, err, campaign.ECONFLICT)
		_, err = db.UpdateUser(ctx, a.ID, campaign.UserPatch{Role: ptr(campaign.RoleMarketer)})
		wantCode(t, err, campaign.ECONFLICT)
		if _, err := db.UpdateUser(ctx, a.ID, campaign.UserPatch{Name: ptr("Ada")}); err != nil {
			t.Errorf("renaming the last admin: %v", err)
		}

		b := newUser(t, db, "b@example.com", campaign.RoleAdmin)
		for round := range 3 {
			errs := make([]error, 2)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i, id := range []int64{a.ID, b.ID} {
				wg.Go(func() {
					<-start
					_, errs[i] = db.UpdateUser(ctx, id, campaign.UserPatch{Role: ptr(campaign.RoleSales)})
				})
			}
			close(start)
			wg.Wait()
			admins, err := db.ListUsers(ctx, campaign.RoleAdmin)
			if err != nil {
				t.Fatal(err)
			}
			if len(admins) != 1 {
				t.Fatalf("round %d: %d admins after two demoted each other (%v), want 1", round, len(admins), errs)
			}
			if c0, c1 := campaign.ErrorCode(errs[0]), campaign.ErrorCode(errs[1]); !(c0 == "" && c1 == campaign.ECONFLICT || c0 == campaign.ECONFLICT && c1 == "") {
				t.Fatalf("round %d: errors %v, want one success and one ECONFLICT", round, errs)
			}
			for _, id := range []int64{a.ID, b.ID} {
				if _, err := db.UpdateUser(ctx, id, campaign.UserPatch{Role: ptr(campaign.RoleAdmin)}); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

// TestUpdateUserNamesTheBadField: bad input is EINVALID with the field.
func TestUpdateUserNamesTheBadField(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		u := newUser(t, db, "u@example.com", campaign.RoleSales)
		for field, p := range map[string]campaign.UserPatch{
			"role":      {Role: ptr(campaign.Role("owner"))},
			"time_zone": {TimeZone: ptr("Mars/Olympus_Mons")},
			"name":      {Name: ptr(strings.Repeat("x", 300))},
		} {
			_, err := db.UpdateUser(ctx, u.ID, p)
			var e *campaign.Error
			if campaign.ErrorCode(err) != campaign.EINVALID || !errors.As(err, &e) || e.Details[0].Field != field {
				t.Errorf("patch %s: %v, want EINVALID naming %s", field, err, field)
			}
		}
		got, err := db.UpdateUser(ctx, u.ID, campaign.UserPatch{TimeZone: ptr("America/New_York")})
		if err != nil || got.TimeZone != "America/New_York" {
			t.Fatalf("set time zone: %+v %v", got, err)
		}
		if found, _ := db.FindUser(ctx, u.ID); found.TimeZone != "America/New_York" {
			t.Errorf("stored time zone %q", found.TimeZone)
		}
		_, err = db.UpdateUser(ctx, 999999, campaign.UserPatch{Name: ptr("x")})
		wantCode(t, err, campaign.ENOTFOUND)
	})
}

// TestPasswordResetWorksOnceAndEndsSessions: a reset link sets the
// password once and signs the user out everywhere; used, expired and
// unknown links fail alike.
func TestPasswordResetWorksOnceAndEndsSessions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		u := newUser(t, db, "forgot@example.com", campaign.RoleMarketer)
		_, cookie, err := db.CreateSession(ctx, u.ID, time.Hour, "", "")
		if err != nil {
			t.Fatal(err)
		}
		_, secret, err := db.CreatePasswordReset(ctx, u.ID, 0, 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		var stored int
		if err := db.GetContext(ctx, &stored, db.Rebind(`SELECT count(*) FROM password_resets WHERE hash = ?`), []byte(secret)); err != nil || stored != 0 {
			t.Errorf("the secret itself is stored (%d rows, %v)", stored, err)
		}
		if got, err := db.PasswordResetUser(ctx, secret); err != nil || got.ID != u.ID {
			t.Fatalf("reset user: %+v %v", got, err)
		}
		_, err = db.ResetPassword(ctx, secret, "short")
		wantCode(t, err, campaign.EINVALID)
		if _, err := db.ResetPassword(ctx, secret, "a brand new passphrase"); err != nil {
			t.Fatalf("reset after a refused short password: %v", err)
		}
		if _, err := db.AuthenticateUser(ctx, u.Email, "a brand new passphrase"); err != nil {
			t.Errorf("new password: %v", err)
		}
		_, _, err = db.FindSession(ctx, cookie)
		wantCode(t, err, campaign.EUNAUTH)
		_, err = db.ResetPassword(ctx, secret, "yet another passphrase")
		wantCode(t, err, campaign.ENOTFOUND)
		used := err.Error()

		_, expiring, err := db.CreatePasswordReset(ctx, u.ID, 0, 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		later := time.Now().Add(25 * time.Hour)
		store.SetNow(db, func() time.Time { return later })
		_, err = db.ResetPassword(ctx, expiring, "yet another passphrase")
		wantCode(t, err, campaign.ENOTFOUND)
		_, unknown := db.ResetPassword(ctx, "no-such-secret", "yet another passphrase")
		if err.Error() != used || unknown.Error() != used {
			t.Errorf("used, expired and unknown links answer differently: %q, %q, %q", used, err, unknown)
		}
	})
}

// TestNewResetLinkVoidsTheOldAndDisablingVoidsAll: one live link per
// user; none for a disabled user.
func TestNewResetLinkVoidsTheOldAndDisablingVoidsAll(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		newUser(t, db, "admin@example.com", campaign.RoleAdmin)
		u := newUser(t, db, "u@example.com", campaign.RoleSales)
		_, first, err := db.CreatePasswordReset(ctx, u.ID, 0, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		_, second, err := db.CreatePasswordReset(ctx, u.ID, 0, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		_, err = db.PasswordResetUser(ctx, first)
		wantCode(t, err, campaign.ENOTFOUND)
		if _, err := db.UpdateUser(ctx, u.ID, campaign.UserPatch{Disabled: ptr(true)}); err != nil {
			t.Fatal(err)
		}
		_, err = db.PasswordResetUser(ctx, second)
		wantCode(t, err, campaign.ENOTFOUND)
		_, _, err = db.CreatePasswordReset(ctx, u.ID, 0, time.Hour)
		wantCode(t, err, campaign.ECONFLICT)
		_, _, err = db.CreatePasswordReset(ctx, 999999, 0, time.Hour)
		wantCode(t, err, campaign.ENOTFOUND)
	})
}

// TestChangePasswordNeedsTheCurrentOne and keeps only the given session.
func TestChangePasswordNeedsTheCurrentOne(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		u := newUser(t, db, "me@example.com", campaign.RoleSales)
		here, hereCookie, err := db.CreateSession(ctx, u.ID, time.Hour, "", "")
		if err != nil {
			t.Fatal(err)
		}
		_, thereCookie, err := db.CreateSession(ctx, u.ID, time.Hour, "", "")
		if err != nil {
			t.Fatal(err)
		}
		for current, field := range map[string]string{"": "current_password", "not my password": "current_password"} {
			err := db.ChangePassword(ctx, u.ID, current, "a brand new passphrase", here.ID)
			var e *campaign.Error
			if !errors.As(err, &e) || e.Code != campaign.EINVALID || e.Details[0].Field != field {
				t.Errorf("current %q: %v, want EINVALID naming %s", current, err, field)
			}
		}
		err = db.ChangePassword(ctx, u.ID, testPassword, "short", here.ID)
		wantCode(t, err, campaign.EINVALID)
		if err := db.ChangePassword(ctx, u.ID, testPassword, "a brand new passphrase", here.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.FindSession(ctx, hereCookie); err != nil {
			t.Errorf("the session that changed the password ended: %v", err)
		}
		_, _, err = db.FindSession(ctx, thereCookie)
		wantCode(t, err, campaign.EUNAUTH)
	})
}

// TestListsPageWithKeysetCursors: users and segments page by ID, and the
// week's leads are counted past any page size.
func TestListsPageWithKeysetCursors(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		for i := range 5 {
			u := newUser(t, db, fmt.Sprintf("u%d@example.com", i), campaign.RoleSales)
			if i == 2 {
				if _, err := db.UpdateUser(ctx, u.ID, campaign.UserPatch{Disabled: ptr(true)}); err != nil {
					t.Fatal(err)
				}
			}
			s := &campaign.Segment{Name: fmt.Sprintf("s%d", i), Rule: mustRule(t, `tag "x"`)}
			if err := db.CreateSegment(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		first, err := db.ListAllUsers(ctx, store.UserFilter{Limit: 3})
		if err != nil || len(first) != 3 {
			t.Fatalf("first page: %d users, %v", len(first), err)
		}
		rest, err := db.ListAllUsers(ctx, store.UserFilter{After: first[2].ID, Limit: 3})
		if err != nil || len(rest) != 2 || rest[0].ID <= first[2].ID {
			t.Fatalf("second page: %+v, %v", rest, err)
		}
		if first[2].DisabledAt == nil {
			t.Error("the disabled user is missing from ListAllUsers or not marked disabled")
		}
		segs, err := db.ListSegmentsAfter(ctx, 0, 4)
		if err != nil || len(segs) != 4 {
			t.Fatalf("segments page: %d, %v", len(segs), err)
		}
		segs, err = db.ListSegmentsAfter(ctx, segs[3].ID, 4)
		if err != nil || len(segs) != 1 || segs[0].Name != "s4" {
			t.Fatalf("last segments page: %+v, %v", segs, err)
		}

		now := time.Now().UTC().Truncate(time.Microsecond)
		tx, err := db.BeginTxx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 501 {
			email := fmt.Sprintf("l%d@example.com", i)
			if _, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO contacts (email, created_at, updated_at) VALUES (?, ?, ?)`), email, now, now); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO leads (contact_id, score_at_creation, created_at, updated_at)
				VALUES ((SELECT id FROM contacts WHERE email = ?), 50, ?, ?)`), email, now.Add(-time.Duration(i)*time.Minute), now); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		n, err := db.CountLeadsSince(ctx, now.Add(-7*24*time.Hour))
		if err != nil || n != 501 {
			t.Errorf("leads this week: %d, %v; want 501", n, err)
		}
		if n, _ := db.CountLeadsSince(ctx, now.Add(-10*time.Minute)); n != 11 {
			t.Errorf("leads in the last 10 minutes: %d, want 11", n)
		}
	})
}
