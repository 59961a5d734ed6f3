package admin

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

func regexpMust(s string) *regexp.Regexp { return regexp.MustCompile(s) }

func (w *walkAPI) do(t *testing.T, method, path, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, w.srv.URL+path, r)
	req.Header.Set("Authorization", "Bearer "+w.tokens[campaign.RoleMarketer])
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestStaleIfMatchIsRefused: of two editors holding the same ETag, the
// second to save gets 412 and the first one's change stays.
func TestStaleIfMatchIsRefused(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWalkAPI(t, db)
		s := &campaign.Segment{Name: "first"}
		rule, err := campaign.ParseRule(`tag "a"`)
		if err != nil {
			t.Fatal(err)
		}
		s.Rule = rule
		if err := db.CreateSegment(t.Context(), s); err != nil {
			t.Fatal(err)
		}
		path := "/api/v1/segments/" + itoa(s.ID)
		resp, _ := w.do(t, "GET", path, "", nil)
		tag := resp.Header.Get("ETag")
		if tag == "" {
			t.Fatal("GET answered no ETag")
		}
		if resp, _ := w.do(t, "GET", path, "", map[string]string{"If-None-Match": tag}); resp.StatusCode != 304 {
			t.Errorf("GET with matching If-None-Match: %d, want 304", resp.StatusCode)
		}
		resp, body := w.do(t, "PATCH", path, `{"name":"alice"}`, map[string]string{"If-Match": tag})
		if resp.StatusCode != 200 || resp.Header.Get("ETag") == tag || resp.Header.Get("ETag") == "" {
			t.Fatalf("first PATCH: %d ETag %q: %s", resp.StatusCode, resp.Header.Get("ETag"), body)
		}
		resp, body = w.do(t, "PATCH", path, `{"name":"bob"}`, map[string]string{"If-Match": tag})
		if resp.StatusCode != 412 || !strings.Contains(body, `"code":"stale"`) {
			t.Fatalf("stale PATCH: %d %s, want 412 stale", resp.StatusCode, body)
		}
		got, err := db.FindSegment(t.Context(), s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "alice" {
			t.Errorf("name = %q after a refused stale PATCH, want alice", got.Name)
		}
		if resp, body := w.do(t, "PATCH", path, `{"name":"carol"}`, nil); resp.StatusCode != 200 {
			t.Errorf("PATCH without If-Match: %d %s, want 200 (last write wins)", resp.StatusCode, body)
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
