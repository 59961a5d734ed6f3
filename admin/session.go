package admin

import (
	"crypto/subtle"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/funnel-email/funnel/admin/ui"
	"github.com/funnel-email/funnel/campaign"
)

// Cookies of the web UI.
const (
	sessionCookie = "funnel_session"
	// loginCookie carries the double-submit CSRF token of the login form,
	// which is shown before any session exists.
	loginCookie = "funnel_login"
)

// The login limit: more failures than these within loginWindow refuse
// further attempts (429) until the window moves on. The per-address limit
// is higher because an office shares one address.
const (
	loginWindow        = 15 * time.Minute
	maxFailuresByEmail = 5
	maxFailuresByIP    = 30
)

// clientIP is the peer address of the request. Funnel does not trust
// X-Forwarded-For: behind a proxy, the per-address limit counts the proxy.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// cookie returns a cookie of the UI with the service's security flags.
func (a *API) cookie(r *http.Request, name, value string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: a.secure || r.TLS != nil}
	switch {
	case maxAge > 0:
		c.MaxAge = int(maxAge.Seconds())
	case maxAge < 0:
		c.MaxAge = -1
	}
	return c
}

// localPath returns next when it is a path on this site, else "/": the
// login page must not redirect to another site.
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

// loginPage shows the sign-in form, with a fresh login CSRF cookie.
func (a *API) loginPage(w http.ResponseWriter, r *http.Request) {
	form := ui.LoginForm{Next: localPath(r.URL.Query().Get("next"))}
	a.renderLogin(w, r, http.StatusOK, form)
}

func (a *API) renderLogin(w http.ResponseWriter, r *http.Request, status int, form ui.LoginForm) {
	token, err := randomToken()
	if err != nil {
		a.pageError(w, r, http.StatusInternalServerError, "could not start a sign-in")
		return
	}
	http.SetCookie(w, a.cookie(r, loginCookie, token, time.Hour))
	form.CSRF = token
	a.pages.Login(w, r, status, form)
}

// login checks the form and, for a right email and password, starts a
// session and redirects to the page the user came for. Failures are
// counted per email and per address; past the limit it answers 429
// without checking the password.
func (a *API) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	form := ui.LoginForm{Email: strings.TrimSpace(r.PostFormValue("email")), Next: localPath(r.PostFormValue("next"))}
	password := r.PostFormValue("password")
	c, err := r.Cookie(loginCookie)
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		form.Error = "The sign-in form expired. Please try again."
		a.renderLogin(w, r, http.StatusBadRequest, form)
		return
	}
	if form.Email == "" {
		form.EmailError = "Enter your email address."
	}
	if password == "" {
		form.PasswordError = "Enter your password."
	}
	if form.EmailError != "" || form.PasswordError != "" {
		a.renderLogin(w, r, http.StatusUnprocessableEntity, form)
		return
	}
	ip := clientIP(r)
	byEmail, byIP, err := a.db.LoginFailures(r.Context(), form.Email, ip, time.Now().Add(-loginWindow))
	if err != nil {
		a.pageError(w, r, http.StatusInternalServerError, "could not check the sign-in limit")
		a.log.ErrorContext(r.Context(), "login", "err", err)
		return
	}
	if byEmail >= maxFailuresByEmail || byIP >= maxFailuresByIP {
		w.Header().Set("Retry-After", "900")
		form.Error = "Too many failed sign-ins. Wait 15 minutes and try again."
		a.renderLogin(w, r, http.StatusTooManyRequests, form)
		return
	}
	u, err := a.db.AuthenticateUser(r.Context(), form.Email, password)
	if campaign.ErrorCode(err) == campaign.EUNAUTH {
		if err := a.db.RecordLoginFailure(r.Context(), form.Email, ip); err != nil {
			a.log.ErrorContext(r.Context(), "record login failure", "err", err)
		}
		form.PasswordError = "Wrong email or password."
		a.renderLogin(w, r, http.StatusUnauthorized, form)
		return
	}
	if err == nil {
		err = a.startSession(w, r, u)
	}
	if err != nil {
		a.log.ErrorContext(r.Context(), "login", "err", err)
		a.pageError(w, r, http.StatusInternalServerError, "could not sign in")
		return
	}
	http.Redirect(w, r, form.Next, http.StatusSeeOther)
}

// startSession creates a session for u and sets its cookie.
func (a *API) startSession(w http.ResponseWriter, r *http.Request, u *campaign.User) error {
	if err := a.db.ClearLoginFailures(r.Context(), u.Email); err != nil {
		return err
	}
	// Sweep ended sessions and old failures here: logins are rare enough
	// for one indexed DELETE each, and no background job is needed.
	if _, err := a.db.DeleteExpiredSessions(r.Context(), 24*time.Hour); err != nil {
		return err
	}
	_, secret, err := a.db.CreateSession(r.Context(), u.ID, a.ttl, clientIP(r), r.UserAgent())
	if err != nil {
		return err
	}
	http.SetCookie(w, a.cookie(r, sessionCookie, secret, a.ttl))
	http.SetCookie(w, a.cookie(r, loginCookie, "", -1))
	return nil
}

// logout ends the session (its CSRF token was checked by requireRole).
func (a *API) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := a.db.DeleteSession(r.Context(), c.Value); err != nil {
			a.log.ErrorContext(r.Context(), "logout", "err", err)
		}
	}
	http.SetCookie(w, a.cookie(r, sessionCookie, "", -1))
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// pageError answers a UI request with an error page.
func (a *API) pageError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if status == 0 {
		status = http.StatusInternalServerError
	}
	a.pages.Error(w, r, status, msg)
}

// page wraps a UI handler so that it can see the signed-in viewer.
func (a *API) page(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, s := principalFrom(r.Context()), sessionFrom(r.Context())
		v := &ui.Viewer{UserID: p.UserID, Email: p.Name, Role: p.Role}
		if s != nil {
			v.CSRF = s.CSRF
		}
		if u := sessionUser(r.Context()); u != nil {
			v.Name, v.TimeZone = u.Name, u.TimeZone
		}
		h(w, r.WithContext(ui.WithViewer(r.Context(), v)))
	}
}
