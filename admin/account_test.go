package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

// cred is how a test request authenticates: a bearer token, or a session
// cookie with its CSRF token.
type cred struct{ token, cookie, csrf string }

func (w *walkAPI) tokenOf(r campaign.Role) cred { return cred{token: w.tokens[r]} }

func (w *walkAPI) sessionOf(t *testing.T, r campaign.Role) cred {
	t.Helper()
	cookie, csrf := w.session(t, r)
	return cred{cookie: cookie, csrf: csrf}
}

// send makes one request without following redirects and returns its
// status, body and headers.
func (w *walkAPI) send(t *testing.T, c cred, method, path, body string) (int, string, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, w.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.cookie != "" {
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: c.cookie})
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, readBody(resp), resp.Header
}

// errorOf decodes an API error body.
func errorOf(t *testing.T, body string) errorDetail {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code == "" {
		t.Fatalf("not an error body (%v): %s", err, body)
	}
	return e.Error
}

// wantField fails unless the answer is 422 with a detail naming field.
func wantField(t *testing.T, what string, status int, body, field string) {
	t.Helper()
	if status != http.StatusUnprocessableEntity {
		t.Errorf("%s: %d %s, want 422", what, status, body)
		return
	}
	e := errorOf(t, body)
	for _, d := range e.Details {
		if d.Field == field {
			return
		}
	}
	t.Errorf("%s: 422 %s, want a detail naming %q", what, body, field)
}

func userPath(id int64, rest string) string { return fmt.Sprintf("/api/v1/users/%d%s", id, rest) }

// TestUserAdminRoutesAreAdminOnly: marketers and sales get 403 on the
// user admin routes, by token and by session.
func TestUserAdminRoutesAreAdminOnly(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	w := newWalkAPI(t, db)
	target := w.users[campaign.RoleSales].ID
	for _, role := range []campaign.Role{campaign.RoleMarketer, campaign.RoleSales} {
		for _, c := range []cred{w.tokenOf(role), w.sessionOf(t, role)} {
			for _, rt := range [][3]string{
				{"GET", "/api/v1/users", ""},
				{"PATCH", userPath(target, ""), `{"role":"admin"}`},
				{"POST", userPath(target, "/reset-link"), ""},
			} {
				if status, body, _ := w.send(t, c, rt[0], rt[1], rt[2]); status != http.StatusForbidden {
					t.Errorf("%s %s as %s: %d %s, want 403", rt[0], rt[1], role, status, body)
				}
			}
		}
	}
	if u, _ := db.FindUser(t.Context(), target); u.Role != campaign.RoleSales {
		t.Errorf("role changed to %s by a refused request", u.Role)
	}
}

// TestPatchUserBadInputNamesTheField: bad input is 4xx naming the field,
// never 500.
func TestPatchUserBadInputNamesTheField(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	w := newWalkAPI(t, db)
	admin := w.tokenOf(campaign.RoleAdmin)
	path := userPath(w.users[campaign.RoleSales].ID, "")
	for body, field := range map[string]string{
		`{"role":"owner"}`:                                 "role",
		`{"disabled":"yes"}`:                               "disabled",
		`{"name":"` + strings.Repeat("n", 201) + `"}`:      "name",
		`{"email":"new@example.com"}`:                      "email",
		`{"time_zone":"Europe/Berlin","role":"marketer"}`:  "time_zone",
		`{"password":"a brand new passphrase, no thanks"}`: "password",
	} {
		status, resp, _ := w.send(t, admin, "PATCH", path, body)
		wantField(t, "PATCH "+body, status, resp, field)
	}
	if status, _, _ := w.send(t, admin, "PATCH", userPath(999999, ""), `{"name":"x"}`); status != 404 {
		t.Errorf("unknown user: %d, want 404", status)
	}
	if status, _, _ := w.send(t, admin, "POST", userPath(999999, "/reset-link"), ""); status != 404 {
		t.Errorf("reset link of an unknown user: %d, want 404", status)
	}
	status, body, _ := w.send(t, admin, "PATCH", path, `{"name":"Sally","role":"marketer"}`)
	var u campaign.User
	if status != 200 || json.Unmarshal([]byte(body), &u) != nil || u.Name != "Sally" || u.Role != campaign.RoleMarketer {
		t.Errorf("good PATCH: %d %s", status, body)
	}
}

// TestLastAdminCannotDisableOrDemoteThemselves: 409 with the reason while
// no other admin is enabled; allowed once there is one.
func TestLastAdminCannotDisableOrDemoteThemselves(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWalkAPI(t, db)
		me := w.sessionOf(t, campaign.RoleAdmin)
		path := userPath(w.users[campaign.RoleAdmin].ID, "")
		for _, body := range []string{`{"disabled":true}`, `{"role":"marketer"}`} {
			status, resp, _ := w.send(t, me, "PATCH", path, body)
			if status != http.StatusConflict || !strings.Contains(errorOf(t, resp).Message, "last enabled admin") {
				t.Errorf("PATCH self %s as the last admin: %d %s, want 409 naming the reason", body, status, resp)
			}
		}
		if status, body, _ := w.send(t, me, "GET", "/api/v1/me", ""); status != 200 {
			t.Fatalf("the admin lost access after refused changes: %d %s", status, body)
		}
		if status, body, _ := w.send(t, me, "PATCH", userPath(w.users[campaign.RoleMarketer].ID, ""), `{"role":"admin"}`); status != 200 {
			t.Fatalf("promote: %d %s", status, body)
		}
		if status, body, _ := w.send(t, me, "PATCH", path, `{"role":"marketer"}`); status != 200 {
			t.Errorf("demote self with another admin: %d %s, want 200", status, body)
		}
	})
}

// TestDisabledUserIsLockedOutAtOnce: after an admin disables a user, the
// user's API token answers 401 and their session is sent to the login
// page; enabling them makes the token work again.
func TestDisabledUserIsLockedOutAtOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWalkAPI(t, db)
		admin := w.tokenOf(campaign.RoleAdmin)
		mToken, mSession := w.tokenOf(campaign.RoleMarketer), w.sessionOf(t, campaign.RoleMarketer)
		path := userPath(w.users[campaign.RoleMarketer].ID, "")
		if status, _, _ := w.send(t, mSession, "GET", "/campaigns", ""); status != 200 {
			t.Fatalf("session before disabling: %d", status)
		}
		if status, body, _ := w.send(t, admin, "PATCH", path, `{"disabled":true}`); status != 200 || !strings.Contains(body, `"disabled_at":"`) {
			t.Fatalf("disable: %d %s", status, body)
		}
		if status, _, h := w.send(t, mToken, "GET", "/api/v1/me", ""); status != 401 || h.Get("WWW-Authenticate") == "" {
			t.Errorf("disabled user's token: %d, want 401", status)
		}
		status, _, h := w.send(t, mSession, "GET", "/campaigns", "")
		if status != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/login?next=") {
			t.Errorf("disabled user's session on a page: %d to %q, want 303 to /login", status, h.Get("Location"))
		}
		if status, _, _ := w.send(t, mSession, "GET", "/api/v1/me", ""); status != 401 {
			t.Errorf("disabled user's session on the API: %d, want 401", status)
		}
		if status, _, _ := w.send(t, admin, "PATCH", path, `{"disabled":false}`); status != 200 {
			t.Fatalf("enable: %d", status)
		}
		if status, _, _ := w.send(t, mToken, "GET", "/api/v1/me", ""); status != 200 {
			t.Errorf("token after enabling: %d, want 200", status)
		}
		if status, _, _ := w.send(t, mSession, "GET", "/api/v1/me", ""); status != 401 {
			t.Errorf("session ended by disabling came back: %d, want 401", status)
		}
	})
}

var resetCSRFRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// resetForm opens a reset link in a browser and returns its CSRF field.
func resetForm(t *testing.T, c *http.Client, link string) (int, string, string) {
	t.Helper()
	resp, err := c.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	page := readBody(resp)
	m := resetCSRFRe.FindStringSubmatch(page)
	if m == nil {
		return resp.StatusCode, page, ""
	}
	return resp.StatusCode, page, m[1]
}

func postReset(t *testing.T, c *http.Client, link, csrf, password, confirm string) (int, string) {
	t.Helper()
	resp, err := c.PostForm(link, url.Values{"csrf": {csrf}, "password": {password}, "confirm": {confirm}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, readBody(resp)
}

// mainOf is the <main> of a page, where pages differ.
func mainOf(page string) string {
	i, j := strings.Index(page, "<main"), strings.Index(page, "</main>")
	if i < 0 || j < i {
		return page
	}
	return page[i:j]
}

// TestResetLinkWorksOnceAndEndsSessions walks the reset flow: an admin
// makes a link; the user opens it signed out and sets a password, which
// ends the sessions they had; the link then fails like an unknown or
// expired one, with the same page.
func TestResetLinkWorksOnceAndEndsSessions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWalkAPI(t, db)
		user := w.users[campaign.RoleMarketer]
		old := w.sessionOf(t, campaign.RoleMarketer)
		status, body, _ := w.send(t, w.tokenOf(campaign.RoleAdmin), "POST", userPath(user.ID, "/reset-link"), "")
		var link resetLink
		if status != 201 || json.Unmarshal([]byte(body), &link) != nil || !strings.HasPrefix(link.URL, w.srv.URL+"/reset/") {
			t.Fatalf("create reset link: %d %s", status, body)
		}
		if got := link.ExpiresAt.Sub(link.CreatedAt); got != 24*time.Hour {
			t.Errorf("link lasts %s, want 24h", got)
		}

		c := browser(t)
		status, page, csrf := resetForm(t, c, link.URL)
		if status != 200 || csrf == "" || !strings.Contains(page, user.Email) {
			t.Fatalf("GET reset page: %d\n%s", status, page)
		}
		if status, _ := postReset(t, browser(t), link.URL, csrf, "a brand new passphrase", "a brand new passphrase"); status != 400 {
			t.Errorf("POST without the form's cookie: %d, want 400", status)
		}
		if status, page := postReset(t, c, link.URL, csrf, "a brand new passphrase", "a different passphrase"); status != 422 || !strings.Contains(page, "differ") {
			t.Errorf("POST with differing passwords: %d, want 422 saying they differ", status)
		}
		_, _, csrf = resetForm(t, c, link.URL)
		if status, page := postReset(t, c, link.URL, csrf, "short", "short"); status != 422 || !strings.Contains(page, "at least 12 characters") {
			t.Errorf("POST a short password: %d, want 422 with the length rule\n%s", status, mainOf(page))
		}
		_, _, csrf = resetForm(t, c, link.URL)
		if status, page := postReset(t, c, link.URL, csrf, "a brand new passphrase", "a brand new passphrase"); status != 200 || !strings.Contains(page, "Your password is set") {
			t.Fatalf("POST a good password: %d\n%s", status, mainOf(page))
		}
		if status, _, _ := w.send(t, old, "GET", "/api/v1/me", ""); status != 401 {
			t.Errorf("session from before the reset: %d, want 401", status)
		}
		if resp := postLogin(t, browser(t), w.srv.URL, user.Email, "a brand new passphrase"); resp.StatusCode != 303 {
			t.Errorf("login with the new password: %d, want 303", resp.StatusCode)
		}

		usedStatus, usedPage, usedCSRF := resetForm(t, c, link.URL)
		if usedStatus != 404 || usedCSRF != "" || !strings.Contains(usedPage, "not valid") {
			t.Errorf("reusing the link: %d, want 404 with no form", usedStatus)
		}
		if status, _ := postReset(t, c, link.URL, csrf, "another new passphrase", "another new passphrase"); status != 404 {
			t.Errorf("POST to a used link: %d, want 404", status)
		}
		unknownStatus, unknownPage, _ := resetForm(t, c, w.srv.URL+"/reset/no-such-link")
		status, body, _ = w.send(t, w.tokenOf(campaign.RoleAdmin), "POST", userPath(user.ID, "/reset-link"), "{}")
		if status != 201 || json.Unmarshal([]byte(body), &link) != nil {
			t.Fatalf("second link: %d %s", status, body)
		}
		// A day later: the link has expired.
		if _, err := db.ExecContext(t.Context(), db.Rebind(`UPDATE password_resets SET expires_at = ? WHERE id = ?`),
			time.Now().UTC().Add(-time.Minute), link.ID); err != nil {
			t.Fatal(err)
		}
		expiredStatus, expiredPage, _ := resetForm(t, c, link.URL)
		if unknownStatus != usedStatus || expiredStatus != usedStatus || mainOf(unknownPage) != mainOf(usedPage) || mainOf(expiredPage) != mainOf(usedPage) {
			t.Errorf("used (%d), unknown (%d) and expired (%d) links answer differently", usedStatus, unknownStatus, expiredStatus)
		}
	})
}

// TestPatchMeChangesProfileAndPassword: name and time zone change; a bad
// zone is 422 naming it and changes nothing; the password needs the
// current one and ends the other sessions only.
func TestPatchMeChangesProfileAndPassword(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWalkAPI(t, db)
		here, there := w.sessionOf(t, campaign.RoleSales), w.sessionOf(t, campaign.RoleSales)
		status, body, _ := w.send(t, here, "PATCH", "/api/v1/me", `{"name":"Sam","time_zone":"Europe/Berlin"}`)
		var u campaign.User
		if status != 200 || json.Unmarshal([]byte(body), &u) != nil || u.Name != "Sam" || u.TimeZone != "Europe/Berlin" {
			t.Fatalf("PATCH me: %d %s", status, body)
		}
		status, body, _ = w.send(t, here, "PATCH", "/api/v1/me", `{"name":"Not Sam","time_zone":"Berlin"}`)
		wantField(t, "bad time zone", status, body, "time_zone")
		for body, field := range map[string]string{
			`{"password":"a brand new passphrase"}`:                                     "current_password",
			`{"password":"a brand new passphrase","current_password":"wrong password"}`: "current_password",
			`{"password":"short","current_password":"correct horse battery"}`:           "password",
			`{"current_password":"correct horse battery"}`:                              "password",
			`{"role":"admin"}`: "role",
		} {
			status, resp, _ := w.send(t, here, "PATCH", "/api/v1/me", body)
			wantField(t, "PATCH me "+body, status, resp, field)
		}
		if got, _ := db.FindUser(t.Context(), u.ID); got.Name != "Sam" || got.Role != campaign.RoleSales {
			t.Errorf("refused PATCHes changed the user: %+v", got)
		}
		status, body, _ = w.send(t, here, "PATCH", "/api/v1/me", `{"password":"a brand new passphrase","current_password":"correct horse battery"}`)
		if status != 200 {
			t.Fatalf("change password: %d %s", status, body)
		}
		if status, _, _ := w.send(t, here, "GET", "/api/v1/me", ""); status != 200 {
			t.Errorf("the session that changed the password: %d, want 200", status)
		}
		if status, _, _ := w.send(t, there, "GET", "/api/v1/me", ""); status != 401 {
			t.Errorf("the other session: %d, want 401", status)
		}
		if _, err := db.AuthenticateUser(t.Context(), u.Email, "a brand new passphrase"); err != nil {
			t.Errorf("new password: %v", err)
		}
	})
}

// TestLocalTimeReadsTheCallersZone: the schedule forms' conversion uses
// the offset of the date asked about.
func TestLocalTimeReadsTheCallersZone(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	w := newWalkAPI(t, db)
	me := w.tokenOf(campaign.RoleMarketer)
	if _, err := db.UpdateUser(t.Context(), w.users[campaign.RoleMarketer].ID, campaign.UserPatch{TimeZone: ptrTo("Europe/Berlin")}); err != nil {
		t.Fatal(err)
	}
	for at, want := range map[string]string{"2026-01-15T09:00": "2026-01-15T09:00:00+01:00", "2026-07-15T09:00": "2026-07-15T09:00:00+02:00"} {
		status, body, _ := w.send(t, me, "GET", "/api/v1/me/local-time?at="+at, "")
		var got localTime
		if status != 200 || json.Unmarshal([]byte(body), &got) != nil || got.Time != want || got.TimeZone != "Europe/Berlin" || got.UTC.Location() != time.UTC {
			t.Errorf("local time %s: %d %s, want %s", at, status, body, want)
		}
	}
	for query, field := range map[string]string{"": "at", "at=2026-03-29T02:30": "at", "at=soon": "at", "at=2026-01-01T09:00&time_zone=Nowhere": "time_zone"} {
		status, body, _ := w.send(t, me, "GET", "/api/v1/me/local-time?"+query, "")
		wantField(t, "local time "+query, status, body, field)
	}
}

func ptrTo[T any](v T) *T { return &v }

// TestPagesShowTimesInTheViewersZone: the same time reads in each
// viewer's zone, and the schedule form names the zone and holds the
// scheduled time in it.
func TestPagesShowTimesInTheViewersZone(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	w := newWalkAPI(t, db)
	ctx := t.Context()
	tpl := &campaign.Template{Name: "Zoned", Subject: "Hi", HTML: "<p>Hi</p>"}
	if err := db.CreateTemplate(ctx, tpl); err != nil {
		t.Fatal(err)
	}
	seg := &campaign.Segment{Name: "all", Rule: &campaign.Rule{Field: "email", Op: campaign.OpContains, Value: "@"}}
	if err := db.CreateSegment(ctx, seg); err != nil {
		t.Fatal(err)
	}
	c := &campaign.Campaign{Name: "Zoned launch", TemplateID: tpl.ID, SegmentIDs: []int64{seg.ID}, FromEmail: "news@example.com"}
	if err := db.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	sendAt := time.Date(2030, 7, 1, 7, 0, 0, 0, time.UTC)
	if _, err := db.ScheduleCampaign(ctx, c.ID, sendAt); err != nil {
		t.Fatal(err)
	}
	m := w.users[campaign.RoleMarketer]
	if _, err := db.UpdateUser(ctx, m.ID, campaign.UserPatch{TimeZone: ptrTo("America/New_York")}); err != nil {
		t.Fatal(err)
	}
	ny, _ := time.LoadLocation("America/New_York")
	session := w.sessionOf(t, campaign.RoleMarketer)
	_, page, _ := w.send(t, session, "GET", "/templates", "")
	if want := tpl.UpdatedAt.In(ny).Format("2006-01-02 15:04 MST"); !strings.Contains(page, want) {
		t.Errorf("templates page does not show %q in the viewer's zone:\n%s", want, mainOf(page))
	}
	_, page, _ = w.send(t, session, "GET", "/campaigns/"+itoa(c.ID), "")
	for _, want := range []string{"2030-07-01 03:00 EDT", `value="2030-07-01T03:00"`, "America/New_York"} {
		if !strings.Contains(page, want) {
			t.Errorf("campaign page lacks %q:\n%s", want, mainOf(page))
		}
	}
	_, page, _ = w.send(t, w.sessionOf(t, campaign.RoleAdmin), "GET", "/campaigns", "")
	if !strings.Contains(page, "2030-07-01 07:00 UTC") {
		t.Errorf("a UTC viewer's campaigns page lacks the UTC time:\n%s", mainOf(page))
	}
	status, body, _ := w.send(t, w.tokenOf(campaign.RoleMarketer), "GET", "/api/v1/campaigns/"+itoa(c.ID), "")
	if status != 200 || !strings.Contains(body, `"send_at":"2030-07-01T07:00:00Z"`) {
		t.Errorf("API times must stay UTC: %d %s", status, body)
	}
}

// TestStaleVersionInTheUpdateIs412: when the row changes between the
// If-Match check and the update, the update itself refuses (412 ESTALE)
// and keeps the other change.
func TestStaleVersionInTheUpdateIs412(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWalkAPI(t, db)
		ctx := t.Context()
		seg := &campaign.Segment{Name: "before", Rule: &campaign.Rule{Field: "email", Op: campaign.OpContains, Value: "@"}}
		if err := db.CreateSegment(ctx, seg); err != nil {
			t.Fatal(err)
		}
		tpl := &campaign.Template{Name: "t", Subject: "Hi", HTML: "<p>Hi</p>"}
		if err := db.CreateTemplate(ctx, tpl); err != nil {
			t.Fatal(err)
		}
		c := &campaign.Campaign{Name: "before", TemplateID: tpl.ID, SegmentIDs: []int64{seg.ID}, FromEmail: "news@example.com"}
		if err := db.CreateCampaign(ctx, c); err != nil {
			t.Fatal(err)
		}
		seen := map[string]time.Time{"segments": seg.UpdatedAt, "campaigns": c.UpdatedAt}
		// Someone else saves after the If-Match check passed.
		other := "theirs"
		if _, err := db.UpdateSegment(ctx, seg.ID, campaign.SegmentPatch{Name: &other}); err != nil {
			t.Fatal(err)
		}
		c.Name = other
		if err := db.UpdateCampaign(ctx, c); err != nil {
			t.Fatal(err)
		}
		for kind, h := range map[string]http.HandlerFunc{"segments": w.api.updateSegment, "campaigns": w.api.updateCampaign} {
			id := map[string]int64{"segments": seg.ID, "campaigns": c.ID}[kind]
			req := httptest.NewRequest("PATCH", "/api/v1/"+kind+"/"+itoa(id), strings.NewReader(`{"name":"mine"}`))
			req.SetPathValue("id", itoa(id))
			req = req.WithContext(context.WithValue(req.Context(), versionKey{}, seen[kind]))
			rec := httptest.NewRecorder()
			h(rec, req)
			if rec.Code != http.StatusPreconditionFailed || errorOf(t, rec.Body.String()).Code != campaign.ESTALE {
				t.Errorf("%s: %d %s, want 412 stale", kind, rec.Code, rec.Body)
			}
		}
		if s, _ := db.FindSegment(ctx, seg.ID); s.Name != other {
			t.Errorf("segment name %q, want the other change kept", s.Name)
		}
		if got, _ := db.FindCampaign(ctx, c.ID); got.Name != other {
			t.Errorf("campaign name %q, want the other change kept", got.Name)
		}
	})
}

// TestListPagesHaveNextPageLinks: lists past one page link to the next
// with the keyset cursor, and the API lists answer next_cursor.
func TestListPagesHaveNextPageLinks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWalkAPI(t, db)
		ctx := t.Context()
		var lastTpl, lastSeg, lastCamp string
		for i := range 51 {
			tpl := &campaign.Template{Name: fmt.Sprintf("tpl-%02d", i), Subject: "Hi", HTML: "<p>Hi</p>"}
			if err := db.CreateTemplate(ctx, tpl); err != nil {
				t.Fatal(err)
			}
			seg := &campaign.Segment{Name: fmt.Sprintf("seg-%02d", i), Rule: &campaign.Rule{Field: "email", Op: campaign.OpContains, Value: "@"}}
			if err := db.CreateSegment(ctx, seg); err != nil {
				t.Fatal(err)
			}
			c := &campaign.Campaign{Name: fmt.Sprintf("camp-%02d", i), TemplateID: tpl.ID, SegmentIDs: []int64{seg.ID}, FromEmail: "news@example.com"}
			if err := db.CreateCampaign(ctx, c); err != nil {
				t.Fatal(err)
			}
			lastTpl, lastSeg, lastCamp = tpl.Name, seg.Name, c.Name
		}
		session := w.sessionOf(t, campaign.RoleMarketer)
		next := regexp.MustCompile(`href="(/[a-z]+\?after=\d+)"`)
		for page, last := range map[string]string{"/templates": lastTpl, "/segments": lastSeg, "/campaigns": lastCamp} {
			status, body, _ := w.send(t, session, "GET", page, "")
			m := next.FindStringSubmatch(body)
			if status != 200 || m == nil || strings.Contains(body, ">"+last+"<") {
				t.Errorf("%s: %d, next link %v, want 50 rows and a next page link", page, status, m)
				continue
			}
			status, body, _ = w.send(t, session, "GET", m[1], "")
			if status != 200 || !strings.Contains(body, ">"+last+"<") || next.MatchString(body) {
				t.Errorf("%s: %d, want the 51st row and no further link:\n%s", m[1], status, mainOf(body))
			}
		}
		if status, _, _ := w.send(t, session, "GET", "/segments?after=nope", ""); status != 422 {
			t.Errorf("bad ?after: %d, want 422", status)
		}

		token := w.tokenOf(campaign.RoleAdmin)
		for _, path := range []string{"/api/v1/segments?limit=50", "/api/v1/users?limit=2"} {
			var page struct {
				NextCursor string `json:"next_cursor"`
			}
			status, body, _ := w.send(t, token, "GET", path, "")
			if status != 200 || json.Unmarshal([]byte(body), &page) != nil || page.NextCursor == "" {
				t.Errorf("%s: %d, no next_cursor", path, status)
				continue
			}
			status, body, _ = w.send(t, token, "GET", path+"&cursor="+page.NextCursor, "")
			if status != 200 || strings.Contains(body, "next_cursor") {
				t.Errorf("%s second page: %d %s, want the last page", path, status, body)
			}
		}
		if status, body, _ := w.send(t, token, "GET", "/api/v1/users?cursor=x", ""); status != 400 {
			t.Errorf("bad cursor: %d %s, want 400", status, body)
		}
	})
}

// TestLeadsBoardPagesAndDashboardCountsEveryLead: 501 new leads this
// week: the dashboard says 501, the board's new column shows 50 with a
// link to the rest.
func TestLeadsBoardPagesAndDashboardCountsEveryLead(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWalkAPI(t, db)
		ctx := t.Context()
		now := time.Now().UTC().Truncate(time.Microsecond)
		tx, err := db.BeginTxx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 501 {
			email := fmt.Sprintf("lead%03d@example.com", i)
			if _, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO contacts (email, created_at, updated_at) VALUES (?, ?, ?)`), email, now, now); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO leads (contact_id, score_at_creation, created_at, updated_at)
				VALUES ((SELECT id FROM contacts WHERE email = ?), 50, ?, ?)`), email, now, now); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		session := w.sessionOf(t, campaign.RoleSales)
		_, page, _ := w.send(t, session, "GET", "/", "")
		if !regexp.MustCompile(`<span class="n">501</span></a><span>leads this week`).MatchString(page) {
			t.Errorf("dashboard does not count 501 leads this week:\n%s", mainOf(page))
		}
		seen := map[string]bool{}
		leadRe := regexp.MustCompile(`<strong>(lead\d+@example.com)</strong>`)
		moreRe := regexp.MustCompile(`href="(/leads\?status=new&amp;cursor=[^"]+)"`)
		path := "/leads"
		for pages := 0; path != ""; pages++ {
			if pages > 20 {
				t.Fatal("the board's pages never end")
			}
			status, page, _ := w.send(t, session, "GET", strings.ReplaceAll(path, "&amp;", "&"), "")
			if status != 200 {
				t.Fatalf("GET %s: %d", path, status)
			}
			found := leadRe.FindAllStringSubmatch(page, -1)
			if len(found) > 50 {
				t.Fatalf("%s shows %d leads, want at most 50", path, len(found))
			}
			for _, m := range found {
				if seen[m[1]] {
					t.Fatalf("%s repeats %s", path, m[1])
				}
				seen[m[1]] = true
			}
			path = ""
			if m := moreRe.FindStringSubmatch(page); m != nil {
				path = m[1]
			}
		}
		if len(seen) != 501 {
			t.Errorf("following the board's links shows %d leads, want 501", len(seen))
		}
		if status, _, _ := w.send(t, session, "GET", "/leads?cursor=1:2", ""); status != 422 {
			t.Errorf("cursor without a status: %d, want 422", status)
		}
	})
}

// TestUsersPageHasControls: the admin's users page lists disabled users
// with Enable, and others with Disable, role and reset link controls.
func TestUsersPageHasControls(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	w := newWalkAPI(t, db)
	if _, err := db.UpdateUser(t.Context(), w.users[campaign.RoleSales].ID, campaign.UserPatch{Disabled: ptrTo(true)}); err != nil {
		t.Fatal(err)
	}
	status, page, _ := w.send(t, w.sessionOf(t, campaign.RoleAdmin), "GET", "/users", "")
	for _, want := range []string{"Enable sales@example.com", "Disable marketer@example.com", "Create a password reset link for marketer@example.com",
		`id="role-` + itoa(w.users[campaign.RoleMarketer].ID) + `"`} {
		if !strings.Contains(page, want) {
			t.Errorf("users page (%d) lacks %q", status, want)
		}
	}
	status, page, _ = w.send(t, w.sessionOf(t, campaign.RoleMarketer), "GET", "/account", "")
	if status != 200 || !strings.Contains(page, `name="time_zone" value="UTC"`) || !strings.Contains(page, `name="current_password"`) {
		t.Errorf("account page: %d\n%s", status, mainOf(page))
	}
}
