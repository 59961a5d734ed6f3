package store

import (
	"context"
	"fmt"
)

// Read-only queries for the admin's sending-setup pages.

// FromAddress is a From address that campaigns use, with how many.
type FromAddress struct {
	Email     string
	Campaigns int64
}

// CampaignFromAddresses returns every distinct From address of the
// campaigns (lower-cased), in order, with the number of campaigns that
// use it.
func (db *DB) CampaignFromAddresses(ctx context.Context) ([]FromAddress, error) {
	rows, err := db.QueryContext(ctx, `SELECT LOWER(from_email), COUNT(*) FROM campaigns GROUP BY LOWER(from_email) ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("list campaign from addresses: %w", err)
	}
	defer rows.Close()
	out := []FromAddress{}
	for rows.Next() {
		var a FromAddress
		if err := rows.Scan(&a.Email, &a.Campaigns); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// ScoreRuleAuthors returns, for each stored version of the scoring rules,
// the email of the user who saved it. A version saved by a token without
// a user, or by a user since deleted, is absent.
//
// It belongs with the other scoring queries in score.go; it lives here
// because this file is the one the admin pages may add reads to.
func (db *DB) ScoreRuleAuthors(ctx context.Context) (map[int64]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT s.version, u.email FROM score_rules s JOIN users u ON u.id = s.created_by`)
	if err != nil {
		return nil, fmt.Errorf("list scoring rule authors: %w", err)
	}
	defer rows.Close()
	out := map[int64]string{}
	for rows.Next() {
		var version int64
		var email string
		if err := rows.Scan(&version, &email); err != nil {
			return nil, err
		}
		out[version] = email
	}
	return out, rows.Err()
}
