package store

import (
	"context"
	"time"

	"github.com/funnel-email/funnel/campaign"
)

// SetNow replaces the clock of db for a test.
func SetNow(db *DB, now func() time.Time) { db.now = now }

// CompileRule exposes the rule compiler to tests.
func CompileRule(db *DB, r *campaign.Rule, now time.Time) (string, []any, error) {
	return db.compileRule(context.Background(), r, now)
}

// AttrIndexName exposes the name of an attribute's expression index.
func AttrIndexName(key string) string { return attrIndexName(key) }
