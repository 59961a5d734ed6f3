package ui

import (
	"net/http"
	"strconv"

	"github.com/funnel-email/funnel/campaign"
)

// Page sizes of a webhook's delivery log.
const (
	defaultWebhookLog = 50
	maxWebhookLog     = 500
)

// Webhooks lists the webhook endpoints.
func (p *Pages) Webhooks(w http.ResponseWriter, r *http.Request) {
	hs, err := p.db.ListWebhooks(r.Context())
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "webhooks", "Webhooks", "webhooks", hs)
}

// Webhook edits an endpoint ({id}) and shows its latest deliveries
// (?limit=, 50 by default), or makes a new one. The signing secret is
// shown once, by app.js, from the answer to the create request: the
// store never gives it back.
func (p *Pages) Webhook(w http.ResponseWriter, r *http.Request) {
	data := map[string]any{"Events": campaign.WebhookEvents, "Saved": r.URL.Query().Has("saved")}
	if r.PathValue("id") == "" {
		data["Webhook"] = &campaign.Webhook{Active: true, Events: campaign.WebhookEvents}
		p.render(w, r, http.StatusOK, "webhook", "New webhook", "webhooks", data)
		return
	}
	limit := defaultWebhookLog
	if n, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && n > 0 {
		limit = min(n, maxWebhookLog)
	}
	id, err := pathID(r)
	var wh *campaign.Webhook
	if err == nil {
		wh, err = p.db.FindWebhook(r.Context(), id)
	}
	var ds []campaign.WebhookDelivery
	if err == nil {
		ds, err = p.db.WebhookDeliveries(r.Context(), id, limit)
	}
	if err != nil {
		p.fail(w, r, err)
		return
	}
	data["Webhook"], data["Deliveries"], data["Limit"] = wh, ds, limit
	data["More"] = len(ds) == limit && limit < maxWebhookLog
	data["MoreLimit"] = min(limit*4, maxWebhookLog)
	p.render(w, r, http.StatusOK, "webhook", wh.URL, "webhooks", data)
}
