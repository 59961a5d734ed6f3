package admin

import (
	"context"
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
)

type principalKey struct{}
type sessionKey struct{}
type userKey struct{}

// principalFrom returns the caller authenticated by requireRole.
func principalFrom(ctx context.Context) *campaign.Principal {
	p, _ := ctx.Value(principalKey{}).(*campaign.Principal)
	return p
}

// sessionFrom returns the browser session of the request, or nil when it
// came with a bearer token.
func sessionFrom(ctx context.Context) *store.Session {
	s, _ := ctx.Value(sessionKey{}).(*store.Session)
	return s
}

// sessionUser returns the user of the request's browser session, as it
// was when the request came; nil when it came with a bearer token.
func sessionUser(ctx context.Context) *campaign.User {
	u, _ := ctx.Value(userKey{}).(*campaign.User)
	return u
}

// unsafeMethod reports whether a request may change state and so needs a
// CSRF token when it is authenticated by a cookie.
func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// authenticate finds the caller: a bearer token (API routes only) or the
// session cookie. A cookie-authenticated request that may change state
// must echo the session's CSRF token in the X-CSRF-Token header or the
// "csrf" form field, or it is EFORBIDDEN. A disabled user's token or
// session is EUNAUTH: the store checks the user on every request.
func (a *API) authenticate(r *http.Request, api bool) (*campaign.Principal, *store.Session, *campaign.User, error) {
	if h := r.Header.Get("Authorization"); h != "" && api {
		secret, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || strings.TrimSpace(secret) == "" {
			return nil, nil, nil, campaign.Errorf(campaign.EUNAUTH, "Authorization must be Bearer <token>")
		}
		p, err := a.db.AuthenticateAPIToken(r.Context(), strings.TrimSpace(secret))
		return p, nil, nil, err
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		if api {
			return nil, nil, nil, campaign.Errorf(campaign.EUNAUTH, "an API token is required: send Authorization: Bearer <token>")
		}
		return nil, nil, nil, campaign.Errorf(campaign.EUNAUTH, "sign in first")
	}
	s, u, err := a.db.FindSession(r.Context(), c.Value)
	if err != nil {
		return nil, nil, nil, err
	}
	if unsafeMethod(r.Method) {
		got := r.Header.Get("X-CSRF-Token")
		if got == "" && !api {
			got = r.PostFormValue("csrf")
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) != 1 {
			return nil, nil, nil, campaign.Errorf(campaign.EFORBIDDEN, "missing or wrong CSRF token: reload the page and try again")
		}
	}
	return &campaign.Principal{UserID: u.ID, Name: u.Email, Role: u.Role}, s, u, nil
}

// requireRole wraps h so that it runs only for a caller holding one of
// roles (admin holds every role; no roles means admin only). API routes
// (under /api/) accept a bearer token or a session and answer 401 and 403
// in the API's error shape; UI routes accept only a session, send a
// caller without one to the login page and answer 403 with a page.
func (a *API) requireRole(h http.HandlerFunc, roles ...campaign.Role) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api := strings.HasPrefix(r.URL.Path, "/api/")
		p, s, u, err := a.authenticate(r, api)
		if err != nil {
			a.denied(w, r, api, err)
			return
		}
		ctx := context.WithValue(r.Context(), principalKey{}, p)
		if s != nil {
			ctx = context.WithValue(ctx, sessionKey{}, s)
			ctx = context.WithValue(ctx, userKey{}, u)
		}
		r = r.WithContext(ctx)
		if !p.Can(roles...) {
			// The 403 page still shows the signed-in user's navigation.
			a.page(func(w http.ResponseWriter, r *http.Request) {
				a.denied(w, r, api, campaign.Errorf(campaign.EFORBIDDEN, "the %s role may not do this", p.Role))
			})(w, r)
			return
		}
		h(w, r)
	})
}

// denied answers a request that failed authentication or authorization.
func (a *API) denied(w http.ResponseWriter, r *http.Request, api bool, err error) {
	code := campaign.ErrorCode(err)
	switch {
	case api:
		if code == campaign.EUNAUTH {
			w.Header().Set("WWW-Authenticate", `Bearer realm="funnel"`)
		}
		a.writeError(w, r, err)
	case code == campaign.EUNAUTH && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
	default:
		a.pageError(w, r, statusOf[code], campaign.ErrorMessage(err))
	}
}
