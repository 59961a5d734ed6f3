package admin

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/funnel-email/funnel/admin/ui"
	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

// walkAPI is an API with every optional route on and, per role, a user
// with an API token.
type walkAPI struct {
	api    *API
	srv    *httptest.Server
	db     *store.DB
	users  map[campaign.Role]*campaign.User
	tokens map[campaign.Role]string
}

func newWalkAPI(t *testing.T, db *store.DB) *walkAPI {
	t.Helper()
	api := New(Config{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), UploadDir: t.TempDir(),
		Outbox: http.NotFoundHandler(), Caught: func() []ui.Message { return nil },
		Monitor: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "queues") })})
	srv := httptest.NewServer(api)
	t.Cleanup(func() { srv.Close(); api.Close() })
	w := &walkAPI{api: api, srv: srv, db: db, users: map[campaign.Role]*campaign.User{}, tokens: map[campaign.Role]string{}}
	for _, r := range []campaign.Role{campaign.RoleAdmin, campaign.RoleMarketer, campaign.RoleSales} {
		u := &campaign.User{Email: string(r) + "@example.com", Role: r}
		if err := db.CreateUser(t.Context(), u, "correct horse battery"); err != nil {
			t.Fatal(err)
		}
		_, secret, err := db.CreateUserToken(t.Context(), u.ID, "walk")
		if err != nil {
			t.Fatal(err)
		}
		w.users[r], w.tokens[r] = u, secret
	}
	return w
}

// session starts a fresh session for the role and returns its cookie
// value and CSRF token.
func (w *walkAPI) session(t *testing.T, r campaign.Role) (cookie, csrf string) {
	t.Helper()
	s, secret, err := w.db.CreateSession(t.Context(), w.users[r].ID, time.Hour, "127.0.0.1", "test")
	if err != nil {
		t.Fatal(err)
	}
	return secret, s.CSRF
}

// concrete fills a pattern's wildcards with values that name nothing.
func concrete(pattern string) string {
	return strings.NewReplacer("{id}", "999999", "{key}", "nosuchkey", "{file...}", "app.css", "{$}", "").Replace(pattern)
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// call makes one request with the given credentials: "token" sends the
// role's bearer token, "session" its session cookie and CSRF token.
func (w *walkAPI) call(t *testing.T, rt route, role campaign.Role, cred string) *http.Response {
	t.Helper()
	var body io.Reader
	if rt.Method != "GET" && rt.Method != "DELETE" {
		body = strings.NewReader("{}")
	}
	req, _ := http.NewRequest(rt.Method, w.srv.URL+concrete(rt.Pattern), body)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch cred {
	case "token":
		req.Header.Set("Authorization", "Bearer "+w.tokens[role])
	case "session":
		cookie, csrf := w.session(t, role)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: cookie})
		req.Header.Set("X-CSRF-Token", csrf)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestEveryRouteChecksItsRoles walks every registered route, API and UI,
// with no credentials and with every role, by token and by session, and
// checks that only the roles in the table get past authorization.
func TestEveryRouteChecksItsRoles(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWalkAPI(t, db)
		if len(w.api.table) < 50 {
			t.Fatalf("route table has only %d routes", len(w.api.table))
		}
		for _, rt := range w.api.table {
			resp := w.call(t, rt, "", "")
			switch {
			case rt.Public:
				if resp.StatusCode == 401 || resp.StatusCode == 403 {
					t.Errorf("%s (public) without credentials: %d", rt.key(), resp.StatusCode)
				}
			case rt.api() && resp.StatusCode != 401:
				t.Errorf("%s without credentials: %d, want 401", rt.key(), resp.StatusCode)
			case !rt.api() && rt.Method == "GET" && (resp.StatusCode != 303 || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=")):
				t.Errorf("%s without a session: %d to %q, want 303 to /login", rt.key(), resp.StatusCode, resp.Header.Get("Location"))
			case !rt.api() && rt.Method != "GET" && resp.StatusCode != 401:
				t.Errorf("%s without a session: %d, want 401", rt.key(), resp.StatusCode)
			}
			if rt.Public {
				continue
			}
			creds := []string{"session"}
			if rt.api() {
				creds = append(creds, "token")
			}
			for _, role := range []campaign.Role{campaign.RoleAdmin, campaign.RoleMarketer, campaign.RoleSales} {
				allowed := role == campaign.RoleAdmin || slices.Contains(rt.Roles, role)
				for _, cred := range creds {
					got := w.call(t, rt, role, cred).StatusCode
					switch {
					case allowed && (got == 401 || got == 403):
						t.Errorf("%s as %s by %s: %d, want it allowed", rt.key(), role, cred, got)
					case !allowed && got != 403:
						t.Errorf("%s as %s by %s: %d, want 403", rt.key(), role, cred, got)
					}
				}
			}
		}
	})
}

// TestSessionWritesNeedCSRF: a cookie alone cannot change anything.
func TestSessionWritesNeedCSRF(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWalkAPI(t, db)
		cookie, _ := w.session(t, campaign.RoleMarketer)
		for _, csrf := range []string{"", "wrong"} {
			req, _ := http.NewRequest("POST", w.srv.URL+"/api/v1/contacts", strings.NewReader(`{"email":"a@example.com"}`))
			req.AddCookie(&http.Cookie{Name: sessionCookie, Value: cookie})
			if csrf != "" {
				req.Header.Set("X-CSRF-Token", csrf)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 403 {
				t.Errorf("POST with session and CSRF %q: %d, want 403", csrf, resp.StatusCode)
			}
		}
		if _, err := db.FindContactByEmail(t.Context(), "a@example.com"); campaign.ErrorCode(err) != campaign.ENOTFOUND {
			t.Errorf("contact was created without a CSRF token: %v", err)
		}
	})
}
