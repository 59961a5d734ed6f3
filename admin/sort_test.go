package admin

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

// walkList pages through GET path in sort ("" for none), two items a
// page, following next_cursor, and returns the idField of each item of
// the answer's list field in the order listed, and the cursors it was
// given.
func walkList(t *testing.T, w *walkAPI, path, sort, list, idField string) (ids []int64, cursors []string) {
	t.Helper()
	ids = []int64{}
	cursor := ""
	for range 100 {
		q := url.Values{"limit": {"2"}}
		if sort != "" {
			q.Set("sort", sort)
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		status, body, _ := w.send(t, w.tokenOf(campaign.RoleAdmin), "GET", path+sep+q.Encode(), "")
		if status != 200 {
			t.Fatalf("GET %s sorted by %q, cursor %q: %d %s", path, sort, cursor, status, body)
		}
		var page map[string]json.RawMessage
		var items []map[string]any
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(page[list], &items); err != nil {
			t.Fatalf("GET %s: no %s list: %s", path, list, body)
		}
		for _, it := range items {
			ids = append(ids, int64(it[idField].(float64)))
		}
		if _, ok := page["next_cursor"]; !ok {
			return ids, cursors
		}
		if err := json.Unmarshal(page["next_cursor"], &cursor); err != nil {
			t.Fatal(err)
		}
		cursors = append(cursors, cursor)
	}
	t.Fatalf("GET %s sorted by %q: the walk did not end", path, sort)
	return nil, nil
}

// sortRow is a listed item as a sort sees it: its ID and its keys.
type sortRow struct {
	ID   int64
	Keys map[string]any // a string or a float64 per key other than "id"
}

// sortedIDs orders rows as sort ("key" or "-key") should: by the key,
// ties by ascending ID (descending when tiesDesc), and a descending sort
// as the exact reverse.
func sortedIDs(rows []sortRow, sort string, tiesDesc bool) []int64 {
	s := campaign.ParseSort(sort)
	rows = slices.Clone(rows)
	slices.SortFunc(rows, func(a, b sortRow) int {
		byID := cmp.Compare(a.ID, b.ID)
		if tiesDesc {
			byID = -byID
		}
		switch av := a.Keys[s.Key].(type) {
		case string:
			return cmp.Or(cmp.Compare(av, b.Keys[s.Key].(string)), byID)
		case float64:
			return cmp.Or(cmp.Compare(av, b.Keys[s.Key].(float64)), byID)
		}
		return cmp.Compare(a.ID, b.ID)
	})
	if s.Desc {
		slices.Reverse(rows)
	}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	return ids
}

// TestListRoutesPageThroughEverySort: contacts (filtered too), segment
// contacts, campaigns, templates, users and leads, walked page by page in
// each sort they document, list every item once and in the sort's order;
// without a sort they list in the default order with the cursors they
// always gave (an ID; "score:id" for leads), and with one the cursors are
// opaque.
func TestListRoutesPageThroughEverySort(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		w := newWalkAPI(t, db)
		var contacts, vips []sortRow
		for i := range 9 {
			c := &campaign.Contact{Email: fmt.Sprintf("k%d@x.io", i*4%9)}
			if i%2 == 0 {
				c.Tags = []string{"vip"}
			}
			if err := db.CreateContact(ctx, c); err != nil {
				t.Fatal(err)
			}
			r := sortRow{ID: c.ID, Keys: map[string]any{"email": c.Email}}
			if contacts = append(contacts, r); i%2 == 0 {
				vips = append(vips, r)
			}
		}
		seg := &campaign.Segment{Name: "vips", Rule: &campaign.Rule{Field: "tags", Op: campaign.OpHas, Value: "vip"}}
		if err := db.CreateSegment(ctx, seg); err != nil {
			t.Fatal(err)
		}
		var templates []sortRow
		for i := range 5 {
			tpl := &campaign.Template{Name: fmt.Sprintf("t%d", i*2%5), Subject: "Hi", HTML: "<p>Hi</p>"}
			if err := db.CreateTemplate(ctx, tpl); err != nil {
				t.Fatal(err)
			}
			templates = append(templates, sortRow{ID: tpl.ID, Keys: map[string]any{"name": tpl.Name}})
		}
		var campaigns []sortRow
		for i := range 7 {
			c := &campaign.Campaign{Name: []string{"spring", "autumn", "launch"}[i%3], TemplateID: templates[0].ID, SegmentIDs: []int64{seg.ID}, FromEmail: "news@x.io"}
			if err := db.CreateCampaign(ctx, c); err != nil {
				t.Fatal(err)
			}
			campaigns = append(campaigns, sortRow{ID: c.ID, Keys: map[string]any{"name": c.Name}})
		}
		var users []sortRow
		for _, u := range w.users {
			users = append(users, sortRow{ID: u.ID, Keys: map[string]any{"email": u.Email}})
		}
		for i := range 4 {
			u := &campaign.User{Email: fmt.Sprintf("u%d@x.io", i*3%4), Role: campaign.RoleSales}
			if err := db.CreateUser(ctx, u, "correct horse battery"); err != nil {
				t.Fatal(err)
			}
			users = append(users, sortRow{ID: u.ID, Keys: map[string]any{"email": u.Email}})
		}
		var leads []sortRow
		now := time.Now().UTC().Truncate(time.Microsecond)
		for i, c := range contacts[:7] {
			score := float64(10*(i%3)) + 0.25
			var id int64
			if err := db.QueryRowContext(ctx, db.Rebind(`INSERT INTO leads (contact_id, score_at_creation, score, created_at, updated_at)
				VALUES (?, 50, ?, ?, ?) RETURNING id`), c.ID, score, now, now).Scan(&id); err != nil {
				t.Fatal(err)
			}
			leads = append(leads, sortRow{ID: id, Keys: map[string]any{"score": score}})
		}

		for _, tt := range []struct {
			path, list, idField string
			rows                []sortRow
			keys                []string
		}{
			{path: "/api/v1/contacts", list: "contacts", idField: "id", rows: contacts, keys: store.ContactSorts.Names()},
			{path: "/api/v1/contacts?tag=vip", list: "contacts", idField: "id", rows: vips, keys: store.ContactSorts.Names()},
			{path: fmt.Sprintf("/api/v1/segments/%d/contacts", seg.ID), list: "contacts", idField: "id", rows: vips, keys: store.ContactSorts.Names()},
			{path: "/api/v1/templates", list: "templates", idField: "id", rows: templates, keys: store.TemplateSorts.Names()},
			{path: "/api/v1/campaigns", list: "campaigns", idField: "id", rows: campaigns, keys: store.CampaignSorts.Names()},
			{path: "/api/v1/users", list: "users", idField: "id", rows: users, keys: store.UserSorts.Names()},
			{path: "/api/v1/leads", list: "leads", idField: "id", rows: leads, keys: store.LeadSorts.Names()},
		} {
			def := "id"
			if tt.list == "leads" {
				def = "-score"
			}
			for _, sort := range append([]string{""}, tt.keys...) {
				want := sortedIDs(tt.rows, cmp.Or(sort, def), tt.list == "leads" && strings.HasSuffix(cmp.Or(sort, def), "score"))
				got, cursors := walkList(t, w, tt.path, sort, tt.list, tt.idField)
				if diff := gocmp.Diff(want, got); diff != "" {
					t.Errorf("%s sorted by %q: IDs listed (-want +got):\n%s", tt.path, sort, diff)
				}
				for _, c := range cursors {
					_, opaque := decodeCursor(c)
					if cmp.Or(sort, def) == def && opaque || cmp.Or(sort, def) != def && !opaque {
						t.Errorf("%s sorted by %q gave the cursor %q", tt.path, sort, c)
					}
				}
			}
		}
	})
}

// TestSortMistakesAreExplained: an unknown sort is 422 naming the field
// and the sorts the list has; a cursor used with another sort than the
// one it came from is 422 saying which; a cursor that is no cursor is
// 400. None of them is a 500.
func TestSortMistakesAreExplained(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWalkAPI(t, db)
		emailCursor := url.QueryEscape(encodeCursor(listCursor{Sort: "email", ID: 3, Value: "k@x.io"}))
		idCursor := url.QueryEscape(encodeCursor(listCursor{Sort: "id", ID: 3}))
		forged := base64.RawURLEncoding.EncodeToString([]byte(`{"sort":"email","id":3,"value":4.5}`))
		// Without its value a cursor would start the list again, for ever.
		valueless := base64.RawURLEncoding.EncodeToString([]byte(`{"sort":"email","id":3,"value":null}`))
		for _, tt := range []struct {
			path         string
			status       int
			code, field  string
			messageHolds string
		}{
			{"/api/v1/contacts?sort=created_at", 422, campaign.EINVALID, "sort", `must be one of id, -id, email, -email, not "created_at"`},
			{"/api/v1/contacts?sort=-", 422, campaign.EINVALID, "sort", "id, -id, email, -email"},
			{"/api/v1/segments/1/contacts?sort=name", 422, campaign.EINVALID, "sort", "id, -id, email, -email"},
			{"/api/v1/campaigns?sort=-send_at", 422, campaign.EINVALID, "sort", "id, -id, name, -name"},
			{"/api/v1/leads?sort=email", 422, campaign.EINVALID, "sort", "score, -score, id, -id"},
			{"/api/v1/leads.csv?sort=email", 422, campaign.EINVALID, "sort", "score, -score, id, -id"},
			{"/api/v1/engaged?sort=score", 422, campaign.EINVALID, "sort", "id, -id"},
			{"/api/v1/tokens?sort=name", 422, campaign.EINVALID, "sort", "id, -id"},
			{"/api/v1/webhooks?sort=url", 422, campaign.EINVALID, "sort", "id, -id"},
			{"/api/v1/contacts?sort=-email&cursor=" + emailCursor, 422, campaign.EINVALID, "cursor", "was made for sort=email, not sort=-email"},
			{"/api/v1/contacts?cursor=" + emailCursor, 422, campaign.EINVALID, "cursor", "was made for sort=email, not sort=id"},
			{"/api/v1/contacts?sort=-id&cursor=5", 422, campaign.EINVALID, "cursor", "was made for sort=id, not sort=-id"},
			{"/api/v1/templates?sort=name&cursor=" + idCursor, 422, campaign.EINVALID, "cursor", "was made for sort=id, not sort=name"},
			{"/api/v1/contacts?sort=email&cursor=" + forged, 422, campaign.EINVALID, "cursor", "sort email"},
			{"/api/v1/contacts?sort=email&cursor=" + valueless, 422, campaign.EINVALID, "cursor", "sort email"},
			{"/api/v1/contacts?sort=email&cursor=not-a-cursor", 400, campaign.EMALFORMED, "cursor", "is not a next_cursor this API gave"},
			{"/api/v1/leads?sort=id&cursor=10:3", 422, campaign.EINVALID, "cursor", "was made for sort=-score, not sort=id"},
			{"/api/v1/leads?cursor=abc", 422, campaign.EINVALID, "cursor", "is not a next_cursor this API gave"},
			{"/api/v1/leads?cursor=" + idCursor, 422, campaign.EINVALID, "cursor", "was made for sort=id, not sort=-score"},
		} {
			status, body, _ := w.send(t, w.tokenOf(campaign.RoleAdmin), "GET", tt.path, "")
			var e errorBody
			_ = json.Unmarshal([]byte(body), &e)
			if status != tt.status || e.Error.Code != tt.code || len(e.Error.Details) != 1 || e.Error.Details[0].Field != tt.field ||
				!strings.Contains(e.Error.Details[0].Message, tt.messageHolds) {
				t.Errorf("GET %s: %d %s\nwant %d %s on %s saying %q", tt.path, status, body, tt.status, tt.code, tt.field, tt.messageHolds)
			}
		}
	})
}

// TestWholeListsComeInEitherOrder: tokens (newest first unless sort=id)
// and webhooks (oldest first unless sort=-id) are short lists that come
// whole, in either order.
func TestWholeListsComeInEitherOrder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		w := newWalkAPI(t, db)
		admin := w.users[campaign.RoleAdmin]
		var tokens, hooks []int64
		for i := range 3 {
			tok, _, err := db.CreateUserToken(ctx, admin.ID, fmt.Sprintf("t%d", i))
			if err != nil {
				t.Fatal(err)
			}
			tokens = append(tokens, tok.ID)
			wh := &campaign.Webhook{URL: fmt.Sprintf("https://hooks.example.com/%d", i), Events: []string{"lead.created"}, Active: true}
			if err := db.CreateWebhook(ctx, wh, false); err != nil {
				t.Fatal(err)
			}
			hooks = append(hooks, wh.ID)
		}
		ids := func(path, list string) []int64 {
			t.Helper()
			var out []int64
			for _, it := range listOf(t, w, path, list) {
				if id := int64(it["id"].(float64)); slices.Contains(tokens, id) || list == "webhooks" {
					out = append(out, id)
				}
			}
			return out
		}
		reversed := func(ids []int64) []int64 { r := slices.Clone(ids); slices.Reverse(r); return r }
		for _, tt := range []struct {
			path, list string
			want       []int64
		}{
			{"/api/v1/tokens", "tokens", reversed(tokens)},
			{"/api/v1/tokens?sort=-id", "tokens", reversed(tokens)},
			{"/api/v1/tokens?sort=id", "tokens", tokens},
			{"/api/v1/webhooks", "webhooks", hooks},
			{"/api/v1/webhooks?sort=id", "webhooks", hooks},
			{"/api/v1/webhooks?sort=-id", "webhooks", reversed(hooks)},
		} {
			if diff := gocmp.Diff(tt.want, ids(tt.path, tt.list)); diff != "" {
				t.Errorf("GET %s (-want +got):\n%s", tt.path, diff)
			}
		}
	})
}

// listOf returns the items of the list field of GET path as an admin.
func listOf(t *testing.T, w *walkAPI, path, list string) []map[string]any {
	t.Helper()
	status, body, _ := w.send(t, w.tokenOf(campaign.RoleAdmin), "GET", path, "")
	var page map[string][]map[string]any
	if err := json.Unmarshal([]byte(body), &page); status != 200 || err != nil {
		t.Fatalf("GET %s: %d %s", path, status, body)
	}
	return page[list]
}

// TestDocumentedSortsAreTheRoutesSorts: each API route whose OpenAPI entry
// documents a sort parameter lists it with its keys as an enum, answers
// 200 for each of them and 422 for another; so the document, the route
// and the store agree.
func TestDocumentedSortsAreTheRoutesSorts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		w := newWalkAPI(t, db)
		seg := &campaign.Segment{Name: "all", Rule: &campaign.Rule{Field: "email", Op: campaign.OpContains, Value: "@"}}
		if err := db.CreateSegment(ctx, seg); err != nil {
			t.Fatal(err)
		}
		tpl := &campaign.Template{Name: "t", Subject: "Hi", HTML: "<p>Hi</p>"}
		if err := db.CreateTemplate(ctx, tpl); err != nil {
			t.Fatal(err)
		}
		c := &campaign.Campaign{Name: "c", TemplateID: tpl.ID, SegmentIDs: []int64{seg.ID}, FromEmail: "news@x.io"}
		if err := db.CreateCampaign(ctx, c); err != nil {
			t.Fatal(err)
		}
		ids := map[string]int64{"/api/v1/segments/{id}/contacts": seg.ID, "/api/v1/campaigns/{id}/deliveries": c.ID}
		var doc struct {
			Paths map[string]map[string]struct {
				Parameters []struct {
					Name   string `json:"name"`
					Schema struct {
						Enum []string `json:"enum"`
					} `json:"schema"`
				} `json:"parameters"`
			} `json:"paths"`
		}
		if err := json.Unmarshal(mustJSON(t, w.api.openAPIDocument()), &doc); err != nil {
			t.Fatal(err)
		}
		sorted := 0
		for _, rt := range w.api.table {
			d := apiDocs[rt.key()]
			if !rt.api() || d.Sort.Keys == nil {
				continue
			}
			sorted++
			var enum []string
			for _, p := range doc.Paths[rt.Pattern][strings.ToLower(rt.Method)].Parameters {
				if p.Name == "sort" {
					enum = p.Schema.Enum
				}
			}
			if diff := gocmp.Diff(d.Sort.Keys, enum); diff != "" {
				t.Errorf("%s: the document's sort enum (-keys +enum):\n%s", rt.key(), diff)
			}
			path := rt.Pattern
			if strings.Contains(path, "{id}") {
				id, ok := ids[path]
				if !ok {
					t.Fatalf("%s: give the test an ID for it", rt.key())
				}
				path = strings.Replace(path, "{id}", fmt.Sprint(id), 1)
			}
			for _, key := range d.Sort.Keys {
				if status, body, _ := w.send(t, w.tokenOf(campaign.RoleAdmin), rt.Method, path+"?sort="+url.QueryEscape(key), ""); status != 200 {
					t.Errorf("%s?sort=%s: %d %s, want 200", rt.key(), key, status, body)
				}
			}
			if status, body, _ := w.send(t, w.tokenOf(campaign.RoleAdmin), rt.Method, path+"?sort=nosuchkey", ""); status != 422 || !strings.Contains(body, `"sort"`) {
				t.Errorf("%s?sort=nosuchkey: %d %s, want 422 naming sort", rt.key(), status, body)
			}
		}
		if sorted < 12 {
			t.Errorf("only %d routes document a sort", sorted)
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
