package ui

import (
	"net/http"
	"strconv"

	"github.com/funnel-email/funnel/campaign"
)

// listPageSize is how many rows a list page shows before its "Next page"
// link.
const listPageSize = 50

// afterParam reads the keyset cursor of a list page, ?after=ID: the page
// starts after that ID. A cursor that is not a non-negative integer is
// EINVALID naming it.
func afterParam(r *http.Request) (int64, error) {
	raw := r.URL.Query().Get("after")
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n < 0 {
		return 0, campaign.Invalid("invalid page", campaign.FieldError{Field: "after", Message: "must be the ID that a “Next page” link gave"})
	}
	return n, nil
}
