package admin

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
)

// Mail is what the template routes need of the template engine and the
// mailer.
type Mail interface {
	// Check returns an EINVALID error, with line and column, for a
	// template that must not be saved.
	Check(t campaign.Template) error
	// Preview renders t for c (sample data when nil) as it would be sent.
	Preview(t campaign.Template, s campaign.Sender, c *campaign.Contact) (*campaign.Preview, error)
	// SendTest mails the preview to the given addresses, marked as a test.
	SendTest(ctx context.Context, t campaign.Template, s campaign.Sender, c *campaign.Contact, to []string) error
}

// maxTestRecipients bounds a test send, which is not a way to mail a list.
const maxTestRecipients = 10

// templateInput is the body of POST /api/v1/templates.
type templateInput struct {
	Name      string `json:"name"`
	Subject   string `json:"subject"`
	HTML      string `json:"html"`
	Text      string `json:"text"`
	Layout    string `json:"layout"`
	Preheader string `json:"preheader"`
}

// templatePatch is the body of PATCH /api/v1/templates/{id}; absent fields
// are kept.
type templatePatch struct {
	Name      *string `json:"name"`
	Subject   *string `json:"subject"`
	HTML      *string `json:"html"`
	Text      *string `json:"text"`
	Layout    *string `json:"layout"`
	Preheader *string `json:"preheader"`
}

func (p templatePatch) apply(t *campaign.Template) {
	for _, f := range []struct {
		dst *string
		src *string
	}{{&t.Name, p.Name}, {&t.Subject, p.Subject}, {&t.HTML, p.HTML}, {&t.Text, p.Text}, {&t.Layout, p.Layout}, {&t.Preheader, p.Preheader}} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
}

// checkTemplate runs the field checks first, then the template parser, so
// that a missing subject is reported as such rather than as a parse error.
func (a *API) checkTemplate(t campaign.Template) error {
	if err := t.Validate(); err != nil {
		return err
	}
	return a.mail.Check(t)
}

func (a *API) createTemplate(w http.ResponseWriter, r *http.Request) {
	var in templateInput
	if err := a.decodeJSON(w, r, &in); err != nil {
		a.writeError(w, r, err)
		return
	}
	t := campaign.Template{Name: in.Name, Subject: in.Subject, HTML: in.HTML, Text: in.Text, Layout: in.Layout, Preheader: in.Preheader}
	if err := a.checkTemplate(t); err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.db.CreateTemplate(r.Context(), &t); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/templates/"+strconv.FormatInt(t.ID, 10))
	writeJSON(w, http.StatusCreated, t)
}

func (a *API) updateTemplate(w http.ResponseWriter, r *http.Request) {
	t, err := byPathID(r, a.db.FindTemplate)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var p templatePatch
	if err := a.decodeJSON(w, r, &p); err != nil {
		a.writeError(w, r, err)
		return
	}
	p.apply(t)
	if err := a.checkTemplate(*t); err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.db.UpdateTemplateIf(r.Context(), t, matchedVersion(r)); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (a *API) listTemplates(w http.ResponseWriter, r *http.Request) {
	p, err := sortedPage(r.URL.Query(), store.TemplateSorts)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	ts, err := a.db.ListTemplatesPage(r.Context(), p)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	page := map[string]any{"templates": ts}
	if len(ts) == p.Limit {
		page["next_cursor"] = nextCursor(store.TemplateSorts, p.Sort, ts[len(ts)-1])
	}
	writeJSON(w, http.StatusOK, page)
}

// previewInput is the body of the preview and test routes.
type previewInput struct {
	// ContactID chooses the contact to render for; 0 uses sample data.
	ContactID int64 `json:"contact_id"`
	// To lists the test recipients (test route only).
	To []string `json:"to"`
}

func (a *API) previewTemplate(w http.ResponseWriter, r *http.Request) {
	t, sender, contact, in, err := a.previewRequest(w, r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if len(in.To) > 0 {
		a.writeError(w, r, campaign.Invalid("invalid preview", campaign.FieldError{Field: "to", Message: "belongs to the test route, POST .../test"}))
		return
	}
	p, err := a.mail.Preview(*t, sender, contact)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (a *API) testTemplate(w http.ResponseWriter, r *http.Request) {
	t, sender, contact, in, err := a.previewRequest(w, r)
	if err == nil {
		err = validateTestRecipients(in.To)
	}
	if err == nil {
		err = a.mail.SendTest(r.Context(), *t, sender, contact, in.To)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sent_to": in.To})
}

func validateTestRecipients(to []string) error {
	if len(to) == 0 || len(to) > maxTestRecipients {
		return campaign.Invalid("invalid test send", campaign.FieldError{Field: "to", Message: fmt.Sprintf("list 1 to %d addresses", maxTestRecipients)})
	}
	for i, addr := range to {
		if err := campaign.ValidateEmail(campaign.NormalizeEmail(addr)); err != nil {
			return campaign.Invalid("invalid test send", campaign.FieldError{Field: fmt.Sprintf("to[%d]", i), Message: err.Error()})
		}
	}
	return nil
}

// previewRequest loads what the preview and test routes share: the
// template, the sender settings, the chosen contact and the body.
func (a *API) previewRequest(w http.ResponseWriter, r *http.Request) (*campaign.Template, campaign.Sender, *campaign.Contact, previewInput, error) {
	var in previewInput
	t, err := byPathID(r, a.db.FindTemplate)
	if err != nil {
		return nil, campaign.Sender{}, nil, in, err
	}
	if r.ContentLength != 0 {
		if err := a.decodeJSON(w, r, &in); err != nil {
			return nil, campaign.Sender{}, nil, in, err
		}
	}
	sender, err := a.db.Sender(r.Context())
	if err != nil {
		return nil, campaign.Sender{}, nil, in, err
	}
	contact, err := a.previewContact(r.Context(), in.ContactID)
	if err != nil {
		return nil, campaign.Sender{}, nil, in, err
	}
	return t, sender, contact, in, nil
}

// previewContact finds the contact a preview is rendered for: nil (sample
// data) for id 0, and an EINVALID error on contact_id for a negative or
// unknown id. Other failures are returned as they are.
func (a *API) previewContact(ctx context.Context, id int64) (*campaign.Contact, error) {
	switch {
	case id == 0:
		return nil, nil
	case id < 0:
		return nil, campaign.Invalid("invalid preview", campaign.FieldError{Field: "contact_id", Message: "must be a contact's id, or 0 for sample data"})
	}
	c, err := a.db.FindContact(ctx, id)
	if campaign.ErrorCode(err) == campaign.ENOTFOUND {
		return nil, campaign.Invalid("invalid preview", campaign.FieldError{Field: "contact_id",
			Message: fmt.Sprintf("no contact has id %d: choose another contact, or none for sample data", id)})
	}
	return c, err
}

func (a *API) getSender(w http.ResponseWriter, r *http.Request) {
	s, err := a.db.Sender(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (a *API) putSender(w http.ResponseWriter, r *http.Request) {
	var s campaign.Sender
	if err := a.decodeJSON(w, r, &s); err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.db.SetSender(r.Context(), s); err != nil {
		a.writeError(w, r, err)
		return
	}
	s, _ = a.db.Sender(r.Context())
	writeJSON(w, http.StatusOK, s)
}
