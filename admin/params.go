package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/funnel-email/funnel/campaign"
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

// pageQuery parses the keyset page of a list route: ?cursor= (the last ID
// of the previous page) and ?limit=.
func pageQuery(q url.Values) (after int64, limit int, err error) {
	if after, err = queryInt(q.Get("cursor"), "cursor", 0); err != nil {
		return 0, 0, err
	}
	limit, err = queryLimit(q.Get("limit"))
	return after, limit, err
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
