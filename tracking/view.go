package tracking

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/templates"
	"github.com/funnel-email/funnel/token"
)

// viewCSP lets a message show as it does in a mail client (inline styles,
// remote images, stylesheets and fonts, links) and nothing more: no
// script, plugin, frame, form or connection of any kind, and no framing
// by another site.
const viewCSP = "default-src 'none'; img-src http: https: data:; style-src 'unsafe-inline' http: https:; " +
	"font-src http: https: data:; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

// view shows a delivery's message in the browser: the HTML part rendered
// again from the campaign's template, for the delivery's contact, with
// the sender settings and the delivery's own tokens, so its links are the
// delivery's tracked links and its pixel the delivery's open pixel.
//
// The page itself records nothing: the open pixel in it records the open
// through the queue, judged like any other open, exactly as when the
// message is shown by a mail client (and not at all when images are
// blocked). Recording here too would count one reading twice, and would
// count scanners that fetch the link without rendering it.
//
// A preview token gets a page saying so; a token that does not verify, a
// delivery or contact that no longer exists gets the 404 page; a message
// that no longer renders gets a 500 page that says only that.
func (h *Handler) view(w http.ResponseWriter, r *http.Request) {
	t, err := h.cfg.Codec.Decode(r.PathValue("token"), token.View)
	if err != nil {
		notFound(w)
		return
	}
	if t.Preview() {
		page(w, http.StatusOK, "Preview", "This is a preview or test message. Its web version exists once the campaign is sent.")
		return
	}
	if h.cfg.Templates.PublicURL == "" {
		page(w, http.StatusNotFound, "Not available", "The web version of this message is not available.")
		return
	}
	in, tpl, err := h.loadView(r.Context(), t.Delivery)
	switch campaign.ErrorCode(err) {
	case "":
	case campaign.ENOTFOUND:
		notFound(w)
		return
	default:
		unavailable(w, h.cfg.Logger, err)
		return
	}
	if tpl.err != nil {
		h.cfg.Logger.Error("view in browser: template does not compile", "delivery_id", t.Delivery, "err", tpl.err)
		cannotShow(w)
		return
	}
	msg, err := tpl.c.Render(in)
	if err != nil {
		h.cfg.Logger.Error("view in browser: render failed", "delivery_id", t.Delivery, "err", err)
		cannotShow(w)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Security-Policy", viewCSP)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	noCache(hd)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(msg.HTML))
}

func cannotShow(w http.ResponseWriter) {
	page(w, http.StatusInternalServerError, "Message unavailable", "This message cannot be shown in the browser. The email you received is unaffected.")
}

// loadView reads what rendering delivery id needs. A delivery, campaign,
// template or contact that does not exist is an ENOTFOUND error. The
// template is compiled once per version and kept (viewTemplates); its
// compile error, if any, is in the returned entry, not in err.
func (h *Handler) loadView(ctx context.Context, id int64) (templates.Input, *compiledTemplate, error) {
	db := h.cfg.DB
	ds, err := db.SentDeliveries(ctx, []int64{id})
	if err != nil {
		return templates.Input{}, nil, err
	}
	d, ok := ds[id]
	if !ok {
		return templates.Input{}, nil, campaign.Errorf(campaign.ENOTFOUND, "delivery %d not found", id)
	}
	c, err := db.FindCampaign(ctx, d.CampaignID)
	if err != nil {
		return templates.Input{}, nil, err
	}
	ct, err := db.FindContact(ctx, d.ContactID)
	if err != nil {
		return templates.Input{}, nil, err
	}
	t, err := db.FindTemplate(ctx, c.TemplateID)
	if err != nil {
		return templates.Input{}, nil, err
	}
	s, err := db.Sender(ctx)
	if err != nil {
		return templates.Input{}, nil, err
	}
	// As the sender builds it for the campaign (worker.Sender.prepare).
	s.FromName, s.FromEmail = c.FromName, c.FromEmail
	if c.ReplyTo != "" {
		s.ReplyTo = c.ReplyTo
	}
	in := templates.Input{Contact: *ct, Campaign: templates.CampaignData{ID: c.ID, Name: c.Name},
		Sender: s, Delivery: id, Now: d.SentAt}
	return in, h.views.compile(t, h.cfg.Templates), nil
}

// compiledTemplate is one version of a template, compiled, or why it
// does not compile.
type compiledTemplate struct {
	updated time.Time
	c       *templates.Compiled
	err     error
}

// viewTemplates keeps the last compiled version of the templates being
// viewed, by template ID; a template saved since is compiled again.
type viewTemplates struct {
	mu sync.Mutex
	m  map[int64]*compiledTemplate
}

// maxViewTemplates bounds viewTemplates; past it the cache starts over
// (the campaigns being read at once are few).
const maxViewTemplates = 100

func (v *viewTemplates) compile(t *campaign.Template, opts templates.Options) *compiledTemplate {
	v.mu.Lock()
	e := v.m[t.ID]
	v.mu.Unlock()
	if e != nil && e.updated.Equal(t.UpdatedAt) {
		return e
	}
	e = &compiledTemplate{updated: t.UpdatedAt}
	if e.c, e.err = templates.Compile(*t, opts); e.err != nil {
		e.err = fmt.Errorf("compile template %d: %w", t.ID, e.err)
	}
	v.mu.Lock()
	if v.m == nil || len(v.m) >= maxViewTemplates {
		v.m = map[int64]*compiledTemplate{}
	}
	v.m[t.ID] = e
	v.mu.Unlock()
	return e
}
