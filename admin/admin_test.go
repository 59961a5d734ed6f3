package admin_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/funnel-email/funnel/admin"
	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

// testAPI is an admin API over a real database with one token per role.
type testAPI struct {
	t      *testing.T
	db     *store.DB
	srv    *httptest.Server
	tokens map[campaign.Role]string
}

func newTestAPI(t *testing.T, db *store.DB, cfg admin.Config) *testAPI {
	t.Helper()
	cfg.DB = db
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.UploadDir = t.TempDir()
	api := admin.New(cfg)
	srv := httptest.NewServer(api)
	t.Cleanup(func() { srv.Close(); api.Close() })
	ta := &testAPI{t: t, db: db, srv: srv, tokens: map[campaign.Role]string{}}
	for _, r := range []campaign.Role{campaign.RoleAdmin, campaign.RoleMarketer, campaign.RoleSales} {
		_, secret, err := db.CreateAPIToken(t.Context(), string(r)+" test", r)
		if err != nil {
			t.Fatal(err)
		}
		ta.tokens[r] = secret
	}
	return ta
}

// response is a decoded API answer.
type response struct {
	Status int
	Body   []byte
}

func (r response) errorBody(t *testing.T) (code, message string, details []campaign.FieldError) {
	t.Helper()
	var e struct {
		Error struct {
			Code    string                `json:"code"`
			Message string                `json:"message"`
			Details []campaign.FieldError `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &e); err != nil || e.Error.Code == "" {
		t.Fatalf("not an error body (%v): %s", err, r.Body)
	}
	return e.Error.Code, e.Error.Message, e.Error.Details
}

func (ta *testAPI) do(role campaign.Role, method, path, contentType string, body io.Reader) response {
	ta.t.Helper()
	req, err := http.NewRequest(method, ta.srv.URL+path, body)
	if err != nil {
		ta.t.Fatal(err)
	}
	if role != "" {
		req.Header.Set("Authorization", "Bearer "+ta.tokens[role])
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ta.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Body: b}
}

func (ta *testAPI) json(role campaign.Role, method, path, body string) response {
	ta.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	return ta.do(role, method, path, "application/json", r)
}

func TestContactRoutesCheckRoles(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ta := newTestAPI(t, db, admin.Config{})
		c := &campaign.Contact{Email: "seen@example.com"}
		if err := db.CreateContact(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		id := "/api/v1/contacts/" + itoa(c.ID)
		tests := []struct {
			role   campaign.Role
			method string
			path   string
			body   string
			want   int
		}{
			{"", "GET", "/api/v1/contacts", "", 401},
			{"", "POST", "/api/v1/contacts", `{"email":"x@example.com"}`, 401},
			{campaign.RoleSales, "GET", "/api/v1/contacts", "", 200},
			{campaign.RoleSales, "GET", id, "", 200},
			{campaign.RoleSales, "POST", "/api/v1/contacts", `{"email":"x@example.com"}`, 403},
			{campaign.RoleSales, "PATCH", id, `{"first_name":"X"}`, 403},
			{campaign.RoleSales, "DELETE", id, "", 403},
			{campaign.RoleSales, "POST", "/api/v1/imports", "", 403},
			{campaign.RoleMarketer, "POST", "/api/v1/contacts", `{"email":"m@example.com"}`, 201},
			{campaign.RoleAdmin, "POST", "/api/v1/contacts", `{"email":"a@example.com"}`, 201},
			{campaign.RoleMarketer, "PATCH", id, `{"first_name":"Y"}`, 200},
			{campaign.RoleMarketer, "DELETE", id, "", 204},
			{campaign.RoleMarketer, "GET", id, "", 404},
		}
		for _, tt := range tests {
			if got := ta.json(tt.role, tt.method, tt.path, tt.body); got.Status != tt.want {
				t.Errorf("%s %s as %q = %d, want %d: %s", tt.method, tt.path, tt.role, got.Status, tt.want, got.Body)
			}
		}
		req, _ := http.NewRequest("GET", ta.srv.URL+"/api/v1/contacts", nil)
		req.Header.Set("Authorization", "Bearer fnl_forged")
		if resp, _ := http.DefaultClient.Do(req); resp.StatusCode != 401 {
			t.Errorf("forged token = %d, want 401", resp.StatusCode)
		}
	})
}

func TestContactBadInputIsA4xxAndChangesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ta := newTestAPI(t, db, admin.Config{MaxBodyBytes: 4096})
		orig := &campaign.Contact{Email: "keep@example.com", FirstName: "Keep"}
		if err := db.CreateContact(t.Context(), orig); err != nil {
			t.Fatal(err)
		}
		id := "/api/v1/contacts/" + itoa(orig.ID)
		tests := []struct {
			name, method, path, body string
			status                   int
			code, field              string
		}{
			{"unknown field", "POST", "/api/v1/contacts", `{"email":"n@example.com","emial":"x"}`, 422, campaign.EINVALID, "emial"},
			{"malformed email", "POST", "/api/v1/contacts", `{"email":"not an email"}`, 422, campaign.EINVALID, "email"},
			{"wrong type", "POST", "/api/v1/contacts", `{"email":"n@example.com","tags":"vip"}`, 422, campaign.EINVALID, "tags"},
			{"nested attribute", "POST", "/api/v1/contacts", `{"email":"n@example.com","attributes":{"a":{"b":1}}}`, 422, campaign.EINVALID, "attributes.a"},
			{"bad status", "POST", "/api/v1/contacts", `{"email":"n@example.com","status":"gone"}`, 422, campaign.EINVALID, "status"},
			{"not JSON", "POST", "/api/v1/contacts", `{"email":`, 400, campaign.EMALFORMED, ""},
			{"empty body", "POST", "/api/v1/contacts", ``, 400, campaign.EMALFORMED, ""},
			{"trailing data", "POST", "/api/v1/contacts", `{"email":"n@example.com"} {}`, 400, campaign.EMALFORMED, ""},
			// PostgreSQL cannot store U+0000 in text: refused in every
			// field, on both databases, before anything is written.
			{"NUL in a name", "POST", "/api/v1/contacts", `{"email":"n@example.com","first_name":"a\u0000b"}`, 400, campaign.EMALFORMED, ""},
			{"NUL in a tag", "PATCH", id, `{"tags":["a\u0000"]}`, 400, campaign.EMALFORMED, ""},
			{"NUL in an attribute", "PATCH", id, `{"attributes":{"k":"\u0000"}}`, 400, campaign.EMALFORMED, ""},
			{"NUL in a filter", "GET", "/api/v1/contacts?email_prefix=a%00b", ``, 400, campaign.EMALFORMED, ""},
			{"NUL in a segment name", "POST", "/api/v1/segments", `{"name":"x\u0000","rule":{"field":"email","op":"contains","value":"@"}}`, 400, campaign.EMALFORMED, ""},
			{"duplicate email", "POST", "/api/v1/contacts", `{"email":"KEEP@example.com"}`, 409, campaign.ECONFLICT, ""},
			{"oversized body", "POST", "/api/v1/contacts", `{"email":"n@example.com","first_name":"` + strings.Repeat("x", 5000) + `"}`, 413, campaign.ETOOLARGE, ""},
			{"patch invalid email", "PATCH", id, `{"email":"@@"}`, 422, campaign.EINVALID, "email"},
			{"patch unknown field", "PATCH", id, `{"nickname":"x"}`, 422, campaign.EINVALID, "nickname"},
			{"bad id", "GET", "/api/v1/contacts/abc", ``, 404, campaign.ENOTFOUND, ""},
			{"bad cursor", "GET", "/api/v1/contacts?cursor=-1", ``, 400, campaign.EMALFORMED, "cursor"},
			{"bad limit", "GET", "/api/v1/contacts?limit=100000", ``, 422, campaign.EINVALID, "limit"},
			{"bad status filter", "GET", "/api/v1/contacts?status=x", ``, 422, campaign.EINVALID, "status"},
			{"unknown route", "GET", "/api/v1/nothing", ``, 404, campaign.ENOTFOUND, ""},
		}
		for _, tt := range tests {
			got := ta.json(campaign.RoleMarketer, tt.method, tt.path, tt.body)
			if got.Status != tt.status {
				t.Errorf("%s: status %d, want %d: %s", tt.name, got.Status, tt.status, got.Body)
				continue
			}
			code, msg, details := got.errorBody(t)
			if code != tt.code || msg == "" {
				t.Errorf("%s: code %q message %q, want code %q and a message", tt.name, code, msg, tt.code)
			}
			if tt.field != "" && (len(details) == 0 || details[0].Field != tt.field) {
				t.Errorf("%s: details %+v, want field %q", tt.name, details, tt.field)
			}
		}
		// An escaped backslash before "u0000" is text, not a NUL.
		got := ta.json(campaign.RoleMarketer, "POST", "/api/v1/contacts", `{"email":"n@example.com","first_name":"x\\u0000"}`)
		if got.Status != 201 || !strings.Contains(string(got.Body), `"first_name":"x\\u0000"`) {
			t.Errorf("a valid contact after the bad ones = %d: %s", got.Status, got.Body)
		}
		after, err := db.FindContact(t.Context(), orig.ID)
		if err != nil || after.Email != "keep@example.com" || after.FirstName != "Keep" {
			t.Errorf("bad input changed a stored contact: %+v %v", after, err)
		}
		if n, _ := db.CountContacts(t.Context()); n != 2 {
			t.Errorf("contacts = %d, want 2", n)
		}
	})
}

func TestListContactsPages(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ta := newTestAPI(t, db, admin.Config{})
		for i := range 5 {
			if err := db.CreateContact(t.Context(), &campaign.Contact{Email: "p" + itoa(int64(i)) + "@example.com"}); err != nil {
				t.Fatal(err)
			}
		}
		var seen []string
		cursor := ""
		for range 4 {
			var page struct {
				Contacts []campaign.Contact `json:"contacts"`
				Next     string             `json:"next_cursor"`
			}
			r := ta.json(campaign.RoleSales, "GET", "/api/v1/contacts?limit=2&cursor="+cursor, "")
			if err := json.Unmarshal(r.Body, &page); err != nil {
				t.Fatal(err)
			}
			for _, c := range page.Contacts {
				seen = append(seen, c.Email)
			}
			if cursor = page.Next; cursor == "" {
				break
			}
		}
		want := "p0@example.com p1@example.com p2@example.com p3@example.com p4@example.com"
		if strings.Join(seen, " ") != want {
			t.Errorf("pages gave %v", seen)
		}
	})
}

func TestImportBadInput(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ta := newTestAPI(t, db, admin.Config{MaxUploadBytes: 1024})
		multipartBody := func(field, content string) (string, *bytes.Buffer) {
			var buf bytes.Buffer
			mw := multipart.NewWriter(&buf)
			fw, _ := mw.CreateFormFile(field, "x.csv")
			fw.Write([]byte(content))
			mw.Close()
			return mw.FormDataContentType(), &buf
		}
		mpType, mpNoFile := multipartBody("attachment", "email\na@example.com\n")
		tests := []struct {
			name, contentType string
			body              io.Reader
			status            int
			wantInMessage     string
		}{
			{"no email column", "text/csv", strings.NewReader("name,company\nAna,Acme\n"), 422, "email"},
			{"empty file", "text/csv", strings.NewReader(""), 422, "empty"},
			{"binary garbage", "application/octet-stream", bytes.NewReader([]byte{0, 1, 2, 0xff, 0xfe, 0, 0, 7}), 422, ""},
			{"JSON instead of CSV", "application/json", strings.NewReader(`{"email":"a@example.com"}`), 400, "Content-Type"},
			{"multipart without file part", mpType, mpNoFile, 400, "file"},
			{"too large", "text/csv", strings.NewReader("email\n" + strings.Repeat("a@example.com\n", 200)), 413, "larger"},
			{"bad option", "text/csv", strings.NewReader("email\na@example.com\n"), 422, ""},
		}
		for _, tt := range tests {
			path := "/api/v1/imports"
			if tt.name == "bad option" {
				path += "?update_existing=maybe"
			}
			got := ta.do(campaign.RoleMarketer, "POST", path, tt.contentType, tt.body)
			if got.Status != tt.status {
				t.Errorf("%s: status %d, want %d: %s", tt.name, got.Status, tt.status, got.Body)
				continue
			}
			_, msg, details := got.errorBody(t)
			all := msg
			for _, d := range details {
				all += " " + d.Field + " " + d.Message
			}
			if !strings.Contains(strings.ToLower(all), strings.ToLower(tt.wantInMessage)) {
				t.Errorf("%s: message %q does not mention %q", tt.name, all, tt.wantInMessage)
			}
		}
		if n, _ := db.CountContacts(t.Context()); n != 0 {
			t.Errorf("refused imports stored %d contacts", n)
		}
		if got := ta.do(campaign.RoleMarketer, "GET", "/api/v1/imports/999", "", nil); got.Status != 404 {
			t.Errorf("unknown import = %d, want 404", got.Status)
		}
	})
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// A NUL character in a form is refused before any handler reads it, on
// the login form as on any other.
func TestFormWithANULIsRefused(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ta := newTestAPI(t, db, admin.Config{})
		resp, err := http.PostForm(ta.srv.URL+"/login", url.Values{"email": {"a\x00@example.com"}, "password": {"x"}})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(body), "NUL") {
			t.Errorf("login form with a NUL: %d %s, want 400 naming the NUL", resp.StatusCode, body)
		}
	})
}
