package admin

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
)

// salesOnly may update leads (admin always may): marketers read them.
var salesOnly = []campaign.Role{campaign.RoleSales}

// handoffRoutes are the scoring, lead, engaged-contact and webhook routes.
func (a *API) handoffRoutes() []route {
	return []route{
		{"GET", "/api/v1/scoring", readers, false, a.getScoring},
		{"PUT", "/api/v1/scoring", marketers, false, a.putScoring},
		{"GET", "/api/v1/scoring/versions", marketers, false, a.listScoringVersions},
		{"GET", "/api/v1/contacts/{id}/score", readers, false, getByID(a, a.db.ContactScore)},

		{"GET", "/api/v1/leads", readers, false, a.listLeads},
		{"GET", "/api/v1/leads.csv", readers, false, a.leadsCSV},
		{"GET", "/api/v1/leads/{id}", readers, false, getByID(a, a.db.FindLeadDetail)},
		{"PATCH", "/api/v1/leads/{id}", salesOnly, false, a.updateLead},
		{"GET", "/api/v1/engaged", readers, false, a.listEngaged},
		{"GET", "/api/v1/engaged.csv", readers, false, a.listEngaged},
		{"GET", "/api/v1/campaigns/{id}/leads", readers, false, getByID(a, a.db.CampaignLeads)},

		{"GET", "/api/v1/webhooks", marketers, false, a.listWebhooks},
		{"POST", "/api/v1/webhooks", marketers, false, a.createWebhook},
		{"GET", "/api/v1/webhooks/{id}", marketers, false, getByID(a, a.db.FindWebhook)},
		{"PATCH", "/api/v1/webhooks/{id}", marketers, false, a.updateWebhook},
		{"DELETE", "/api/v1/webhooks/{id}", marketers, false, a.deleteByID(a.db.DeleteWebhook)},
		{"GET", "/api/v1/webhooks/{id}/deliveries", marketers, false, a.listWebhookDeliveries},
	}
}

// leadPage is the body of GET /api/v1/leads. NextCursor is empty on the
// last page.
type leadPage struct {
	Leads      []*campaign.Lead `json:"leads"`
	NextCursor string           `json:"next_cursor,omitempty"`
}

// leadFilter reads ?status=&owner=&min_score=&since=&campaign=&sort=&cursor=&limit=.
// In the default sort (-score) the cursor is "score:id" of the last lead
// of the previous page; in another it is opaque (listCursor).
func leadFilter(r *http.Request, maxLimit int) (campaign.LeadFilter, error) {
	q := r.URL.Query()
	f := campaign.LeadFilter{Status: campaign.LeadStatus(q.Get("status"))}
	bad := func(field, msg string) error {
		return campaign.Invalid("invalid query", campaign.FieldError{Field: field, Message: msg})
	}
	if f.Status != "" && !f.Status.Valid() {
		return f, bad("status", "must be one of new, contacted, accepted, rejected, won, lost")
	}
	var err error
	if f.OwnerID, err = queryInt(q.Get("owner"), "owner", 0); err != nil {
		return f, err
	}
	if f.CampaignID, err = queryInt(q.Get("campaign"), "campaign", 0); err != nil {
		return f, err
	}
	if f.MinScore, err = queryFloat(q.Get("min_score"), "min_score"); err != nil {
		return f, err
	}
	if f.Since, err = queryTime(q.Get("since"), "since"); err != nil {
		return f, err
	}
	if f.Sort, err = sortQuery(q, store.LeadSorts); err != nil {
		return f, err
	}
	if f.AfterScore, f.AfterID, err = parseLeadCursor(q.Get("cursor"), f.Sort); err != nil {
		return f, err
	}
	if maxLimit > 0 {
		f.Limit, err = queryLimit(q.Get("limit"))
	}
	return f, err
}

// parseLeadCursor reads the cursor of a page of leads in sort: "score:id"
// in the default sort, as before lists could be sorted; opaque in another.
func parseLeadCursor(raw string, sort campaign.Sort) (afterScore *float64, afterID int64, err error) {
	if raw == "" {
		return nil, 0, nil
	}
	s, id, ok := strings.Cut(raw, ":")
	score, err1 := strconv.ParseFloat(s, 64)
	after, err2 := strconv.ParseInt(id, 10, 64)
	isDefault := ok && err1 == nil && err2 == nil
	switch def := store.LeadSorts.Default; {
	case sort == def && isDefault:
		return &score, after, nil
	case sort == def:
		if made, ok := decodeCursor(raw); ok {
			return nil, 0, cursorSortError(made.Sort, sort)
		}
		return nil, 0, campaign.Invalid("invalid query", campaign.FieldError{Field: "cursor", Message: "is not a next_cursor this API gave"})
	case isDefault:
		return nil, 0, cursorSortError(def.String(), sort)
	}
	afterID, value, err := pageCursor(raw, sort, store.LeadSorts.Default)
	if score, ok := value.(float64); ok {
		afterScore = &score
	}
	return afterScore, afterID, err
}

// leadCursor is the next_cursor of a full page of leads in sort that ends
// with l.
func leadCursor(sort campaign.Sort, l *campaign.Lead) string {
	if sort != store.LeadSorts.Default {
		return nextCursor(store.LeadSorts, sort, l)
	}
	return strconv.FormatFloat(l.Score, 'g', -1, 64) + ":" + strconv.FormatInt(l.ID, 10)
}

func queryFloat(raw, name string) (float64, error) {
	if raw == "" {
		return 0, nil
	}
	v, err := strconv.ParseFloat(raw, 64)
	if err != nil || v != v {
		return 0, campaign.Invalid("invalid query", campaign.FieldError{Field: name, Message: fmt.Sprintf("%q is not a number", raw)})
	}
	return v, nil
}

// queryTime accepts RFC 3339 or a date (YYYY-MM-DD, midnight UTC).
func queryTime(raw, name string) (time.Time, error) {
	if raw == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, raw); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, campaign.Invalid("invalid query", campaign.FieldError{Field: name, Message: fmt.Sprintf("%q is not an RFC 3339 time or a YYYY-MM-DD date", raw)})
}

// listLeads answers GET /api/v1/leads, highest score first unless sorted
// otherwise.
func (a *API) listLeads(w http.ResponseWriter, r *http.Request) {
	f, err := leadFilter(r, maxPageSize)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	ls, err := a.db.ListLeads(r.Context(), f)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	page := leadPage{Leads: ls}
	if len(ls) == f.Limit {
		page.NextCursor = leadCursor(f.Sort, ls[len(ls)-1])
	}
	writeJSON(w, http.StatusOK, page)
}

// leadsCSV answers GET /api/v1/leads.csv with every lead the filters
// select (no paging), highest score first unless sorted otherwise.
func (a *API) leadsCSV(w http.ResponseWriter, r *http.Request) {
	f, err := leadFilter(r, 0)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	cw := startCSV(w, "leads.csv", "id", "contact_id", "email", "first_name", "last_name", "status", "reason",
		"owner_user_id", "score", "score_at_creation", "campaign_id", "created_at", "updated_at")
	f.Limit = 1000
	for {
		ls, err := a.db.ListLeads(r.Context(), f)
		if err != nil {
			a.log.ErrorContext(r.Context(), "leads.csv", "err", err) // the header is out: the body is cut short
			return
		}
		for _, l := range ls {
			_ = cw.Write(csvRow(l.ID, l.ContactID, l.Email, l.FirstName, l.LastName, string(l.Status), l.Reason,
				l.OwnerID, l.Score, l.ScoreAtCreation, l.CampaignID, l.CreatedAt.Format(time.RFC3339), l.UpdatedAt.Format(time.RFC3339)))
		}
		cw.Flush()
		if len(ls) < f.Limit {
			return
		}
		last := ls[len(ls)-1]
		f.AfterScore, f.AfterID = &last.Score, last.ID
	}
}

func startCSV(w http.ResponseWriter, name string, header ...string) *csv.Writer {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	cw := csv.NewWriter(w)
	_ = cw.Write(header)
	return cw
}

// csvRow formats values for a CSV row. Text that a spreadsheet would take
// for a formula (=, +, -, @ first) is prefixed with a quote.
func csvRow(vs ...any) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		switch v := v.(type) {
		case string:
			if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
				v = "'" + v
			}
			out[i] = v
		case int64:
			if v != 0 {
				out[i] = strconv.FormatInt(v, 10)
			}
		case float64:
			out[i] = strconv.FormatFloat(v, 'f', -1, 64)
		default:
			out[i] = fmt.Sprint(v)
		}
	}
	return out
}

// updateLead answers PATCH /api/v1/leads/{id}.
func (a *API) updateLead(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var p campaign.LeadPatch
	if err := a.decodeJSON(w, r, &p); err != nil {
		a.writeError(w, r, err)
		return
	}
	var user int64
	if pr := principalFrom(r.Context()); pr != nil {
		user = pr.UserID
	}
	l, err := a.db.UpdateLead(r.Context(), id, p, user)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

// engagedPage is the body of GET /api/v1/engaged.
type engagedPage struct {
	Contacts   []campaign.EngagedContact `json:"contacts"`
	NextCursor string                    `json:"next_cursor,omitempty"`
}

// listEngaged answers GET /api/v1/engaged (JSON, or CSV for .csv or
// Accept: text/csv) with ?campaign=&since=&min_score=&sort=&cursor=&limit=.
// CSV holds every matching contact.
func (a *API) listEngaged(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var f campaign.EngagedFilter
	var err error
	f.CampaignID, err = queryInt(q.Get("campaign"), "campaign", 0)
	if err == nil {
		f.Since, err = queryTime(q.Get("since"), "since")
	}
	if err == nil {
		f.MinScore, err = queryFloat(q.Get("min_score"), "min_score")
	}
	if err == nil {
		var p store.Page
		p, err = sortedPage(q, store.EngagedSorts)
		f.Sort, f.AfterID, f.Limit = p.Sort, p.After, p.Limit
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if strings.HasSuffix(r.URL.Path, ".csv") || strings.Contains(r.Header.Get("Accept"), "text/csv") {
		a.engagedCSV(w, r, f)
		return
	}
	cs, err := a.db.EngagedContacts(r.Context(), f)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	page := engagedPage{Contacts: cs}
	if len(cs) == f.Limit {
		page.NextCursor = nextCursor(store.EngagedSorts, f.Sort, cs[len(cs)-1])
	}
	writeJSON(w, http.StatusOK, page)
}

func (a *API) engagedCSV(w http.ResponseWriter, r *http.Request, f campaign.EngagedFilter) {
	cw := startCSV(w, "engaged.csv", "contact_id", "email", "first_name", "last_name", "score", "lifecycle_stage",
		"human_opens", "human_clicks", "last_activity_at")
	f.Limit = 1000
	for {
		cs, err := a.db.EngagedContacts(r.Context(), f)
		if err != nil {
			a.log.ErrorContext(r.Context(), "engaged.csv", "err", err)
			return
		}
		for _, c := range cs {
			_ = cw.Write(csvRow(c.ContactID, c.Email, c.FirstName, c.LastName, c.Score, string(c.Stage), c.Opens, c.Clicks,
				c.LastActivity.Format(time.RFC3339)))
		}
		cw.Flush()
		if len(cs) < f.Limit {
			return
		}
		f.AfterID = cs[len(cs)-1].ContactID
	}
}

// Query parameters of the lead and engaged-contact lists (OpenAPI).
var (
	leadParams = []param{{"status", "string", "new, contacted, accepted, rejected, won or lost"}, {"owner", "integer", "owner's user ID"},
		{"min_score", "number", "leads whose contact's score is at least this"}, {"since", "string", "created at or after (RFC 3339 or YYYY-MM-DD)"},
		{"campaign", "integer", "leads the campaign produced"}, cursorParam, limitParam}
	engagedParams = []param{{"campaign", "integer", "engaged with this campaign"}, {"since", "string", "engaged at or after (RFC 3339 or YYYY-MM-DD)"},
		{"min_score", "number", "contacts whose score is at least this"}, cursorParam, limitParam}
)
