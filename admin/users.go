package admin

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strconv"

	"github.com/funnel-email/funnel/campaign"
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

// userList is the answer of GET /api/v1/users.
type userList struct {
	Users []*campaign.User `json:"users"`
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request) {
	role := campaign.Role(r.URL.Query().Get("role"))
	if role != "" && !role.Valid() {
		a.writeError(w, r, campaign.Invalid("invalid query", campaign.FieldError{Field: "role", Message: "must be admin, marketer or sales"}))
		return
	}
	us, err := a.db.ListUsers(r.Context(), role)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, userList{Users: us})
}

// userInput is the body of POST /api/v1/users.
type userInput struct {
	Email    string        `json:"email"`
	Name     string        `json:"name"`
	Role     campaign.Role `json:"role"`
	Password string        `json:"password"`
}

func (a *API) createUser(w http.ResponseWriter, r *http.Request) {
	var in userInput
	if err := a.decodeJSON(w, r, &in); err != nil {
		a.writeError(w, r, err)
		return
	}
	u := &campaign.User{Email: in.Email, Name: in.Name, Role: in.Role}
	if err := a.db.CreateUser(r.Context(), u, in.Password); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/users/"+strconv.FormatInt(u.ID, 10))
	writeJSON(w, http.StatusCreated, u)
}
