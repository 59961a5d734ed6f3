package ui

import (
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
)

// engagedForm is the filter form of the engaged-contacts page as the
// viewer typed it, with the message of each field that is wrong.
type engagedForm struct {
	Campaign, Since, MinScore                string
	CampaignError, SinceError, MinScoreError string
}

// Invalid reports whether a field of the form is wrong.
func (f engagedForm) Invalid() bool {
	return f.CampaignError != "" || f.SinceError != "" || f.MinScoreError != ""
}

// readEngagedForm reads ?campaign=&since=&min_score= into the store's
// filter. since is a date (YYYY-MM-DD, as a date input sends it) and
// means from its midnight in loc, the viewer's zone.
func readEngagedForm(q url.Values, loc *time.Location) (engagedForm, campaign.EngagedFilter) {
	form := engagedForm{Campaign: strings.TrimSpace(q.Get("campaign")), Since: strings.TrimSpace(q.Get("since")),
		MinScore: strings.TrimSpace(q.Get("min_score"))}
	var f campaign.EngagedFilter
	if form.Campaign != "" {
		id, err := strconv.ParseInt(form.Campaign, 10, 64)
		if err != nil || id <= 0 {
			form.CampaignError = "must be a campaign from the list"
		} else {
			f.CampaignID = id
		}
	}
	if form.Since != "" {
		t, err := time.ParseInLocation("2006-01-02", form.Since, loc)
		if err != nil {
			form.SinceError = "must be a date, such as 2026-03-01"
		}
		f.Since = t
	}
	if form.MinScore != "" {
		s, err := strconv.ParseFloat(form.MinScore, 64)
		if err != nil || math.IsNaN(s) || math.IsInf(s, 0) {
			form.MinScoreError = "must be a number, such as 25"
		}
		f.MinScore = s
	}
	return form, f
}

// query is the form's filters as the page's own links carry them.
func (f engagedForm) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"campaign": f.Campaign, "since": f.Since, "min_score": f.MinScore} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// engagedCSVLink is the API's CSV of every contact that f selects. The
// API reads a bare date as midnight UTC, so since goes as the RFC 3339
// time of its midnight in the viewer's zone: the file holds what the
// page lists.
func engagedCSVLink(form engagedForm, f campaign.EngagedFilter) string {
	q := form.query()
	if !f.Since.IsZero() {
		q.Set("since", f.Since.Format(time.RFC3339))
	}
	if len(q) == 0 {
		return "/api/v1/engaged.csv"
	}
	return "/api/v1/engaged.csv?" + q.Encode()
}

// engagedPage is what the engaged-contacts template receives.
type engagedPage struct {
	Form      engagedForm
	Campaigns []*campaign.Campaign
	Zone      string
	Contacts  []campaign.EngagedContact
	// Next is the link to the next page with the same filters; empty
	// on the last page. First is the link to the first page once the
	// viewer has paged on.
	Next, First string
	CSV         string
}

// Engaged lists the contacts with human opens or clicks (machine ones are
// not counted), 50 a page in contact ID order (?after=ID), with the
// filters of GET /api/v1/engaged: campaign, since (a date, from midnight
// in the viewer's zone) and min_score. A wrong filter is a 422 page with
// the message next to its field; a wrong cursor is a 422 error page.
func (p *Pages) Engaged(w http.ResponseWriter, r *http.Request) {
	v := viewerFrom(r.Context())
	after, err := afterParam(r)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	form, f := readEngagedForm(r.URL.Query(), v.Location())
	page := engagedPage{Form: form, Zone: v.Location().String()}
	if page.Campaigns, err = p.engagedCampaigns(r, &page.Form, f.CampaignID); err != nil {
		p.fail(w, r, err)
		return
	}
	if page.Form.Invalid() {
		p.render(w, r, http.StatusUnprocessableEntity, "engaged", "Engaged contacts", "engaged", page)
		return
	}
	f.AfterID, f.Limit = after, listPageSize
	if page.Contacts, err = p.db.EngagedContacts(r.Context(), f); err != nil {
		p.fail(w, r, err)
		return
	}
	q := form.query()
	if after != 0 {
		page.First = "/engaged?" + q.Encode()
	}
	if len(page.Contacts) == listPageSize {
		q.Set("after", strconv.FormatInt(page.Contacts[len(page.Contacts)-1].ContactID, 10))
		page.Next = "/engaged?" + q.Encode()
	}
	page.CSV = engagedCSVLink(form, f)
	p.render(w, r, http.StatusOK, "engaged", "Engaged contacts", "engaged", page)
}

// engagedCampaigns returns the campaigns the filter offers, with the
// chosen one (id) among them even when it is past the first
// store.MaxPageSize. A chosen campaign that does not exist sets the
// form's campaign error.
func (p *Pages) engagedCampaigns(r *http.Request, form *engagedForm, id int64) ([]*campaign.Campaign, error) {
	cs, err := p.db.ListCampaigns(r.Context(), 0, store.MaxPageSize)
	if err != nil || id <= 0 || slices.ContainsFunc(cs, func(c *campaign.Campaign) bool { return c.ID == id }) {
		return cs, err
	}
	c, err := p.db.FindCampaign(r.Context(), id)
	if campaign.ErrorCode(err) == campaign.ENOTFOUND {
		form.CampaignError = "no campaign has this ID; pick one from the list"
		return cs, nil
	}
	if err != nil {
		return nil, err
	}
	return append(cs, c), nil
}
