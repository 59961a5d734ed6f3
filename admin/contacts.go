package admin

import (
	"net/http"
	"strconv"
	"time"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
)

// contactInput is the body of POST /api/v1/contacts.
type contactInput struct {
	Email         string                 `json:"email"`
	FirstName     string                 `json:"first_name"`
	LastName      string                 `json:"last_name"`
	Attributes    campaign.Attributes    `json:"attributes"`
	Tags          []string               `json:"tags"`
	Status        campaign.ContactStatus `json:"status"`
	ConsentSource string                 `json:"consent_source"`
	ConsentAt     *time.Time             `json:"consent_at"`
}

func (a *API) createContact(w http.ResponseWriter, r *http.Request) {
	var in contactInput
	if err := a.decodeJSON(w, r, &in); err != nil {
		a.writeError(w, r, err)
		return
	}
	c := &campaign.Contact{
		Email: in.Email, FirstName: in.FirstName, LastName: in.LastName, Attributes: in.Attributes,
		Tags: in.Tags, Status: in.Status, ConsentSource: in.ConsentSource, ConsentAt: in.ConsentAt,
	}
	if err := a.db.CreateContact(r.Context(), c); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/contacts/"+strconv.FormatInt(c.ID, 10))
	writeJSON(w, http.StatusCreated, c)
}

func (a *API) updateContact(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var patch campaign.ContactPatch
	if err := a.decodeJSON(w, r, &patch); err != nil {
		a.writeError(w, r, err)
		return
	}
	c, err := a.db.UpdateContact(r.Context(), id, patch)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// contactPage is the body of GET /api/v1/contacts. NextCursor is empty on
// the last page.
type contactPage struct {
	Contacts   []*campaign.Contact `json:"contacts"`
	NextCursor string              `json:"next_cursor,omitempty"`
}

// listContacts answers GET /api/v1/contacts?email_prefix=&tag=&status=&sort=&cursor=&limit=.
func (a *API) listContacts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := campaign.ContactFilter{EmailPrefix: q.Get("email_prefix"), Tag: q.Get("tag"), Status: campaign.ContactStatus(q.Get("status"))}
	p, err := sortedPage(q, store.ContactSorts)
	f.Sort, f.After, f.AfterValue, f.Limit = p.Sort, p.After, p.AfterValue, p.Limit
	if err == nil && f.Status != "" && !f.Status.Valid() {
		err = campaign.Invalid("invalid query", campaign.FieldError{Field: "status", Message: "must be one of active, unsubscribed, bounced, complained"})
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	cs, err := a.db.ListContacts(r.Context(), f)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	page := contactPage{Contacts: cs}
	if len(cs) == f.Limit {
		page.NextCursor = nextCursor(store.ContactSorts, f.Sort, cs[len(cs)-1])
	}
	writeJSON(w, http.StatusOK, page)
}
