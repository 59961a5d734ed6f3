package ui

import (
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/funnel-email/funnel/campaign"
)

// leadColumns are the columns of the leads board, in the order a lead
// moves through them.
var leadColumns = []campaign.LeadStatus{campaign.LeadNew, campaign.LeadContacted, campaign.LeadAccepted,
	campaign.LeadRejected, campaign.LeadWon, campaign.LeadLost}

// leadColumn is one status column of the board, one page of it.
type leadColumn struct {
	Status campaign.LeadStatus
	Leads  []*campaign.Lead
	// Next is the keyset cursor ("score:id") of the column's next page;
	// empty on its last page.
	Next string
}

// Leads is the sales board: leads by status, highest score first, 50 a
// column, with an owner filter (?owner=ID; "me" for the viewer's own).
// ?status=S&cursor=C shows the page of one column that its "More" link
// names, with the API's cursor form.
func (p *Pages) Leads(w http.ResponseWriter, r *http.Request) {
	v := viewerFrom(r.Context())
	q := r.URL.Query()
	ownerRaw := q.Get("owner")
	var owner int64
	bad := func(field, msg string) {
		p.fail(w, r, campaign.Invalid("invalid leads filter", campaign.FieldError{Field: field, Message: msg}))
	}
	if ownerRaw == "me" {
		owner = v.UserID
	} else if ownerRaw != "" {
		var err error
		if owner, err = strconv.ParseInt(ownerRaw, 10, 64); err != nil || owner < 0 {
			bad("owner", "must be a user ID or “me”")
			return
		}
	}
	columns := leadColumns
	var afterScore *float64
	var afterID int64
	if s := campaign.LeadStatus(q.Get("status")); s != "" {
		if !s.Valid() {
			bad("status", "must be one of new, contacted, accepted, rejected, won, lost")
			return
		}
		columns = []campaign.LeadStatus{s}
	}
	if c := q.Get("cursor"); c != "" {
		score, id, ok := parseLeadCursor(c)
		if !ok || len(columns) != 1 {
			bad("cursor", "must be the cursor that a column's “More” link gave, with its status")
			return
		}
		afterScore, afterID = &score, id
	}
	cols := make([]leadColumn, 0, len(columns))
	for _, s := range columns {
		ls, err := p.db.ListLeads(r.Context(), campaign.LeadFilter{Status: s, OwnerID: owner, Limit: listPageSize, AfterScore: afterScore, AfterID: afterID})
		if err != nil {
			p.fail(w, r, err)
			return
		}
		col := leadColumn{Status: s, Leads: ls}
		if len(ls) == listPageSize {
			last := ls[len(ls)-1]
			col.Next = strconv.FormatFloat(last.Score, 'g', -1, 64) + ":" + strconv.FormatInt(last.ID, 10)
		}
		cols = append(cols, col)
	}
	owners, err := p.db.ListUsers(r.Context(), campaign.RoleSales)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "leads", "Leads", "leads", map[string]any{"Columns": cols, "Owners": owners, "Owner": ownerRaw,
		"Paged": len(columns) == 1})
}

// parseLeadCursor reads a "score:id" cursor.
func parseLeadCursor(c string) (float64, int64, bool) {
	s, id, ok := strings.Cut(c, ":")
	score, err1 := strconv.ParseFloat(s, 64)
	after, err2 := strconv.ParseInt(id, 10, 64)
	return score, after, ok && err1 == nil && err2 == nil && !math.IsNaN(score)
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
