package admin_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/funnel-email/funnel/admin"
	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

// A campaign names the pool of SMTP servers it goes through; a pool that
// none of the configured servers is in is refused at create and update,
// naming the pools there are.
func TestCampaignSMTPPoolMustBeConfigured(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		sending := admin.Sending{
			SMTP: []admin.SMTPServer{
				{Host: "bulk1.example", Port: 25, Weight: 1, Pool: "bulk"},
				{Host: "tx.example", Port: 25, Weight: 1, Pool: "transactional"},
			},
			CheckSMTP: func(context.Context, int) admin.SMTPCheck { return admin.SMTPCheck{} },
		}
		ta := newTestAPI(t, db, admin.Config{Sending: sending})
		refs := newCampaignRefs(t, db)
		pool := func(p string) func(map[string]any) { return func(in map[string]any) { in["smtp_pool"] = p } }
		for _, bad := range []string{"marketing", "a b"} {
			got := ta.json(campaign.RoleMarketer, "POST", "/api/v1/campaigns", refs.input(pool(bad)))
			if got.Status != 422 {
				t.Errorf("smtp_pool %q: %d %s, want 422", bad, got.Status, got.Body)
				continue
			}
			_, _, details := got.errorBody(t)
			if len(details) != 1 || details[0].Field != "smtp_pool" {
				t.Errorf("smtp_pool %q: details %+v, want smtp_pool", bad, details)
			}
		}
		if got := ta.json(campaign.RoleMarketer, "POST", "/api/v1/campaigns", refs.input(pool("marketing"))); !strings.Contains(string(got.Body), "bulk, transactional") {
			t.Errorf("the refusal does not name the pools: %s", got.Body)
		}
		got := ta.json(campaign.RoleMarketer, "POST", "/api/v1/campaigns", refs.input(pool("bulk")))
		var c campaign.Campaign
		if got.Status != 201 || json.Unmarshal(got.Body, &c) != nil || c.SMTPPool != "bulk" {
			t.Fatalf("create with pool bulk: %d %s", got.Status, got.Body)
		}
		path := "/api/v1/campaigns/" + itoa(c.ID)
		if got := ta.json(campaign.RoleMarketer, "PATCH", path, `{"smtp_pool":"marketing"}`); got.Status != 422 {
			t.Errorf("update to an unknown pool: %d %s, want 422", got.Status, got.Body)
		}
		if got := ta.json(campaign.RoleMarketer, "PATCH", path, `{"smtp_pool":"transactional"}`); got.Status != 200 {
			t.Errorf("update to a known pool: %d %s", got.Status, got.Body)
		}
		stored, err := db.FindCampaign(t.Context(), c.ID)
		if err != nil || stored.SMTPPool != "transactional" {
			t.Errorf("stored pool %q (%v), want transactional", stored.SMTPPool, err)
		}
		dup := ta.json(campaign.RoleMarketer, "POST", path+"/duplicate", "")
		var d campaign.Campaign
		if json.Unmarshal(dup.Body, &d) != nil || d.SMTPPool != "transactional" {
			t.Errorf("duplicate: %d %s, want the pool kept", dup.Status, dup.Body)
		}
	})
}
