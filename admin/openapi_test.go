package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

// TestOpenAPIDescribesEveryRoute fails when a registered API route has no
// entry in apiDocs (openapi_routes.go) or an entry names no registered
// route: the document and the mux cannot drift apart.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	w := newWalkAPI(t, db)
	registered := map[string]bool{}
	for _, rt := range w.api.table {
		if !rt.api() {
			continue
		}
		registered[rt.key()] = true
		d, ok := apiDocs[rt.key()]
		if !ok {
			t.Errorf("route %s is not in the OpenAPI document: add it to apiDocs in admin/openapi_routes.go", rt.key())
			continue
		}
		if strings.TrimSpace(d.Summary) == "" {
			t.Errorf("apiDocs[%q] has no summary", rt.key())
		}
	}
	var stale []string
	for k := range apiDocs {
		if !registered[k] {
			stale = append(stale, k)
		}
	}
	sort.Strings(stale)
	for _, k := range stale {
		t.Errorf("apiDocs describes %s, which is not a registered route", k)
	}
}

// TestOpenAPIDocumentIsServed checks the served document: OpenAPI 3.1,
// every API route under paths with responses, and schemas resolvable.
func TestOpenAPIDocumentIsServed(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	w := newWalkAPI(t, db)
	resp, err := http.Get(w.srv.URL + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET openapi.json: %d %s", resp.StatusCode, raw)
	}
	var doc struct {
		OpenAPI    string                                `json:"openapi"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	for _, rt := range w.api.table {
		if !rt.api() {
			continue
		}
		p := pathParamRe.ReplaceAllString(rt.Pattern, "{$1}")
		op, ok := doc.Paths[p][strings.ToLower(rt.Method)]
		if !ok {
			t.Errorf("document has no %s %s", rt.Method, p)
			continue
		}
		if !strings.Contains(string(op), `"responses"`) {
			t.Errorf("%s %s has no responses", rt.Method, p)
		}
	}
	for _, ref := range refRe.FindAllStringSubmatch(string(raw), -1) {
		if _, ok := doc.Components.Schemas[ref[1]]; !ok {
			t.Errorf("$ref to missing schema %q", ref[1])
		}
	}
	for _, want := range []string{"Error", "Template", "Campaign", "Contact"} {
		if _, ok := doc.Components.Schemas[want]; !ok {
			t.Errorf("no schema %s", want)
		}
	}
}

var refRe = regexpMust(`"#/components/schemas/([A-Za-z0-9_]+)"`)
