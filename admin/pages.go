package admin

import (
	"net/http"

	"github.com/funnel-email/funnel/admin/ui"
	"github.com/funnel-email/funnel/campaign"
)

// allows reports whether the route table lets p call the route named by
// key ("METHOD /pattern"), so that a page offers only what its viewer may
// do. An unknown route is allowed to no one.
func (a *API) allows(p *campaign.Principal, key string) bool {
	for _, rt := range a.table {
		if rt.key() == key {
			return p != nil && p.Can(rt.Roles...)
		}
	}
	return false
}

// scoringPage shows the scoring rules: a form for those who may save them
// and the versions for those who may list them.
func (a *API) scoringPage(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	a.pages.Scoring(w, r, ui.ScoringAccess{
		Edit:    a.allows(p, "PUT /api/v1/scoring"),
		History: a.allows(p, "GET /api/v1/scoring/versions"),
	})
}
