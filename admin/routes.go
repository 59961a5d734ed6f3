package admin

import (
	"net/http"
	"strings"

	"github.com/funnel-email/funnel/campaign"
)

// Role sets used by the routes below. A nil set means admin only; admin
// holds every role.
var (
	marketers = []campaign.Role{campaign.RoleMarketer}
	readers   = []campaign.Role{campaign.RoleMarketer, campaign.RoleSales}
	// everyone is any signed-in user or token.
	everyone   = []campaign.Role{campaign.RoleMarketer, campaign.RoleSales}
	adminsOnly []campaign.Role
)

// route is one entry of the service's surface. Routes under /api/ accept
// a bearer token or a session and are described by the OpenAPI document
// (openapi_routes.go must have an entry for each); other routes are pages
// of the web UI and accept only a session.
type route struct {
	Method  string
	Pattern string // a ServeMux path pattern
	// Roles may call the route (admin always may); nil means admin only.
	Roles []campaign.Role
	// Public routes need no credentials (login page, static assets,
	// the OpenAPI document).
	Public  bool
	Handler http.HandlerFunc
}

// key is the route's ServeMux pattern, "METHOD /path".
func (r route) key() string { return r.Method + " " + r.Pattern }

// api reports whether the route belongs to the REST API.
func (r route) api() bool { return strings.HasPrefix(r.Pattern, "/api/") }

// routeTable is the whole surface of the admin service, as data: the mux,
// the route-by-role test and the OpenAPI document all read it. Add a route
// here, then its description in openapi_routes.go.
func (a *API) routeTable() []route {
	rs := []route{
		{"GET", "/api/v1/contacts", readers, false, a.listContacts},
		{"POST", "/api/v1/contacts", marketers, false, a.createContact},
		{"GET", "/api/v1/contacts/{id}", readers, false, getByID(a, a.db.FindContact)},
		{"PATCH", "/api/v1/contacts/{id}", marketers, false, a.updateContact},
		{"DELETE", "/api/v1/contacts/{id}", marketers, false, a.deleteByID(a.db.DeleteContact)},

		{"POST", "/api/v1/imports", marketers, false, a.createImport},
		{"GET", "/api/v1/imports/{id}", marketers, false, getByID(a, a.db.FindImport)},

		{"GET", "/api/v1/segments", marketers, false, a.listSegments},
		{"POST", "/api/v1/segments", marketers, false, a.createSegment},
		{"POST", "/api/v1/segments/preview", marketers, false, a.previewSegment},
		{"POST", "/api/v1/segments/parse", marketers, false, a.parseSegment},
		{"GET", "/api/v1/segments/{id}", marketers, false, a.withETag("segments", a.getSegment)},
		{"PATCH", "/api/v1/segments/{id}", marketers, false, a.withETag("segments", a.ifMatch(a.segmentETag, a.updateSegment))},
		{"DELETE", "/api/v1/segments/{id}", marketers, false, a.deleteByID(a.db.DeleteSegment)},
		{"GET", "/api/v1/segments/{id}/contacts", marketers, false, a.listSegmentContacts},
		{"POST", "/api/v1/attributes/{key}/index", marketers, false, a.indexAttribute},

		{"GET", "/api/v1/templates", marketers, false, a.listTemplates},
		{"POST", "/api/v1/templates", marketers, false, a.createTemplate},
		{"GET", "/api/v1/templates/{id}", marketers, false, a.withETag("templates", getByID(a, a.db.FindTemplate))},
		{"PATCH", "/api/v1/templates/{id}", marketers, false, a.withETag("templates", a.ifMatch(a.templateETag, a.updateTemplate))},
		{"DELETE", "/api/v1/templates/{id}", marketers, false, a.deleteByID(a.db.DeleteTemplate)},
		{"POST", "/api/v1/templates/{id}/preview", marketers, false, a.previewTemplate},
		{"POST", "/api/v1/templates/{id}/test", marketers, false, a.testTemplate},

		{"GET", "/api/v1/campaigns", marketers, false, a.listCampaigns},
		{"POST", "/api/v1/campaigns", marketers, false, a.createCampaign},
		{"GET", "/api/v1/campaigns/{id}", marketers, false, a.withETag("campaigns", a.getCampaign)},
		{"PATCH", "/api/v1/campaigns/{id}", marketers, false, a.withETag("campaigns", a.ifMatch(a.campaignETag, a.updateCampaign))},
		{"DELETE", "/api/v1/campaigns/{id}", marketers, false, a.deleteByID(a.db.DeleteCampaign)},
		{"GET", "/api/v1/campaigns/{id}/deliveries", marketers, false, a.listDeliveries},
		{"POST", "/api/v1/campaigns/{id}/schedule", marketers, false, a.scheduleCampaign},
		{"POST", "/api/v1/campaigns/{id}/send", marketers, false, a.sendCampaign},
		{"POST", "/api/v1/campaigns/{id}/pause", marketers, false, a.transition(campaign.Pause)},
		{"POST", "/api/v1/campaigns/{id}/resume", marketers, false, a.transition(campaign.Resume)},
		{"POST", "/api/v1/campaigns/{id}/cancel", marketers, false, a.transition(campaign.Cancel)},
		{"POST", "/api/v1/campaigns/{id}/duplicate", marketers, false, a.duplicateCampaign},

		{"GET", "/api/v1/settings/sender", marketers, false, a.getSender},
		{"PUT", "/api/v1/settings/sender", adminsOnly, false, a.putSender},
		{"GET", "/api/v1/smtp-servers", adminsOnly, false, a.listSMTPServers},
		{"POST", "/api/v1/smtp-servers/{index}/check", adminsOnly, false, a.checkSMTPServer},
		{"GET", "/api/v1/sending-domains", adminsOnly, false, a.listSendingDomains},

		{"GET", "/api/v1/me", everyone, false, a.getMe},
		{"PATCH", "/api/v1/me", everyone, false, a.updateMe},
		{"GET", "/api/v1/me/local-time", everyone, false, a.getLocalTime},
		{"GET", "/api/v1/users", adminsOnly, false, a.listUsers},
		{"POST", "/api/v1/users", adminsOnly, false, a.createUser},
		{"PATCH", "/api/v1/users/{id}", adminsOnly, false, a.updateUser},
		{"POST", "/api/v1/users/{id}/reset-link", adminsOnly, false, a.createResetLink},
		{"GET", "/api/v1/tokens", everyone, false, a.listTokens},
		{"POST", "/api/v1/tokens", everyone, false, a.createToken},
		{"DELETE", "/api/v1/tokens/{id}", everyone, false, a.revokeToken},
		{"GET", "/api/v1/openapi.json", nil, true, a.serveOpenAPI},
	}
	rs = append(rs, a.handoffRoutes()...) // scoring, leads, engaged, webhooks: admin/leads.go
	if a.outbox != nil {
		rs = append(rs, route{"GET", "/api/v1/dev/outbox", marketers, false, a.outbox.ServeHTTP})
	}
	return append(rs, a.uiRoutes()...)
}

// uiRoutes are the pages of the web UI. Unlike the API they accept only
// a session; a GET without one is sent to the login page.
func (a *API) uiRoutes() []route {
	p := a.pages
	rs := []route{
		{"GET", "/login", nil, true, a.loginPage},
		{"POST", "/login", nil, true, a.login},
		{"POST", "/logout", everyone, false, a.logout},
		{"GET", "/reset/{token}", nil, true, a.resetPage},
		{"POST", "/reset/{token}", nil, true, a.resetPassword},
		{"GET", "/account", everyone, false, a.page(p.Account)},
		{"GET", "/static/{file...}", nil, true, p.Static},
		{"GET", "/{$}", everyone, false, a.page(p.Dashboard)},
		{"GET", "/tokens", everyone, false, a.page(p.Tokens)},
		{"GET", "/contacts", readers, false, a.page(p.Contacts)},
		{"GET", "/contacts/import", marketers, false, a.page(p.Import)},
		{"GET", "/contacts/{id}", readers, false, a.page(p.Contact)},
		{"GET", "/segments", marketers, false, a.page(p.Segments)},
		{"GET", "/segments/new", marketers, false, a.page(p.Segment)},
		{"GET", "/segments/{id}", marketers, false, a.page(p.Segment)},
		{"GET", "/templates", marketers, false, a.page(p.Templates)},
		{"GET", "/templates/new", marketers, false, a.page(p.Template)},
		{"GET", "/templates/{id}", marketers, false, a.page(p.Template)},
		{"GET", "/campaigns", marketers, false, a.page(p.Campaigns)},
		{"GET", "/campaigns/new", marketers, false, a.page(p.NewCampaign)},
		{"GET", "/campaigns/{id}", marketers, false, a.page(p.Campaign)},
		{"GET", "/leads", readers, false, a.page(p.Leads)},
		{"GET", "/leads/{id}", readers, false, a.page(p.Lead)},
		{"GET", "/engaged", readers, false, a.page(p.Engaged)},
		{"GET", "/users", adminsOnly, false, a.page(p.Users)},
		{"GET", "/webhooks", marketers, false, a.page(p.Webhooks)},
		{"GET", "/webhooks/new", marketers, false, a.page(p.Webhook)},
		{"GET", "/webhooks/{id}", marketers, false, a.page(p.Webhook)},
		{"GET", "/scoring", readers, false, a.page(a.scoringPage)},
		{"GET", "/settings/smtp", adminsOnly, false, a.page(a.smtpPage)},
		{"GET", "/settings/domains", adminsOnly, false, a.page(a.domainsPage)},
	}
	if a.monitor != nil {
		rs = append(rs, route{"GET", "/monitoring/", adminsOnly, false, a.monitor.ServeHTTP})
	}
	if a.caught {
		rs = append(rs,
			route{"GET", "/outbox", marketers, false, a.page(p.Outbox)},
			route{"GET", "/outbox/{id}", marketers, false, a.page(p.OutboxMessage)},
			route{"GET", "/outbox/{id}/html", marketers, false, p.OutboxHTML})
	}
	return rs
}

// routes registers the route table on the mux.
func (a *API) routes() {
	a.table = a.routeTable()
	for _, rt := range a.table {
		if rt.Public {
			a.mux.Handle(rt.key(), rt.Handler)
			continue
		}
		a.mux.Handle(rt.key(), a.requireRole(rt.Handler, rt.Roles...))
	}
	// Anything else under /api/ is a JSON 404 rather than the mux's text page.
	a.mux.Handle("/api/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.writeError(w, r, campaign.Errorf(campaign.ENOTFOUND, "no route %s %s", r.Method, r.URL.Path))
	}))
}
