package admin_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

// patchIfMatch sends PATCH path with body and If-Match as the admin.
func (ta *testAPI) patchIfMatch(path, body, tag string) (int, string) {
	req, err := http.NewRequest("PATCH", ta.srv.URL+path, strings.NewReader(body))
	if err != nil {
		ta.t.Error(err)
		return 0, ""
	}
	req.Header.Set("Authorization", "Bearer "+ta.tokens[campaign.RoleAdmin])
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("If-Match", tag)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ta.t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (ta *testAPI) etagOf(path string) string {
	ta.t.Helper()
	req, _ := http.NewRequest("GET", ta.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+ta.tokens[campaign.RoleAdmin])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ta.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("ETag") == "" {
		ta.t.Fatalf("GET %s: %d, ETag %q", path, resp.StatusCode, resp.Header.Get("ETag"))
	}
	return resp.Header.Get("ETag")
}

// TestConcurrentPatchesWithOneIfMatchOneWins: two PATCHes sent together
// with the same If-Match: one is 200, the other 412 ESTALE, for
// templates, segments and campaigns, on both dialects.
func TestConcurrentPatchesWithOneIfMatchOneWins(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ta, _, _ := newTemplateAPI(t, db)
		refs := newCampaignRefs(t, db)
		c := &campaign.Campaign{Name: "Launch", TemplateID: refs.template, SegmentIDs: []int64{refs.segment}, FromEmail: "news@example.com"}
		if err := db.CreateCampaign(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/api/v1/templates/" + itoa(refs.template), "/api/v1/segments/" + itoa(refs.segment), "/api/v1/campaigns/" + itoa(c.ID)} {
			for round := range 3 {
				tag := ta.etagOf(path)
				statuses := make([]int, 2)
				bodies := make([]string, 2)
				start := make(chan struct{})
				var wg sync.WaitGroup
				for i := range 2 {
					wg.Go(func() {
						<-start
						statuses[i], bodies[i] = ta.patchIfMatch(path, `{"name":"editor `+itoa(int64(i))+`"}`, tag)
					})
				}
				close(start)
				wg.Wait()
				loser := slices.Index(statuses, http.StatusPreconditionFailed)
				if got := slices.Sorted(slices.Values(statuses)); !slices.Equal(got, []int{200, 412}) || !strings.Contains(bodies[loser], `"code":"stale"`) {
					t.Fatalf("%s round %d: statuses %v (%q), want one 200 and one 412 stale", path, round, statuses, bodies)
				}
			}
		}
	})
}
