package admin_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/funnel-email/funnel/admin"
	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

// A campaign's answer carries its progress, which changes without a new
// version: a matching If-None-Match still gets the whole current answer,
// or a live progress view would freeze on its first poll.
func TestCampaignGETIsNeverNotModified(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ta := newTestAPI(t, db, admin.Config{})
		refs := newCampaignRefs(t, db)
		c := &campaign.Campaign{Name: "live", TemplateID: refs.template, SegmentIDs: []int64{refs.segment}, FromEmail: "news@acme.example"}
		if err := db.CreateCampaign(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		get := func(ifNoneMatch string) (*http.Response, string) {
			req, _ := http.NewRequest("GET", ta.srv.URL+"/api/v1/campaigns/"+itoa(c.ID), nil)
			req.Header.Set("Authorization", "Bearer "+ta.tokens[campaign.RoleMarketer])
			if ifNoneMatch != "" {
				req.Header.Set("If-None-Match", ifNoneMatch)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp, string(b)
		}
		resp, _ := get("")
		tag := resp.Header.Get("ETag")
		if tag == "" || resp.Header.Get("Cache-Control") != "no-cache" {
			t.Fatalf("GET: ETag %q, Cache-Control %q; want an ETag and no-cache", tag, resp.Header.Get("Cache-Control"))
		}
		resp, body := get(tag)
		if resp.StatusCode != 200 || !strings.Contains(body, `"progress"`) {
			t.Errorf("GET with matching If-None-Match: %d %s, want 200 with the progress", resp.StatusCode, body)
		}
	})
}
