package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/funnel-email/funnel/campaign"
)

// Versions of editable resources.
//
// The updated_at of a template, segment or campaign is its version: the
// admin API builds its ETag from it, and an update that names the version
// it was based on (If-Match) is applied only when the row still has that
// version, in the UPDATE itself (WHERE id = ? AND updated_at = ?). Every
// update writes a new version strictly later than the one it replaces,
// even within one microsecond (the resolution Postgres keeps), so that a
// version never names two different contents.

// lockVersion reads the version of row id of table inside tx and holds the
// row until tx ends (SELECT ... FOR UPDATE on Postgres; SQLite's immediate
// transactions already hold the database). It returns the current version
// and the one the update must write. A row that does not exist is
// ENOTFOUND; one whose version is not want (when want is not zero) is
// ESTALE. what names the resource in errors ("template").
func (db *DB) lockVersion(ctx context.Context, tx *sqlxTx, table, what string, id int64, want time.Time) (cur, next time.Time, err error) {
	q := `SELECT updated_at FROM ` + table + ` WHERE id = ?`
	if db.Dialect == Postgres {
		q += ` FOR UPDATE`
	}
	if err := tx.QueryRowxContext(ctx, db.rebind(q), id).Scan(&cur); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return cur, next, campaign.Errorf(campaign.ENOTFOUND, "%s %d not found", what, id)
		}
		return cur, next, fmt.Errorf("read version of %s %d: %w", what, id, err)
	}
	cur = cur.UTC()
	if !want.IsZero() && !cur.Equal(want) {
		return cur, next, staleError(what, id)
	}
	return cur, nextVersion(cur, db.now()), nil
}

// nextVersion is the version an update writes over cur: now, or a
// microsecond after cur when the clock has not moved past it (two updates
// within one microsecond, or a clock behind another server's).
func nextVersion(cur, now time.Time) time.Time {
	if floor := cur.Add(time.Microsecond); now.Before(floor) {
		return floor
	}
	return now
}

// staleError is the ESTALE error of an update based on an old version.
func staleError(what string, id int64) error {
	return campaign.Errorf(campaign.ESTALE, "%s %d was changed by someone else since you loaded it: reload it and apply your change again", what, id)
}
