package admin

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
)

// webhookInput is the body of POST /api/v1/webhooks. Active defaults to
// true.
type webhookInput struct {
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Active      *bool    `json:"active"`
	Description string   `json:"description"`
}

// webhookList is the body of GET /api/v1/webhooks.
type webhookList struct {
	Webhooks []*campaign.Webhook `json:"webhooks"`
}

// webhookDeliveries is the body of GET /api/v1/webhooks/{id}/deliveries.
type webhookDeliveries struct {
	Deliveries []campaign.WebhookDelivery `json:"deliveries"`
}

// createWebhook answers POST /api/v1/webhooks; the answer carries the
// signing secret, which no other answer shows.
func (a *API) createWebhook(w http.ResponseWriter, r *http.Request) {
	var in webhookInput
	if err := a.decodeJSON(w, r, &in); err != nil {
		a.writeError(w, r, err)
		return
	}
	wh := &campaign.Webhook{URL: in.URL, Events: in.Events, Active: in.Active == nil || *in.Active, Description: in.Description}
	if err := a.db.CreateWebhook(r.Context(), wh, a.privateHooks); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/webhooks/"+strconv.FormatInt(wh.ID, 10))
	writeJSON(w, http.StatusCreated, wh)
}

// listWebhooks answers GET /api/v1/webhooks?sort=: every endpoint, in ID
// order (id) or its reverse (-id).
func (a *API) listWebhooks(w http.ResponseWriter, r *http.Request) {
	sort, err := sortQuery(r.URL.Query(), store.WebhookSorts)
	var hs []*campaign.Webhook
	if err == nil {
		hs, err = a.db.ListWebhooks(r.Context())
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if sort != store.WebhookSorts.Default {
		slices.Reverse(hs)
	}
	writeJSON(w, http.StatusOK, webhookList{Webhooks: hs})
}

func (a *API) updateWebhook(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var p campaign.WebhookPatch
	if err := a.decodeJSON(w, r, &p); err != nil {
		a.writeError(w, r, err)
		return
	}
	wh, err := a.db.UpdateWebhook(r.Context(), id, p, a.privateHooks)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wh)
}

// listWebhookDeliveries answers GET /api/v1/webhooks/{id}/deliveries?limit=
// with the most recent deliveries and every attempt's response code.
func (a *API) listWebhookDeliveries(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	var limit int
	if err == nil {
		limit, err = queryLimit(r.URL.Query().Get("limit"))
	}
	var ds []campaign.WebhookDelivery
	if err == nil {
		ds, err = a.db.WebhookDeliveries(r.Context(), id, limit)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, webhookDeliveries{Deliveries: ds})
}
