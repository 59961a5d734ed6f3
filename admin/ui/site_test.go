package ui_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/funnel-email/funnel/admin"
	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
)

// site is the admin service on a real database with a user per role,
// each named after it (admin@example.com, ...).
type site struct {
	db    *store.DB
	srv   *httptest.Server
	users map[campaign.Role]*campaign.User
}

// newSite starts the admin service on db; zones gives a role's user a
// time zone (UTC otherwise).
func newSite(t *testing.T, db *store.DB, zones map[campaign.Role]string) *site {
	t.Helper()
	return newSiteWith(t, db, zones, admin.Config{})
}

// newSiteWith is newSite over cfg (its DB, Logger and UploadDir are set
// here).
func newSiteWith(t *testing.T, db *store.DB, zones map[campaign.Role]string, cfg admin.Config) *site {
	t.Helper()
	cfg.DB, cfg.Logger, cfg.UploadDir = db, slog.New(slog.NewTextHandler(io.Discard, nil)), t.TempDir()
	api := admin.New(cfg)
	s := &site{db: db, srv: httptest.NewServer(api), users: map[campaign.Role]*campaign.User{}}
	t.Cleanup(func() { s.srv.Close(); api.Close() })
	for _, r := range []campaign.Role{campaign.RoleAdmin, campaign.RoleMarketer, campaign.RoleSales} {
		u := &campaign.User{Email: string(r) + "@example.com", Role: r, TimeZone: zones[r]}
		if err := db.CreateUser(t.Context(), u, "correct horse battery"); err != nil {
			t.Fatal(err)
		}
		s.users[r] = u
	}
	return s
}

// get GETs path with a session of role ("" for none) and returns the
// status, the Location header and the body.
func (s *site) get(t *testing.T, role campaign.Role, path string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.srv.URL+path, nil)
	if role != "" {
		_, secret, err := s.db.CreateSession(t.Context(), s.users[role].ID, time.Hour, "127.0.0.1", "test")
		if err != nil {
			t.Fatal(err)
		}
		req.AddCookie(&http.Cookie{Name: "funnel_session", Value: secret})
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// page GETs a page that must answer 200.
func (s *site) page(t *testing.T, role campaign.Role, path string) string {
	t.Helper()
	status, _, body := s.get(t, role, path)
	if status != 200 {
		t.Fatalf("GET %s as %s: %d\n%s", path, role, status, body)
	}
	return body
}
