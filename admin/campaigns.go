package admin

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
)

// The campaign routes only write the database. Workers learn of a
// schedule, a send-now or a resume from it within their reconciler's tick
// (2 s by default), which keeps this service free of the queue: the
// ledger and the campaign row are the truth, Redis only a cache of work.

// campaignInput is the body of POST /api/v1/campaigns.
type campaignInput struct {
	Name              string  `json:"name"`
	TemplateID        int64   `json:"template_id"`
	SegmentIDs        []int64 `json:"segment_ids"`
	ExcludeSegmentIDs []int64 `json:"exclude_segment_ids"`
	FromName          string  `json:"from_name"`
	FromEmail         string  `json:"from_email"`
	ReplyTo           string  `json:"reply_to"`
	Rate              float64 `json:"rate"`
	ResendUncertain   bool    `json:"resend_uncertain"`
	// SMTPPool is a pool= name of FUNNEL_SMTP_URL; empty sends through
	// every server.
	SMTPPool string `json:"smtp_pool"`
}

// campaignPatch is the body of PATCH /api/v1/campaigns/{id}; absent
// fields are kept.
type campaignPatch struct {
	Name              *string  `json:"name"`
	TemplateID        *int64   `json:"template_id"`
	SegmentIDs        *[]int64 `json:"segment_ids"`
	ExcludeSegmentIDs *[]int64 `json:"exclude_segment_ids"`
	FromName          *string  `json:"from_name"`
	FromEmail         *string  `json:"from_email"`
	ReplyTo           *string  `json:"reply_to"`
	Rate              *float64 `json:"rate"`
	ResendUncertain   *bool    `json:"resend_uncertain"`
	SMTPPool          *string  `json:"smtp_pool"`
}

func (p campaignPatch) apply(c *campaign.Campaign) {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&c.Name, p.Name)
	set(&c.FromName, p.FromName)
	set(&c.FromEmail, p.FromEmail)
	set(&c.ReplyTo, p.ReplyTo)
	set(&c.SMTPPool, p.SMTPPool)
	if p.TemplateID != nil {
		c.TemplateID = *p.TemplateID
	}
	if p.SegmentIDs != nil {
		c.SegmentIDs = *p.SegmentIDs
	}
	if p.ExcludeSegmentIDs != nil {
		c.ExcludeSegmentIDs = *p.ExcludeSegmentIDs
	}
	if p.Rate != nil {
		c.Rate = *p.Rate
	}
	if p.ResendUncertain != nil {
		c.ResendUncertain = *p.ResendUncertain
	}
}

// campaignView is a campaign with its progress, as GET answers it.
type campaignView struct {
	*campaign.Campaign
	Progress *campaign.Progress `json:"progress"`
}

func (a *API) createCampaign(w http.ResponseWriter, r *http.Request) {
	var in campaignInput
	if err := a.decodeJSON(w, r, &in); err != nil {
		a.writeError(w, r, err)
		return
	}
	c := &campaign.Campaign{Name: in.Name, TemplateID: in.TemplateID, SegmentIDs: in.SegmentIDs, ExcludeSegmentIDs: in.ExcludeSegmentIDs,
		FromName: in.FromName, FromEmail: in.FromEmail, ReplyTo: in.ReplyTo, Rate: in.Rate, ResendUncertain: in.ResendUncertain, SMTPPool: in.SMTPPool}
	if err := a.checkSMTPPool(c.SMTPPool); err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.db.CreateCampaign(r.Context(), c); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, c)
}

func (a *API) getCampaign(w http.ResponseWriter, r *http.Request) {
	c, err := byPathID(r, a.db.FindCampaign)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.writeCampaign(w, r, http.StatusOK, c)
}

func (a *API) writeCampaign(w http.ResponseWriter, r *http.Request, status int, c *campaign.Campaign) {
	p, err := a.db.CampaignProgress(r.Context(), c.ID)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, status, campaignView{Campaign: c, Progress: p})
}

func (a *API) listCampaigns(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, err := sortedPage(q, store.CampaignSorts)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var statuses []campaign.Status
	if s := q.Get("status"); s != "" {
		statuses = append(statuses, campaign.Status(s))
	}
	cs, err := a.db.ListCampaignsPage(r.Context(), p, statuses...)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	page := map[string]any{"campaigns": cs}
	if len(cs) == p.Limit {
		page["next_cursor"] = nextCursor(store.CampaignSorts, p.Sort, cs[len(cs)-1])
	}
	writeJSON(w, http.StatusOK, page)
}

func (a *API) updateCampaign(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var p campaignPatch
	if err := a.decodeJSON(w, r, &p); err != nil {
		a.writeError(w, r, err)
		return
	}
	c, err := a.db.FindCampaign(r.Context(), id)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	p.apply(c)
	if err := a.checkSMTPPool(c.SMTPPool); err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.db.UpdateCampaignIf(r.Context(), c, matchedVersion(r)); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// scheduleInput is the body of POST /api/v1/campaigns/{id}/schedule.
type scheduleInput struct {
	// SendAt is RFC 3339 with a zone, such as 2026-03-01T09:00:00+01:00.
	SendAt string `json:"send_at"`
}

func (a *API) scheduleCampaign(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var in scheduleInput
	if err := a.decodeJSON(w, r, &in); err != nil {
		a.writeError(w, r, err)
		return
	}
	at, err := time.Parse(time.RFC3339, in.SendAt)
	if err != nil {
		a.writeError(w, r, campaign.Invalid("invalid schedule", campaign.FieldError{Field: "send_at",
			Message: "must be a time in RFC 3339 form with a zone, such as 2026-03-01T09:00:00+01:00"}))
		return
	}
	a.schedule(w, r, id, at)
}

func (a *API) sendCampaign(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.schedule(w, r, id, time.Now())
}

func (a *API) schedule(w http.ResponseWriter, r *http.Request, id int64, at time.Time) {
	c, err := a.db.ScheduleCampaign(r.Context(), id, at)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.writeCampaign(w, r, http.StatusOK, c)
}

// transition serves pause, resume and cancel: one conditional UPDATE, 409
// with the current status when the campaign cannot make the move.
func (a *API) transition(t campaign.Transition) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		c, err := a.db.TransitionCampaign(r.Context(), id, t)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		if t.Name == campaign.Pause.Name || t.Name == campaign.Cancel.Name {
			// Acknowledge once no worker can start another transaction.
			select {
			case <-time.After(campaign.StopWithin):
			case <-r.Context().Done():
			}
		}
		a.writeCampaign(w, r, http.StatusOK, c)
	}
}

func (a *API) duplicateCampaign(w http.ResponseWriter, r *http.Request) {
	c, err := byPathID(r, a.db.FindCampaign)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	d := c.Duplicate()
	if err := a.db.CreateCampaign(r.Context(), d); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, d)
}

func (a *API) listDeliveries(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	var p store.Page
	if err == nil {
		p, err = sortedPage(r.URL.Query(), store.DeliverySorts)
	}
	if err == nil {
		_, err = a.db.FindCampaign(r.Context(), id)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	ds, err := a.db.ListDeliveriesPage(r.Context(), id, p)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	page := map[string]any{"deliveries": ds}
	if len(ds) == p.Limit {
		page["next_cursor"] = nextCursor(store.DeliverySorts, p.Sort, ds[len(ds)-1])
	}
	writeJSON(w, http.StatusOK, page)
}

// checkSMTPPool refuses a pool that none of the configured SMTP servers
// is in: its campaign could never be sent. Without configured servers
// (an API process that sends nothing) any valid name is taken.
func (a *API) checkSMTPPool(pool string) error {
	if pool == "" || len(a.sending.SMTP) == 0 {
		return nil
	}
	pools := a.sending.pools()
	if slices.Contains(pools, pool) {
		return nil
	}
	known := "no server has a pool= parameter in FUNNEL_SMTP_URL"
	if len(pools) > 0 {
		known = "the pools are " + strings.Join(pools, ", ")
	}
	return campaign.Invalid("invalid campaign", campaign.FieldError{Field: "smtp_pool",
		Message: fmt.Sprintf("no SMTP server is in pool %q: %s", pool, known)})
}
