package store

import (
	"context"
	"time"

	"github.com/funnel-email/funnel/campaign"
)

// ImportContactsBatched is ImportContacts with a chosen batch size, so that
// tests can put batch boundaries where they matter.
func (db *DB) ImportContactsBatched(ctx context.Context, src *campaign.CSVReader, opts campaign.ImportOptions, batchSize int, progress func(campaign.ImportStats)) (campaign.ImportStats, error) {
	return db.importContacts(ctx, src, opts, batchSize, progress)
}

// SetImportTestClock replaces the clock of db, so that tests can age
// import records without sleeping.
func SetImportTestClock(db *DB, now func() time.Time) { db.now = now }
