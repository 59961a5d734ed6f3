package admin

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"testing"

	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

var csrfFieldRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// browser is an HTTP client with cookies that does not follow redirects.
func browser(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// postLogin loads the login form (for its CSRF token) and submits it.
func postLogin(t *testing.T, c *http.Client, base, email, password string) *http.Response {
	t.Helper()
	resp, err := c.Get(base + "/login?next=/campaigns")
	if err != nil {
		t.Fatal(err)
	}
	form := readBody(resp)
	m := csrfFieldRe.FindStringSubmatch(form)
	if m == nil {
		t.Fatalf("login form has no CSRF field:\n%s", form)
	}
	resp, err = c.PostForm(base+"/login", url.Values{"email": {email}, "password": {password}, "csrf": {m[1]}, "next": {"/campaigns"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// readBody reads and closes an answer's body.
func readBody(resp *http.Response) string {
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestLoginSetsSafeCookieAndLogoutEndsIt: a good login redirects to the
// page asked for with an HttpOnly, SameSite=Lax cookie; after logout the
// cookie no longer works even if replayed.
func TestLoginSetsSafeCookieAndLogoutEndsIt(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWalkAPI(t, db)
		c := browser(t)
		resp := postLogin(t, c, w.srv.URL, "Marketer@Example.com", "correct horse battery")
		if resp.StatusCode != 303 || resp.Header.Get("Location") != "/campaigns" {
			t.Fatalf("login: %d to %q, want 303 to /campaigns", resp.StatusCode, resp.Header.Get("Location"))
		}
		var session *http.Cookie
		for _, ck := range resp.Cookies() {
			if ck.Name == sessionCookie && ck.Value != "" {
				session = ck
			}
		}
		if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Secure {
			t.Fatalf("session cookie = %+v, want HttpOnly, SameSite=Lax, not Secure over http", session)
		}
		resp, _ = c.Get(w.srv.URL + "/campaigns")
		page := readBody(resp)
		if resp.StatusCode != 200 {
			t.Fatalf("GET /campaigns signed in: %d", resp.StatusCode)
		}
		m := csrfFieldRe.FindStringSubmatch(page)
		resp, _ = c.PostForm(w.srv.URL+"/logout", url.Values{"csrf": {m[1]}})
		resp.Body.Close()
		if resp.StatusCode != 303 {
			t.Fatalf("logout: %d", resp.StatusCode)
		}
		req, _ := http.NewRequest("GET", w.srv.URL+"/api/v1/me", nil)
		req.AddCookie(session)
		resp, _ = http.DefaultClient.Do(req)
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("replayed cookie after logout: %d, want 401", resp.StatusCode)
		}
	})
}

// TestLoginLimitRefusesAfterFiveFailures: the sixth attempt within the
// window is 429 even with the right password.
func TestLoginLimitRefusesAfterFiveFailures(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWalkAPI(t, db)
		c := browser(t)
		for i := 0; i < maxFailuresByEmail; i++ {
			if resp := postLogin(t, c, w.srv.URL, "sales@example.com", "wrong password!"); resp.StatusCode != 401 {
				t.Fatalf("failed login %d: %d, want 401", i+1, resp.StatusCode)
			}
		}
		resp := postLogin(t, c, w.srv.URL, "sales@example.com", "correct horse battery")
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("login after %d failures: %d, want 429 with Retry-After", maxFailuresByEmail, resp.StatusCode)
		}
		if resp := postLogin(t, c, w.srv.URL, "marketer@example.com", "correct horse battery"); resp.StatusCode != 303 {
			t.Errorf("another user's login: %d, want 303 (the limit is per email)", resp.StatusCode)
		}
	})
}

// TestLoginWithoutFormTokenIsRefused: a login posted from another site
// (no login CSRF cookie) starts no session.
func TestLoginWithoutFormTokenIsRefused(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	w := newWalkAPI(t, db)
	resp, err := browser(t).PostForm(w.srv.URL+"/login", url.Values{"email": {"marketer@example.com"}, "password": {"correct horse battery"}, "csrf": {"forged"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("login without the form's cookie: %d, want 400", resp.StatusCode)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie && ck.Value != "" {
			t.Error("a session cookie was set")
		}
	}
}

// TestLoginNextStaysOnSite: ?next= never redirects off the site.
func TestLoginNextStaysOnSite(t *testing.T) {
	for _, next := range []string{"https://evil.example", "//evil.example", "/\\evil.example", "javascript:alert(1)"} {
		if got := localPath(next); got != "/" {
			t.Errorf("localPath(%q) = %q, want /", next, got)
		}
	}
	if got := localPath("/campaigns/3?x=1"); got != "/campaigns/3?x=1" {
		t.Errorf("localPath kept %q", got)
	}
}
