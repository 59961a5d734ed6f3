package admin

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strconv"
	"time"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
)

// randomToken returns 32 random bytes in URL-safe base64.
func randomToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// meOutput is the answer of GET /api/v1/me.
type meOutput struct {
	// User is the signed-in user; absent for a bootstrap token, which
	// belongs to nobody.
	User *campaign.User `json:"user,omitempty"`
	Role campaign.Role  `json:"role"`
	// TokenID is the API token the request came with; 0 for a session.
	TokenID int64 `json:"token_id"`
}

func (a *API) getMe(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	out := meOutput{Role: p.Role, TokenID: p.TokenID}
	if p.UserID != 0 {
		u, err := a.db.FindUser(r.Context(), p.UserID)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		out.User = u
	}
	writeJSON(w, http.StatusOK, out)
}

// userList is the answer of GET /api/v1/users. NextCursor is empty on the
// last page.
type userList struct {
	Users      []*campaign.User `json:"users"`
	NextCursor string           `json:"next_cursor,omitempty"`
}

// listUsers answers GET /api/v1/users?role=&sort=&cursor=&limit=: users,
// enabled and disabled (see disabled_at), in ID order or by email.
func (a *API) listUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.UserFilter{Role: campaign.Role(q.Get("role"))}
	var err error
	if f.Role != "" && !f.Role.Valid() {
		err = campaign.Invalid("invalid query", campaign.FieldError{Field: "role", Message: "must be admin, marketer or sales"})
	}
	if err == nil {
		var p store.Page
		p, err = sortedPage(q, store.UserSorts)
		f.Sort, f.After, f.AfterValue, f.Limit = p.Sort, p.After, p.AfterValue, p.Limit
	}
	var us []*campaign.User
	if err == nil {
		us, err = a.db.ListAllUsers(r.Context(), f)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	page := userList{Users: us}
	if len(us) == f.Limit {
		page.NextCursor = nextCursor(store.UserSorts, f.Sort, us[len(us)-1])
	}
	writeJSON(w, http.StatusOK, page)
}

// userInput is the body of POST /api/v1/users.
type userInput struct {
	Email    string        `json:"email"`
	Name     string        `json:"name"`
	Role     campaign.Role `json:"role"`
	Password string        `json:"password"`
	// TimeZone is an IANA name; UTC when absent.
	TimeZone string `json:"time_zone,omitempty"`
}

func (a *API) createUser(w http.ResponseWriter, r *http.Request) {
	var in userInput
	if err := a.decodeJSON(w, r, &in); err != nil {
		a.writeError(w, r, err)
		return
	}
	u := &campaign.User{Email: in.Email, Name: in.Name, Role: in.Role, TimeZone: in.TimeZone}
	if err := a.db.CreateUser(r.Context(), u, in.Password); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/users/"+strconv.FormatInt(u.ID, 10))
	writeJSON(w, http.StatusCreated, u)
}

// userPatch is the body of PATCH /api/v1/users/{id}; absent fields are
// kept.
type userPatch struct {
	Name *string        `json:"name"`
	Role *campaign.Role `json:"role"`
	// Disabled true disables the user at once: their sessions end and
	// their API tokens stop working. False enables them again.
	Disabled *bool `json:"disabled"`
}

// updateUser answers PATCH /api/v1/users/{id}. A change that would leave
// no enabled admin is 409 with the reason.
func (a *API) updateUser(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	var in userPatch
	if err == nil {
		err = a.decodeJSON(w, r, &in)
	}
	var u *campaign.User
	if err == nil {
		u, err = a.db.UpdateUser(r.Context(), id, campaign.UserPatch{Name: in.Name, Role: in.Role, Disabled: in.Disabled})
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}

// resetLinkTTL is how long a password reset link works.
const resetLinkTTL = 24 * time.Hour

// resetLink is the answer of POST /api/v1/users/{id}/reset-link: the
// only time the link is shown.
type resetLink struct {
	store.PasswordReset
	// URL is the page where the user sets a new password; it works once.
	URL string `json:"url"`
}

// createResetLink answers POST /api/v1/users/{id}/reset-link. It voids the
// user's earlier unused links; a disabled user is 409.
func (a *API) createResetLink(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err == nil && r.ContentLength != 0 {
		var empty struct{}
		err = a.decodeJSON(w, r, &empty)
	}
	var (
		reset  *store.PasswordReset
		secret string
	)
	if err == nil {
		reset, secret, err = a.db.CreatePasswordReset(r.Context(), id, principalFrom(r.Context()).UserID, resetLinkTTL)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, resetLink{PasswordReset: *reset, URL: a.siteURL(r) + "/reset/" + secret})
}

// siteURL is the scheme and host that the request reached, for links
// shown to the caller (not mailed, so a forged Host header only misleads
// the one who forged it).
func (a *API) siteURL(r *http.Request) string {
	scheme := "http"
	if a.secure || r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
