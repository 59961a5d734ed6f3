package store

import (
	"context"
	"fmt"

	"github.com/funnel-email/funnel/campaign"
)

// CountSegment returns how many contacts match rule now. The database does
// the counting; no contact is loaded. An invalid rule is EINVALID.
func (db *DB) CountSegment(ctx context.Context, rule *campaign.Rule) (int64, error) {
	where, args, err := db.compileRule(ctx, rule, db.now())
	if err != nil {
		return 0, err
	}
	var n int64
	if err := db.GetContext(ctx, &n, db.rebind(`SELECT count(*) FROM contacts WHERE `+where), args...); err != nil {
		return 0, fmt.Errorf("count segment: %w", err)
	}
	return n, nil
}

// SampleSegment returns up to n (at most MaxPageSize) contacts that match
// rule now, the oldest first: a stable preview, not a random draw.
func (db *DB) SampleSegment(ctx context.Context, rule *campaign.Rule, n int) ([]*campaign.Contact, error) {
	where, args, err := db.compileRule(ctx, rule, db.now())
	if err != nil {
		return nil, err
	}
	return db.segmentContacts(ctx, where, args, Page{Limit: n})
}

// ListSegmentContacts returns the contacts of the segment with the given ID
// that have an ID greater than after, in ID order, at most limit of them
// (MaxPageSize when limit is 0 or larger). Membership is evaluated at the
// time of the call. It returns ENOTFOUND for an unknown segment.
func (db *DB) ListSegmentContacts(ctx context.Context, segmentID, after int64, limit int) ([]*campaign.Contact, error) {
	return db.ListSegmentContactsPage(ctx, segmentID, Page{After: after, Limit: limit})
}

// ListSegmentContactsPage returns a page of the contacts of the segment
// with the given ID in the order of ContactSorts, evaluated at the time of
// the call. It returns ENOTFOUND for an unknown segment and EINVALID for
// an unknown sort.
func (db *DB) ListSegmentContactsPage(ctx context.Context, segmentID int64, p Page) ([]*campaign.Contact, error) {
	s, err := db.FindSegment(ctx, segmentID)
	if err != nil {
		return nil, err
	}
	where, args, err := db.compileRule(ctx, s.Rule, db.now())
	if err != nil {
		return nil, fmt.Errorf("segment %d: %w", segmentID, err)
	}
	return db.segmentContacts(ctx, where, args, p)
}

func (db *DB) segmentContacts(ctx context.Context, where string, args []any, p Page) ([]*campaign.Contact, error) {
	cond, pageArgs, order, err := ContactSorts.keyset(p.Sort, "contacts.id", p.After, p.AfterValue)
	if err != nil {
		return nil, err
	}
	q := `SELECT ` + contactColumns + ` FROM contacts` + whereClause(cond, where) + ` ORDER BY ` + order + ` LIMIT ?`
	args = append(append(pageArgs, args...), p.limit())
	var rows []contactRow
	if err := db.SelectContext(ctx, &rows, db.rebind(q), args...); err != nil {
		return nil, fmt.Errorf("list segment contacts: %w", err)
	}
	return contactsOf(rows)
}

// CreateAttributeIndex makes segment conditions on the attribute key fast.
// It is idempotent. An invalid key is EINVALID.
//
// On SQLite it creates an expression index on AttrExpr.
//
// On Postgres it is an administrative operation that rewrites the contacts
// table: it adds a stored generated column attr_KEY_HASH equal to AttrExpr,
// which takes an ACCESS EXCLUSIVE lock on contacts for the whole rewrite
// (about 9 s for 1,000,000 contacts with their indexes, during which
// imports, sends and segment counts on contacts wait), and gives up with an
// error if it cannot take the lock within 10 s. It then builds a btree index
// on the column CONCURRENTLY (about 3 s for 1,000,000 contacts, without
// blocking writes; a build that fails leaves no invalid index behind), and
// runs VACUUM (ANALYZE) on contacts so that the planner has statistics for
// the column and can answer from the index alone at once. The index covers
// id and tags: a count of "attribute = X", alone or with tags and
// engagement conditions, then reads no table page. Postgres never answers
// from an index on an expression alone, which is why the column exists.
// An expression index left by an earlier version under the same name is
// replaced.
func (db *DB) CreateAttributeIndex(ctx context.Context, key string) error {
	expr, err := AttrExpr(db.Dialect, key)
	if err != nil {
		return err
	}
	name := attrIndexName(key)
	if db.Dialect == SQLite {
		_, err = db.ExecContext(ctx, `CREATE INDEX IF NOT EXISTS "`+name+`" ON contacts (`+expr+`)`)
		if err != nil {
			return fmt.Errorf("create index on attribute %s: %w", key, err)
		}
		return nil
	}
	col := attrColumn(key)
	err = db.withTx(ctx, func(tx *sqlxTx) error {
		// Waiting behind a long transaction would queue every query on
		// contacts behind this one: fail instead, and let the admin retry.
		if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = '10s'`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `ALTER TABLE contacts ADD COLUMN IF NOT EXISTS "`+col+
			`" jsonb GENERATED ALWAYS AS `+expr+` STORED`)
		return err
	})
	if err != nil {
		return fmt.Errorf("add column for attribute %s: %w", key, err)
	}
	// An interrupted concurrent build leaves an invalid index that IF NOT
	// EXISTS would keep forever, and an earlier version indexed the
	// expression rather than the column: drop either first.
	var stale bool
	err = db.GetContext(ctx, &stale, `SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE c.relname = $1 AND (NOT i.indisvalid OR i.indexprs IS NOT NULL OR i.indnatts <> 3))`, name)
	if err != nil {
		return fmt.Errorf("check index on attribute %s: %w", key, err)
	}
	if stale {
		if _, err := db.ExecContext(ctx, `DROP INDEX CONCURRENTLY IF EXISTS "`+name+`"`); err != nil {
			return fmt.Errorf("drop stale index on attribute %s: %w", key, err)
		}
	}
	q := `CREATE INDEX CONCURRENTLY IF NOT EXISTS "` + name + `" ON contacts ("` + col + `") INCLUDE (id, tags)`
	if _, err := db.ExecContext(ctx, q); err != nil {
		_, _ = db.ExecContext(context.WithoutCancel(ctx), `DROP INDEX CONCURRENTLY IF EXISTS "`+name+`"`)
		return fmt.Errorf("create index on attribute %s: %w", key, err)
	}
	// The rewrite cleared the visibility map, without which every
	// index-only scan reads the table.
	if _, err := db.ExecContext(ctx, `VACUUM (ANALYZE) contacts`); err != nil {
		return fmt.Errorf("vacuum contacts after indexing attribute %s: %w", key, err)
	}
	return nil
}

// SegmentWhere validates rule and compiles it for the current time into a
// WHERE condition over the contacts table (named contacts in the FROM
// clause, not aliased) with '?' placeholders, and its arguments. Wrap the
// query in db.Rebind before running it. Every rule value is an argument,
// never SQL text. Campaign start uses it to select the audience; the bench
// uses it to explain plans.
func (db *DB) SegmentWhere(ctx context.Context, rule *campaign.Rule) (string, []any, error) {
	return db.compileRule(ctx, rule, db.now())
}
