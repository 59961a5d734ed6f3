package store

import "github.com/funnel-email/funnel/campaign"

// ContactListQuery exposes the statement of ListContacts, so that tests
// can ask each planner how it would run it. ok is false when f is refused
// or can match nothing.
func ContactListQuery(db *DB, f campaign.ContactFilter) (q string, args []any, ok bool) {
	q, args, err := db.contactListQuery(f)
	return q, args, err == nil && q != ""
}
