package admin

import (
	"context"
	"net/http"
	"strings"

	"github.com/funnel-email/funnel/campaign"
)

type principalKey struct{}

// principalFrom returns the caller authenticated by requireRole.
func principalFrom(ctx context.Context) *campaign.Principal {
	p, _ := ctx.Value(principalKey{}).(*campaign.Principal)
	return p
}

// requireRole wraps h so that it runs only for a caller with a valid bearer
// token holding one of roles (admin holds every role). No roles means
// admin only.
func (a *API) requireRole(h http.HandlerFunc, roles ...campaign.Role) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || secret == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="funnel"`)
			a.writeError(w, r, campaign.Errorf(campaign.EUNAUTH, "an API token is required: send Authorization: Bearer <token>"))
			return
		}
		p, err := a.db.AuthenticateAPIToken(r.Context(), strings.TrimSpace(secret))
		if err != nil {
			if campaign.ErrorCode(err) == campaign.EUNAUTH {
				w.Header().Set("WWW-Authenticate", `Bearer realm="funnel", error="invalid_token"`)
			}
			a.writeError(w, r, err)
			return
		}
		if !p.Can(roles...) {
			a.writeError(w, r, campaign.Errorf(campaign.EFORBIDDEN, "the %s role may not do this", p.Role))
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}
