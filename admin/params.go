package admin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
)

// Default and largest page sizes of list routes.
const (
	defaultPageSize = 50
	maxPageSize     = 500
)

// pathID parses the {id} path value as a positive integer.
func pathID(r *http.Request) (int64, error) {
	raw := r.PathValue("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return 0, campaign.Errorf(campaign.ENOTFOUND, "%q is not a valid id", raw)
	}
	return id, nil
}

// queryInt parses an optional non-negative integer query parameter.
func queryInt(raw, name string, def int64) (int64, error) {
	if raw == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n < 0 {
		return 0, &campaign.Error{Code: campaign.EMALFORMED, Message: "malformed query",
			Details: []campaign.FieldError{{Field: name, Message: fmt.Sprintf("%q is not a non-negative integer", raw)}}}
	}
	return n, nil
}

// queryLimit parses the page size, defaulting to defaultPageSize.
func queryLimit(raw string) (int, error) {
	n, err := queryInt(raw, "limit", defaultPageSize)
	if err != nil {
		return 0, err
	}
	if n < 1 || n > maxPageSize {
		return 0, campaign.Invalid("invalid query", campaign.FieldError{Field: "limit", Message: fmt.Sprintf("must be between 1 and %d", maxPageSize)})
	}
	return int(n), nil
}

// sortedPage parses the keyset page of a list route whose orders are
// sorts: ?sort=, ?cursor= (the next_cursor of the previous page) and
// ?limit=.
func sortedPage[T any](q url.Values, sorts store.Sorts[T]) (p store.Page, err error) {
	if p.Sort, err = sortQuery(q, sorts); err != nil {
		return p, err
	}
	if p.After, p.AfterValue, err = pageCursor(q.Get("cursor"), p.Sort, sorts.Default); err != nil {
		return p, err
	}
	p.Limit, err = queryLimit(q.Get("limit"))
	return p, err
}

// sortQuery parses ?sort=: "key" or "-key" (descending), one of sorts;
// without it, the list's default. Another key is EINVALID naming the
// accepted ones.
func sortQuery[T any](q url.Values, sorts store.Sorts[T]) (campaign.Sort, error) {
	return sorts.Resolve(campaign.ParseSort(q.Get("sort")))
}

// listCursor is the next_cursor of a page in a sort other than the list's
// default: where the page ended, and in which sort. It travels as the
// URL-safe base64 of its JSON, which clients treat as opaque.
type listCursor struct {
	Sort  string `json:"sort"`
	ID    int64  `json:"id"`
	Value any    `json:"value"` // the sort key's value; null for an ID sort
}

// nextCursor is the next_cursor of a full page in sort whose last row is
// last. In the list's default sort it is the row's ID, as it was before
// lists could be sorted, so that clients' saved cursors keep working.
func nextCursor[T any](sorts store.Sorts[T], sort campaign.Sort, last T) string {
	id, value := sorts.Last(sort, last)
	if sort == sorts.Default {
		return strconv.FormatInt(id, 10)
	}
	return encodeCursor(listCursor{Sort: sort.String(), ID: id, Value: value})
}

func encodeCursor(c listCursor) string {
	b, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("admin: encode cursor: %v", err)) // a string or a float64 always encodes
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor reads an opaque cursor; false when raw is not one.
func decodeCursor(raw string) (listCursor, bool) {
	var c listCursor
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || json.Unmarshal(b, &c) != nil || c.Sort == "" || c.ID <= 0 {
		return listCursor{}, false
	}
	return c, true
}

// pageCursor parses ?cursor= for a page in sort: the ID of the last row
// (the form of the default sort def) or an opaque cursor. A cursor that is
// neither is EMALFORMED; one made for another sort is EINVALID.
func pageCursor(raw string, sort, def campaign.Sort) (after int64, value any, err error) {
	if raw == "" {
		return 0, nil, nil
	}
	c, ok := decodeCursor(raw)
	if id, err := strconv.ParseInt(raw, 10, 64); err == nil && id >= 0 {
		c, ok = listCursor{Sort: def.String(), ID: id}, true
	}
	if !ok {
		return 0, nil, &campaign.Error{Code: campaign.EMALFORMED, Message: "malformed query",
			Details: []campaign.FieldError{{Field: "cursor", Message: "is not a next_cursor this API gave"}}}
	}
	if c.Sort != sort.String() {
		return 0, nil, cursorSortError(c.Sort, sort)
	}
	return c.ID, c.Value, nil
}

// cursorSortError refuses a cursor made for the sort made in a request
// for another sort.
func cursorSortError(made string, sort campaign.Sort) error {
	return campaign.Invalid("invalid query", campaign.FieldError{Field: "cursor",
		Message: fmt.Sprintf("was made for sort=%s, not sort=%s: send it with the sort it came with, or leave it out to start from the first page", made, sort)})
}

// byPathID loads the resource that the {id} path value names.
func byPathID[T any](r *http.Request, find func(context.Context, int64) (T, error)) (T, error) {
	id, err := pathID(r)
	if err != nil {
		var zero T
		return zero, err
	}
	return find(r.Context(), id)
}

// getByID answers GET .../{id} routes with find's result as JSON.
func getByID[T any](a *API, find func(context.Context, int64) (T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := byPathID(r, find)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

// deleteByID answers DELETE .../{id} routes with 204 once del succeeds.
func (a *API) deleteByID(del func(context.Context, int64) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err == nil {
			err = del(r.Context(), id)
		}
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}
