package admin

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
)

// API tokens of users. A user lists, creates and revokes their own
// tokens; an admin lists and revokes everyone's (bootstrap tokens too).
// A token acts as its user, with the user's role.

// tokenList is the answer of GET /api/v1/tokens.
type tokenList struct {
	Tokens []store.UserToken `json:"tokens"`
}

// tokenInput is the body of POST /api/v1/tokens.
type tokenInput struct {
	// Name says what the token is for ("CRM sync").
	Name string `json:"name"`
}

// tokenCreated is the answer of POST /api/v1/tokens: the only time the
// secret is shown.
type tokenCreated struct {
	store.UserToken
	Secret string `json:"secret"`
}

// tokenScope is the user whose tokens the caller manages: 0 (all) for an
// admin.
func tokenScope(p *campaign.Principal) int64 {
	if p.Role == campaign.RoleAdmin {
		return 0
	}
	return p.UserID
}

// listTokens answers GET /api/v1/tokens?sort=: the whole list, newest
// first (-id) or oldest first (id).
func (a *API) listTokens(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	sort, err := sortQuery(r.URL.Query(), store.TokenSorts)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if p.Role != campaign.RoleAdmin && p.UserID == 0 {
		writeJSON(w, http.StatusOK, tokenList{Tokens: []store.UserToken{}})
		return
	}
	ts, err := a.db.ListUserTokens(r.Context(), tokenScope(p))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if sort != store.TokenSorts.Default {
		slices.Reverse(ts)
	}
	writeJSON(w, http.StatusOK, tokenList{Tokens: ts})
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	var in tokenInput
	if err := a.decodeJSON(w, r, &in); err != nil {
		a.writeError(w, r, err)
		return
	}
	if p.UserID == 0 {
		a.writeError(w, r, campaign.Errorf(campaign.EFORBIDDEN, "a bootstrap token belongs to no user and cannot make tokens: create a user (funnel user create) and sign in"))
		return
	}
	t, secret, err := a.db.CreateUserToken(r.Context(), p.UserID, in.Name)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/tokens/"+strconv.FormatInt(t.ID, 10))
	writeJSON(w, http.StatusCreated, tokenCreated{UserToken: *t, Secret: secret})
}

func (a *API) revokeToken(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	id, err := pathID(r)
	if err == nil && p.Role != campaign.RoleAdmin && p.UserID == 0 {
		err = campaign.Errorf(campaign.ENOTFOUND, "API token %d not found", id)
	}
	if err == nil {
		err = a.db.RevokeUserToken(r.Context(), id, tokenScope(p))
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
