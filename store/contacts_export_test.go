package store

import "github.com/funnel-email/funnel/campaign"

// ContactListQuery exposes the statement of ListContacts, so that tests
// can ask each planner how it would run it.
func ContactListQuery(db *DB, f campaign.ContactFilter) (string, []any, bool) {
	return db.contactListQuery(f)
}
