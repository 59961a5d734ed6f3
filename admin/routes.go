package admin

import (
	"net/http"

	"github.com/funnel-email/funnel/campaign"
)

// Role sets used by the routes below.
var (
	marketers = []campaign.Role{campaign.RoleMarketer}
	readers   = []campaign.Role{campaign.RoleMarketer, campaign.RoleSales}
)

// routes registers the whole API surface.
func (a *API) routes() {
	m := a.mux
	m.Handle("GET /api/v1/contacts", a.requireRole(a.listContacts, readers...))
	m.Handle("POST /api/v1/contacts", a.requireRole(a.createContact, marketers...))
	m.Handle("GET /api/v1/contacts/{id}", a.requireRole(getByID(a, a.db.FindContact), readers...))
	m.Handle("PATCH /api/v1/contacts/{id}", a.requireRole(a.updateContact, marketers...))
	m.Handle("DELETE /api/v1/contacts/{id}", a.requireRole(a.deleteByID(a.db.DeleteContact), marketers...))

	m.Handle("POST /api/v1/imports", a.requireRole(a.createImport, marketers...))
	m.Handle("GET /api/v1/imports/{id}", a.requireRole(getByID(a, a.db.FindImport), marketers...))

	m.Handle("GET /api/v1/segments", a.requireRole(a.listSegments, marketers...))
	m.Handle("POST /api/v1/segments", a.requireRole(a.createSegment, marketers...))
	m.Handle("POST /api/v1/segments/preview", a.requireRole(a.previewSegment, marketers...))
	m.Handle("GET /api/v1/segments/{id}", a.requireRole(a.getSegment, marketers...))
	m.Handle("PATCH /api/v1/segments/{id}", a.requireRole(a.updateSegment, marketers...))
	m.Handle("DELETE /api/v1/segments/{id}", a.requireRole(a.deleteByID(a.db.DeleteSegment), marketers...))
	m.Handle("GET /api/v1/segments/{id}/contacts", a.requireRole(a.listSegmentContacts, marketers...))
	m.Handle("POST /api/v1/attributes/{key}/index", a.requireRole(a.indexAttribute, marketers...))

	m.Handle("GET /api/v1/templates", a.requireRole(a.listTemplates, marketers...))
	m.Handle("POST /api/v1/templates", a.requireRole(a.createTemplate, marketers...))
	m.Handle("GET /api/v1/templates/{id}", a.requireRole(getByID(a, a.db.FindTemplate), marketers...))
	m.Handle("PATCH /api/v1/templates/{id}", a.requireRole(a.updateTemplate, marketers...))
	m.Handle("DELETE /api/v1/templates/{id}", a.requireRole(a.deleteByID(a.db.DeleteTemplate), marketers...))
	m.Handle("POST /api/v1/templates/{id}/preview", a.requireRole(a.previewTemplate, marketers...))
	m.Handle("POST /api/v1/templates/{id}/test", a.requireRole(a.testTemplate, marketers...))

	m.Handle("GET /api/v1/campaigns", a.requireRole(a.listCampaigns, marketers...))
	m.Handle("POST /api/v1/campaigns", a.requireRole(a.createCampaign, marketers...))
	m.Handle("GET /api/v1/campaigns/{id}", a.requireRole(a.getCampaign, marketers...))
	m.Handle("PATCH /api/v1/campaigns/{id}", a.requireRole(a.updateCampaign, marketers...))
	m.Handle("DELETE /api/v1/campaigns/{id}", a.requireRole(a.deleteByID(a.db.DeleteCampaign), marketers...))
	m.Handle("GET /api/v1/campaigns/{id}/deliveries", a.requireRole(a.listDeliveries, marketers...))
	m.Handle("POST /api/v1/campaigns/{id}/schedule", a.requireRole(a.scheduleCampaign, marketers...))
	m.Handle("POST /api/v1/campaigns/{id}/send", a.requireRole(a.sendCampaign, marketers...))
	m.Handle("POST /api/v1/campaigns/{id}/pause", a.requireRole(a.transition(campaign.Pause), marketers...))
	m.Handle("POST /api/v1/campaigns/{id}/resume", a.requireRole(a.transition(campaign.Resume), marketers...))
	m.Handle("POST /api/v1/campaigns/{id}/cancel", a.requireRole(a.transition(campaign.Cancel), marketers...))
	m.Handle("POST /api/v1/campaigns/{id}/duplicate", a.requireRole(a.duplicateCampaign, marketers...))

	m.Handle("GET /api/v1/settings/sender", a.requireRole(a.getSender, marketers...))
	m.Handle("PUT /api/v1/settings/sender", a.requireRole(a.putSender))

	if a.outbox != nil {
		m.Handle("GET /api/v1/dev/outbox", a.requireRole(a.outbox.ServeHTTP, marketers...))
	}

	// Anything else under /api/ is a JSON 404 rather than the mux's text page.
	m.Handle("/api/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.writeError(w, r, campaign.Errorf(campaign.ENOTFOUND, "no route %s %s", r.Method, r.URL.Path))
	}))
}
