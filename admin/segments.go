package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
)

// previewTimeout bounds a preview's queries: a preview is typed
// interactively, and a rule that takes longer needs an index, not patience.
const previewTimeout = 15 * time.Second

// previewSample is how many contacts a preview shows.
const previewSample = 20

// segmentInput is the body of POST and PATCH /api/v1/segments: the rule is
// given as a JSON tree ("rule") or in the text form ("text").
type segmentInput struct {
	Name        *string         `json:"name"`
	Description *string         `json:"description"`
	Rule        json.RawMessage `json:"rule"`
	Text        *string         `json:"text"`
}

// rule decodes the rule of the input; nil when it gives none.
func (in *segmentInput) rule() (*campaign.Rule, error) {
	return decodeRule(in.Rule, in.Text)
}

// decodeRule reads a rule from its JSON tree or its text. Errors are
// EINVALID with the JSON path ("rule.all[2].value") or the line and column
// of the text.
func decodeRule(tree json.RawMessage, text *string) (*campaign.Rule, error) {
	hasTree := len(tree) > 0 && !bytes.Equal(tree, []byte("null"))
	switch {
	case hasTree && text != nil:
		return nil, campaign.Invalid("invalid segment rule", campaign.FieldError{Field: "text", Message: "give the rule either as a tree (rule) or as text, not both"})
	case text != nil:
		return campaign.ParseRule(*text)
	case !hasTree:
		return nil, nil
	}
	var r campaign.Rule
	if err := json.Unmarshal(tree, &r); err != nil {
		if _, ok := err.(*campaign.Error); ok {
			return nil, err
		}
		return nil, campaign.Invalid("invalid segment rule", campaign.FieldError{Field: "rule", Message: "is not valid JSON"})
	}
	return &r, nil
}

// segmentOutput is a segment as the API shows it, with its rule also in
// the text form.
type segmentOutput struct {
	*campaign.Segment
	RuleText string `json:"rule_text"`
}

func segmentOut(s *campaign.Segment) segmentOutput {
	return segmentOutput{Segment: s, RuleText: s.Rule.String()}
}

func (a *API) createSegment(w http.ResponseWriter, r *http.Request) {
	var in segmentInput
	if err := a.decodeJSON(w, r, &in); err != nil {
		a.writeError(w, r, err)
		return
	}
	rule, err := in.rule()
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	s := &campaign.Segment{Rule: rule}
	(&campaign.SegmentPatch{Name: in.Name, Description: in.Description}).Apply(s)
	if err := a.db.CreateSegment(r.Context(), s); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/segments/"+strconv.FormatInt(s.ID, 10))
	writeJSON(w, http.StatusCreated, segmentOut(s))
}

func (a *API) getSegment(w http.ResponseWriter, r *http.Request) {
	s, err := byPathID(r, a.db.FindSegment)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, segmentOut(s))
}

// listSegments answers GET /api/v1/segments?sort=&cursor=&limit=:
// segments in ID order or by name, keyset-paginated like the other lists.
func (a *API) listSegments(w http.ResponseWriter, r *http.Request) {
	p, err := sortedPage(r.URL.Query(), store.SegmentSorts)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	ss, err := a.db.ListSegmentsPage(r.Context(), p)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	page := segmentList{Segments: make([]segmentOutput, len(ss))}
	for i, s := range ss {
		page.Segments[i] = segmentOut(s)
	}
	if len(ss) == p.Limit {
		page.NextCursor = nextCursor(store.SegmentSorts, p.Sort, ss[len(ss)-1])
	}
	writeJSON(w, http.StatusOK, page)
}

func (a *API) updateSegment(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var in segmentInput
	if err := a.decodeJSON(w, r, &in); err != nil {
		a.writeError(w, r, err)
		return
	}
	rule, err := in.rule()
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	s, err := a.db.UpdateSegmentIf(r.Context(), id, campaign.SegmentPatch{Name: in.Name, Description: in.Description, Rule: rule}, matchedVersion(r))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, segmentOut(s))
}

// previewOutput is the body of POST /api/v1/segments/preview.
type previewOutput struct {
	Count   int64               `json:"count"`
	Sample  []*campaign.Contact `json:"sample"`
	QueryMS float64             `json:"query_ms"`
}

// previewSegment answers POST /api/v1/segments/preview. The body is a rule
// tree, {"rule": TREE}, or {"text": "RULE"}; the answer gives the number
// of matching contacts, the first 20 of them, and the time both queries
// took.
func (a *API) previewSegment(w http.ResponseWriter, r *http.Request) {
	var raw json.RawMessage
	if err := a.decodeJSON(w, r, &raw); err != nil {
		a.writeError(w, r, err)
		return
	}
	rule, err := previewRule(raw)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), previewTimeout)
	defer cancel()
	start := time.Now()
	n, err := a.db.CountSegment(ctx, rule)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	sample, err := a.db.SampleSegment(ctx, rule, previewSample)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	ms := float64(time.Since(start).Microseconds()) / 1000
	writeJSON(w, http.StatusOK, previewOutput{Count: n, Sample: sample, QueryMS: ms})
}

// previewRule reads the preview body in any of its three forms.
func previewRule(raw json.RawMessage) (*campaign.Rule, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, campaign.Invalid("invalid segment rule", campaign.FieldError{Field: "rule", Message: "must be a JSON object"})
	}
	tree := raw
	var text *string
	if t, ok := obj["text"]; ok && len(obj) == 1 {
		tree = nil
		if err := json.Unmarshal(t, &text); err != nil || text == nil {
			return nil, campaign.Invalid("invalid segment rule", campaign.FieldError{Field: "text", Message: "must be a string"})
		}
	} else if t, ok := obj["rule"]; ok && len(obj) == 1 {
		tree = t
	}
	rule, err := decodeRule(tree, text)
	if err == nil && rule == nil {
		err = campaign.Invalid("invalid segment rule", campaign.FieldError{Field: "rule", Message: "is required"})
	}
	return rule, err
}

// parseOutput is the body of POST /api/v1/segments/parse: one rule in
// both of its forms.
type parseOutput struct {
	Rule *campaign.Rule `json:"rule"`
	Text string         `json:"text"`
}

// parseSegment answers POST /api/v1/segments/parse. The body is that of
// the preview route (a tree, {"rule": TREE} or {"text": "RULE"}); the
// answer is the rule as a tree and as text, the text as [campaign.Rule.String]
// prints it, so that an editor can move between the two forms. The rule is
// checked as preview and save check it (syntax with line and column, then
// fields, operators, values and referenced segments with JSON paths), but
// no contact is counted.
func (a *API) parseSegment(w http.ResponseWriter, r *http.Request) {
	var raw json.RawMessage
	if err := a.decodeJSON(w, r, &raw); err != nil {
		a.writeError(w, r, err)
		return
	}
	rule, err := previewRule(raw)
	if err == nil {
		err = rule.Validate(0, a.ruleLookup(r.Context()))
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, parseOutput{Rule: rule, Text: rule.String()})
}

// ruleLookup resolves the segments a rule references, for
// [campaign.Rule.Validate].
func (a *API) ruleLookup(ctx context.Context) campaign.RuleLookup {
	return func(id int64) (*campaign.Rule, error) {
		s, err := a.db.FindSegment(ctx, id)
		if err != nil {
			return nil, err
		}
		return s.Rule, nil
	}
}

// listSegmentContacts answers GET /api/v1/segments/{id}/contacts?sort=&cursor=&limit=,
// sorted and paged like GET /api/v1/contacts.
func (a *API) listSegmentContacts(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	p, err := sortedPage(r.URL.Query(), store.ContactSorts)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	cs, err := a.db.ListSegmentContactsPage(r.Context(), id, p)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	page := contactPage{Contacts: cs}
	if len(cs) == p.Limit {
		page.NextCursor = nextCursor(store.ContactSorts, p.Sort, cs[len(cs)-1])
	}
	writeJSON(w, http.StatusOK, page)
}

// indexAttribute answers POST /api/v1/attributes/{key}/index: it creates
// the expression index that segment conditions on the attribute use. It is
// idempotent and may take minutes on a large contact table.
func (a *API) indexAttribute(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if err := a.db.CreateAttributeIndex(r.Context(), key); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"attribute": key, "index": "ready"})
}
