package ui

import (
	"net/http"
	"strconv"

	"github.com/funnel-email/funnel/campaign"
)

// leadColumns are the columns of the leads board, in the order a lead
// moves through them.
var leadColumns = []campaign.LeadStatus{campaign.LeadNew, campaign.LeadContacted, campaign.LeadAccepted,
	campaign.LeadRejected, campaign.LeadWon, campaign.LeadLost}

// leadColumn is one status column of the board.
type leadColumn struct {
	Status campaign.LeadStatus
	Leads  []*campaign.Lead
}

// Leads is the sales board: leads by status, highest score first, with an
// owner filter (?owner=ID; "me" for the viewer's own).
func (p *Pages) Leads(w http.ResponseWriter, r *http.Request) {
	v := viewerFrom(r.Context())
	ownerRaw := r.URL.Query().Get("owner")
	var owner int64
	if ownerRaw == "me" {
		owner = v.UserID
	} else {
		owner, _ = strconv.ParseInt(ownerRaw, 10, 64)
	}
	cols := make([]leadColumn, 0, len(leadColumns))
	for _, s := range leadColumns {
		ls, err := p.db.ListLeads(r.Context(), campaign.LeadFilter{Status: s, OwnerID: owner, Limit: 100})
		if err != nil {
			p.fail(w, r, err)
			return
		}
		cols = append(cols, leadColumn{Status: s, Leads: ls})
	}
	owners, err := p.db.ListUsers(r.Context(), campaign.RoleSales)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "leads", "Leads", "leads", map[string]any{"Columns": cols, "Owners": owners, "Owner": ownerRaw})
}

// Lead shows why a contact became a lead (score ledger, links clicked,
// campaigns) and lets sales accept or reject it.
func (p *Pages) Lead(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	var l *campaign.LeadDetail
	if err == nil {
		l, err = p.db.FindLeadDetail(r.Context(), id)
	}
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "lead", l.Email, "leads", l)
}
