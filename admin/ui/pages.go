package ui

import (
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
)

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, campaign.Errorf(campaign.ENOTFOUND, "%q is not a valid id", r.PathValue("id"))
	}
	return id, nil
}

// campaignRow is a campaign with its progress, for lists.
type campaignRow struct {
	*campaign.Campaign
	Progress *campaign.Progress
	Sent     int64
}

// Count is how many of the campaign's deliveries are in status s.
func (c campaignRow) Count(s string) int64 { return c.Progress.Counts[campaign.DeliveryStatus(s)] }

func (p *Pages) campaignRows(r *http.Request, after int64, limit int) ([]campaignRow, error) {
	cs, err := p.db.ListCampaigns(r.Context(), after, limit)
	if err != nil {
		return nil, err
	}
	return p.withProgress(r, cs)
}

// activeCampaignRows returns the first limit campaigns that are
// scheduled, sending or paused, with their progress.
func (p *Pages) activeCampaignRows(r *http.Request, limit int) ([]campaignRow, error) {
	cs, err := p.db.ListCampaigns(r.Context(), 0, limit, campaign.StatusSending, campaign.StatusPaused, campaign.StatusScheduled)
	if err != nil {
		return nil, err
	}
	return p.withProgress(r, cs)
}

func (p *Pages) withProgress(r *http.Request, cs []*campaign.Campaign) ([]campaignRow, error) {
	rows := make([]campaignRow, 0, len(cs))
	for _, c := range cs {
		pr, err := p.db.CampaignProgress(r.Context(), c.ID)
		if err != nil {
			return nil, err
		}
		rows = append(rows, campaignRow{Campaign: c, Progress: pr, Sent: pr.Counts[campaign.DeliverySent]})
	}
	return rows, nil
}

// dashboardExactBelow is the list size from which the dashboard shows
// PostgreSQL's estimate of the number of contacts, marked as such, rather
// than counting every row on each load (about 250 ms for 1,000,000).
const dashboardExactBelow = 100_000

// dashboardRecent is how many ended campaigns the dashboard shows.
const dashboardRecent = 5

// Dashboard shows the campaigns in progress (app.js keeps their progress
// live), the results of the campaigns that ended last, the leads of the
// week and the size of the list. An ended campaign's counts are read from
// what was recorded once its deliveries settled, so its results cost one
// row each, not a count of its deliveries.
func (p *Pages) Dashboard(w http.ResponseWriter, r *http.Request) {
	n, err := p.db.EstimateContacts(r.Context(), dashboardExactBelow)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	weekLeads, err := p.db.CountLeadsSince(r.Context(), time.Now().Add(-7*24*time.Hour))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	data := map[string]any{"Contacts": groupDigits(n.N), "ContactsApproximate": n.Approximate, "LeadsThisWeek": weekLeads}
	if n.Approximate {
		data["Contacts"] = groupDigits(roundSignificant(n.N, 3))
	}
	if viewerFrom(r.Context()).Can("marketer") {
		rows, err := p.activeCampaignRows(r, 10)
		if err != nil {
			p.fail(w, r, err)
			return
		}
		data["Campaigns"] = rows
		ended, err := p.db.RecentFinishedCampaigns(r.Context(), dashboardRecent)
		if err == nil {
			rows, err = p.withProgress(r, ended)
		}
		if err != nil {
			p.fail(w, r, err)
			return
		}
		data["Recent"] = rows
	}
	p.render(w, r, http.StatusOK, "dashboard", "Dashboard", "dashboard", data)
}

// groupDigits writes n with a comma between groups of three digits.
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// roundSignificant rounds a non-negative n to digits significant digits.
func roundSignificant(n int64, digits int) int64 {
	unit, limit := int64(1), int64(1)
	for range digits {
		limit *= 10
	}
	for v := n; v >= limit; v /= 10 {
		unit *= 10
	}
	return (n + unit/2) / unit * unit
}

// Contacts lists contacts, searched by email prefix, 50 a page.
func (p *Pages) Contacts(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	cs, err := p.db.ListContacts(r.Context(), campaign.ContactFilter{EmailPrefix: strings.ToLower(q), After: after, Limit: 50})
	if err != nil {
		p.fail(w, r, err)
		return
	}
	var next int64
	if len(cs) == 50 {
		next = cs[len(cs)-1].ID
	}
	p.render(w, r, http.StatusOK, "contacts", "Contacts", "contacts", map[string]any{"Q": q, "Contacts": cs, "Next": next})
}

// Contact shows one contact and the timeline of its events.
func (p *Pages) Contact(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	var c *campaign.Contact
	if err == nil {
		c, err = p.db.FindContact(r.Context(), id)
	}
	var events []campaign.Event
	if err == nil {
		events, err = p.db.ContactEvents(r.Context(), id)
	}
	var score *campaign.ScoreReport
	if err == nil {
		score, err = p.db.ContactScore(r.Context(), id)
	}
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "contact", c.Email, "contacts", map[string]any{"Contact": c, "Events": events, "Score": score})
}

// Import shows the CSV upload form; app.js uploads and polls progress.
func (p *Pages) Import(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, "import", "Import contacts", "contacts", nil)
}

// Segments lists segments, 50 a page (?after=ID).
func (p *Pages) Segments(w http.ResponseWriter, r *http.Request) {
	after, err := afterParam(r)
	var ss []*campaign.Segment
	if err == nil {
		ss, err = p.db.ListSegmentsAfter(r.Context(), after, listPageSize)
	}
	if err != nil {
		p.fail(w, r, err)
		return
	}
	var next int64
	if len(ss) == listPageSize {
		next = ss[len(ss)-1].ID
	}
	p.render(w, r, http.StatusOK, "segments", "Segments", "segments", map[string]any{"Segments": ss, "Next": next})
}

// Segment edits a segment ({id}) or makes a new one, as text and in a
// rule builder (builder.js).
func (p *Pages) Segment(w http.ResponseWriter, r *http.Request) {
	s := &campaign.Segment{}
	if r.PathValue("id") != "" {
		id, err := pathID(r)
		if err == nil {
			s, err = p.db.FindSegment(r.Context(), id)
		}
		if err != nil {
			p.fail(w, r, err)
			return
		}
	}
	text := ""
	if s.Rule != nil {
		text = s.Rule.String()
	}
	title := "New segment"
	if s.ID != 0 {
		title = s.Name
	}
	// The rule builder offers campaigns and the other segments by name.
	cs, err := p.db.ListCampaigns(r.Context(), 0, 500)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	all, err := p.db.ListSegments(r.Context())
	if err != nil {
		p.fail(w, r, err)
		return
	}
	others := make([]*campaign.Segment, 0, len(all))
	for _, o := range all {
		if o.ID != s.ID {
			others = append(others, o)
		}
	}
	p.render(w, r, http.StatusOK, "segment", title, "segments", map[string]any{"Segment": s, "Text": text, "Campaigns": cs, "Segments": others})
}

// Templates lists templates, 50 a page (?after=ID).
func (p *Pages) Templates(w http.ResponseWriter, r *http.Request) {
	after, err := afterParam(r)
	var ts []*campaign.Template
	if err == nil {
		ts, err = p.db.ListTemplates(r.Context(), after, listPageSize)
	}
	if err != nil {
		p.fail(w, r, err)
		return
	}
	var next int64
	if len(ts) == listPageSize {
		next = ts[len(ts)-1].ID
	}
	p.render(w, r, http.StatusOK, "templates", "Templates", "templates", map[string]any{"Templates": ts, "Next": next})
}

// Template edits a template ({id}) or makes a new one, with a preview.
func (p *Pages) Template(w http.ResponseWriter, r *http.Request) {
	t := &campaign.Template{Layout: "default"}
	if r.PathValue("id") != "" {
		id, err := pathID(r)
		if err == nil {
			t, err = p.db.FindTemplate(r.Context(), id)
		}
		if err != nil {
			p.fail(w, r, err)
			return
		}
	}
	title := "New template"
	if t.ID != 0 {
		title = t.Name
	}
	p.render(w, r, http.StatusOK, "template", title, "templates", t)
}

// Campaigns lists campaigns with their progress, 50 a page (?after=ID).
func (p *Pages) Campaigns(w http.ResponseWriter, r *http.Request) {
	after, err := afterParam(r)
	var rows []campaignRow
	if err == nil {
		rows, err = p.campaignRows(r, after, listPageSize)
	}
	if err != nil {
		p.fail(w, r, err)
		return
	}
	var next int64
	if len(rows) == listPageSize {
		next = rows[len(rows)-1].ID
	}
	p.render(w, r, http.StatusOK, "campaigns", "Campaigns", "campaigns", map[string]any{"Campaigns": rows, "Next": next})
}

// NewCampaign creates a campaign from a template and segments.
func (p *Pages) NewCampaign(w http.ResponseWriter, r *http.Request) {
	ts, err := p.db.ListTemplates(r.Context(), 0, 500)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	ss, err := p.db.ListSegments(r.Context())
	if err != nil {
		p.fail(w, r, err)
		return
	}
	sender, err := p.db.Sender(r.Context())
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "campaign_new", "New campaign", "campaigns", map[string]any{"Templates": ts, "Segments": ss, "Sender": sender, "Pools": p.pools})
}

// Campaign shows a campaign: its controls, live progress and report.
func (p *Pages) Campaign(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	var c *campaign.Campaign
	if err == nil {
		c, err = p.db.FindCampaign(r.Context(), id)
	}
	var pr *campaign.Progress
	if err == nil {
		pr, err = p.db.CampaignProgress(r.Context(), id)
	}
	var t *campaign.Template
	if err == nil {
		t, err = p.db.FindTemplate(r.Context(), c.TemplateID)
	}
	if err != nil {
		p.fail(w, r, err)
		return
	}
	rep, err := p.db.CampaignReport(r.Context(), id)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	leads, err := p.db.CampaignLeads(r.Context(), id)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	segs, err := p.db.ListSegments(r.Context())
	if err != nil {
		p.fail(w, r, err)
		return
	}
	counts := map[string]int64{}
	for k, v := range pr.Counts {
		counts[string(k)] = v
	}
	p.render(w, r, http.StatusOK, "campaign", c.Name, "campaigns", map[string]any{"Campaign": c, "Progress": pr, "Counts": counts,
		"Template": t, "Editable": c.Status.Editable(), "Segments": segmentNames(segs, c.SegmentIDs), "Excluded": segmentNames(segs, c.ExcludeSegmentIDs), "Report": rep, "Chart": hourChart(rep.Hours), "Leads": leads,
		"Cancellable": c.Status != campaign.StatusSent && c.Status != campaign.StatusCancelled && c.Status != campaign.StatusFailed})
}

// segmentNames names the segments ids among all, in the order of ids; a
// segment deleted since is named by its id.
func segmentNames(all []*campaign.Segment, ids []int64) []string {
	byID := make(map[int64]string, len(all))
	for _, s := range all {
		byID[s.ID] = s.Name
	}
	names := make([]string, len(ids))
	for i, id := range ids {
		name, ok := byID[id]
		if !ok {
			name = fmt.Sprintf("segment %d (deleted)", id)
		}
		names[i] = name
	}
	return names
}

// Tokens lets a user manage their API tokens (app.js calls the API).
func (p *Pages) Tokens(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, "tokens", "API tokens", "tokens", nil)
}

// Outbox lists funnel dev's caught messages, newest first.
func (p *Pages) Outbox(w http.ResponseWriter, r *http.Request) {
	msgs := p.caught()
	for i, j := 0, len(msgs)-1; i < j; i, j = i+1, j-1 {
		msgs[i], msgs[j] = msgs[j], msgs[i]
	}
	p.render(w, r, http.StatusOK, "outbox", "Outbox", "outbox", msgs)
}

// OutboxMessage shows one caught message as a mail client would: its
// headers, the HTML part in a sandboxed iframe and the text part.
func (p *Pages) OutboxMessage(w http.ResponseWriter, r *http.Request) {
	m, ok := p.message(r)
	if !ok {
		p.Error(w, r, http.StatusNotFound, "No caught message with that id (the outbox keeps the latest ones only).")
		return
	}
	parts := parseMessage(m.Raw)
	p.render(w, r, http.StatusOK, "outbox_message", m.Subject, "outbox", map[string]any{"Message": m, "Parts": parts})
}

// OutboxHTML answers the HTML part of a caught message for the iframe,
// under a CSP that forbids scripts, forms and plugins.
func (p *Pages) OutboxHTML(w http.ResponseWriter, r *http.Request) {
	m, ok := p.message(r)
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'; img-src * data:; style-src 'unsafe-inline'; frame-ancestors 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	io.WriteString(w, parseMessage(m.Raw).HTML)
}

func (p *Pages) message(r *http.Request) (Message, bool) {
	id, err := pathID(r)
	if err != nil || p.caught == nil {
		return Message{}, false
	}
	for _, m := range p.caught() {
		if m.ID == id {
			return m, true
		}
	}
	return Message{}, false
}

// mailParts is a parsed message.
type mailParts struct {
	Headers    []campaign.Header
	HTML, Text string
}

// parseMessage splits a raw message into the headers a reader sees and
// its HTML and text parts. A part it cannot decode is left out.
func parseMessage(raw []byte) mailParts {
	var out mailParts
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		out.Text = string(raw)
		return out
	}
	dec := new(mime.WordDecoder)
	for _, k := range []string{"From", "To", "Reply-To", "Subject", "Date", "List-Unsubscribe"} {
		if v := msg.Header.Get(k); v != "" {
			if d, err := dec.DecodeHeader(v); err == nil {
				v = d
			}
			out.Headers = append(out.Headers, campaign.Header{Name: k, Value: v})
		}
	}
	walkPart(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body, &out, 0)
	return out
}

func walkPart(ctype, encoding string, body io.Reader, out *mailParts, depth int) {
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		mt = "text/plain"
	}
	if strings.HasPrefix(mt, "multipart/") && depth < 5 {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			part, err := mr.NextPart()
			if err != nil {
				return
			}
			walkPart(part.Header.Get("Content-Type"), part.Header.Get("Content-Transfer-Encoding"), part, out, depth+1)
		}
	}
	switch strings.ToLower(encoding) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, &stripNewlines{r: body})
	}
	b, _ := io.ReadAll(io.LimitReader(body, 4<<20))
	switch {
	case mt == "text/html" && out.HTML == "":
		out.HTML = string(b)
	case mt == "text/plain" && out.Text == "":
		out.Text = string(b)
	}
}

// stripNewlines drops CR and LF from a base64 body.
type stripNewlines struct{ r io.Reader }

func (s *stripNewlines) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	j := 0
	for _, c := range p[:n] {
		if c != '\r' && c != '\n' {
			p[j] = c
			j++
		}
	}
	return j, err
}

// chartBar is one hour of the engagement chart, scaled to 0-100.
type chartBar struct {
	Hour          time.Time
	Opens, Clicks int64
	OpenH, ClickH int64
	X             int
}

// hourChart scales hourly counts for the SVG bar chart on the report.
func hourChart(hours []store.HourCount) []chartBar {
	var peak int64 = 1
	for _, h := range hours {
		peak = max(peak, h.Opens, h.Clicks)
	}
	out := make([]chartBar, len(hours))
	for i, h := range hours {
		out[i] = chartBar{Hour: h.Hour, Opens: h.Opens, Clicks: h.Clicks, OpenH: h.Opens * 100 / peak, ClickH: h.Clicks * 100 / peak, X: i * 24}
	}
	return out
}

// Users lists the users for an admin, enabled and disabled, 50 a page
// (?after=ID), with their controls and a form to add one.
func (p *Pages) Users(w http.ResponseWriter, r *http.Request) {
	after, err := afterParam(r)
	var us []*campaign.User
	if err == nil {
		us, err = p.db.ListAllUsers(r.Context(), store.UserFilter{After: after, Limit: listPageSize})
	}
	if err != nil {
		p.fail(w, r, err)
		return
	}
	var next int64
	if len(us) == listPageSize {
		next = us[len(us)-1].ID
	}
	p.render(w, r, http.StatusOK, "users", "Users", "users", map[string]any{"Users": us, "Next": next, "Roles": []campaign.Role{campaign.RoleAdmin, campaign.RoleMarketer, campaign.RoleSales}})
}
