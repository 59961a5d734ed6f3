package admin

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

// asToken calls the API with a bearer token and decodes the answer.
func (w *walkAPI) asToken(t *testing.T, token, method, path, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, w.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// TestTokensAreTheirOwnersAndRevocable: a token is shown once, acts as
// its user, is listed to its owner and admins only, and stops working
// when revoked; nobody but its owner or an admin can revoke it.
func TestTokensAreTheirOwnersAndRevocable(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWalkAPI(t, db)
		var created tokenCreated
		if st := w.asToken(t, w.tokens[campaign.RoleSales], "POST", "/api/v1/tokens", `{"name":"crm"}`, &created); st != 201 {
			t.Fatalf("create: %d", st)
		}
		if !strings.HasPrefix(created.Secret, "fnl_") || created.Role != campaign.RoleSales || !strings.HasPrefix(created.Secret, created.Prefix) {
			t.Fatalf("created = %+v", created)
		}
		var me meOutput
		w.asToken(t, created.Secret, "GET", "/api/v1/me", "", &me)
		if me.User == nil || me.User.Email != "sales@example.com" || me.Role != campaign.RoleSales {
			t.Errorf("the new token acts as %+v, want the sales user", me)
		}
		var list tokenList
		w.asToken(t, w.tokens[campaign.RoleMarketer], "GET", "/api/v1/tokens", "", &list)
		for _, tk := range list.Tokens {
			if tk.UserID != w.users[campaign.RoleMarketer].ID {
				t.Errorf("marketer sees another user's token %+v", tk)
			}
		}
		path := "/api/v1/tokens/" + itoa(created.ID)
		if st := w.asToken(t, w.tokens[campaign.RoleMarketer], "DELETE", path, "", nil); st != 404 {
			t.Errorf("marketer revoking sales' token: %d, want 404", st)
		}
		if st := w.asToken(t, w.tokens[campaign.RoleAdmin], "DELETE", path, "", nil); st != 204 {
			t.Errorf("admin revoking: %d, want 204", st)
		}
		if st := w.asToken(t, created.Secret, "GET", "/api/v1/me", "", nil); st != 401 {
			t.Errorf("revoked token: %d, want 401", st)
		}
	})
}
