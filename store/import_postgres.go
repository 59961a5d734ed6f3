package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/funnel-email/funnel/campaign"
)

// postgresImport writes batches with COPY into a temporary staging table
// and one upsert from it, on one connection held for the whole import.
type postgresImport struct {
	conn *sql.Conn
	opts campaign.ImportOptions
	enc  jsonEncoder
}

func newPostgresImport(ctx context.Context, db *DB, opts campaign.ImportOptions) (*postgresImport, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("import: get a connection: %w", err)
	}
	return &postgresImport{conn: conn, opts: opts}, nil
}

func (w *postgresImport) close() error { return w.conn.Close() }

const pgCreateStaging = `CREATE TEMP TABLE funnel_import_staging (
	email          TEXT NOT NULL,
	first_name     TEXT NOT NULL,
	last_name      TEXT NOT NULL,
	attributes     JSONB NOT NULL,
	tags           JSONB NOT NULL,
	status         TEXT NOT NULL,
	consent_source TEXT NOT NULL,
	consent_at     TIMESTAMPTZ
) ON COMMIT DROP`

var pgStagingColumns = []string{"email", "first_name", "last_name", "attributes", "tags", "status", "consent_source", "consent_at"}

// pgUpsert applies the staged rows with campaign.Contact.MergeImport's
// rules. $1 is the batch time, $2 whether existing contacts may change.
// The WHERE clause skips rows that would change nothing, so that they
// count as unchanged and keep their updated_at; xmax = 0 tells an inserted
// row from an updated one.
const pgUpsert = `WITH up AS (
	INSERT INTO contacts AS c (email, first_name, last_name, attributes, tags, status,
		consent_source, consent_at, created_at, updated_at)
	SELECT email, first_name, last_name, attributes, tags, status, consent_source, consent_at, $1, $1
	FROM funnel_import_staging
	-- One lock order for every import, so concurrent imports (and this
	-- import's own writers) cannot deadlock; byte order is the cheapest sort.
	ORDER BY email COLLATE "C"
	ON CONFLICT (email) DO UPDATE SET
		-- an empty cell never erases a name
		first_name = COALESCE(NULLIF(excluded.first_name, ''), c.first_name),
		last_name = COALESCE(NULLIF(excluded.last_name, ''), c.last_name),
		-- attributes merge key by key, the file wins
		attributes = c.attributes || excluded.attributes,
		-- tags are the sorted union; COLLATE "C" sorts by bytes as Go does
		tags = (SELECT COALESCE(jsonb_agg(t ORDER BY t), '[]'::jsonb) FROM
			(SELECT DISTINCT value COLLATE "C" AS t FROM jsonb_array_elements_text(c.tags || excluded.tags)) u),
		-- a suppression is never lifted, only added to an active contact
		status = CASE WHEN c.status = 'active' THEN excluded.status ELSE c.status END,
		consent_source = CASE WHEN c.consent_source = '' THEN excluded.consent_source ELSE c.consent_source END,
		consent_at = CASE WHEN c.consent_source = '' THEN excluded.consent_at ELSE c.consent_at END,
		updated_at = excluded.updated_at
	WHERE $2 AND (
		(excluded.first_name <> '' AND excluded.first_name <> c.first_name)
		OR (excluded.last_name <> '' AND excluded.last_name <> c.last_name)
		OR NOT c.attributes @> excluded.attributes
		OR NOT c.tags @> excluded.tags
		OR (c.status = 'active' AND excluded.status <> 'active')
		OR (c.consent_source = '' AND excluded.consent_source <> ''))
	RETURNING xmax = 0 AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up`

// pgNewEmails says whether none of the emails ($1) is a contact yet.
const pgNewEmails = `SELECT NOT EXISTS (SELECT 1 FROM contacts WHERE email = ANY($1::text[]))`

// pgContactColumns are the columns a batch of new contacts is copied into.
var pgContactColumns = []string{"email", "first_name", "last_name", "attributes", "tags", "status",
	"consent_source", "consent_at", "created_at", "updated_at"}

// write applies one batch in one transaction. A batch whose emails are all
// new (the common case of a first import) is copied straight into contacts,
// which costs a third of the upsert: no staging table, no speculative
// insertion. Rows are copied in email byte order, the upsert's lock order,
// so that two imports racing for the same new email wait on each other
// rather than deadlock; the one that loses gets a unique violation, rolls
// back to the savepoint and upserts the batch instead.
//
// The transaction commits without waiting for its WAL to reach the disk
// (synchronous_commit off): a crash can lose the last batches that the
// import record counted as written, never corrupt them, and re-running the
// import applies those rows again with the same result.
func (w *postgresImport) write(ctx context.Context, rows []importRow, now time.Time) (inserted, updated int64, err error) {
	err = w.conn.Raw(func(driverConn any) error {
		conn := driverConn.(*stdlib.Conn).Conn()
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		if _, err := tx.Exec(ctx, "SET LOCAL synchronous_commit = off"); err != nil {
			return fmt.Errorf("set synchronous_commit: %w", err)
		}
		ok, err := w.copyNew(ctx, tx, rows, now)
		switch {
		case err != nil:
			return err
		case ok:
			inserted = int64(len(rows))
		default:
			if inserted, updated, err = w.upsert(ctx, tx, rows, now); err != nil {
				return err
			}
		}
		// The commit ignores cancellation: a COMMIT that reached the
		// server while the context ended would leave the caller unsure
		// whether the batch was kept, and the import's counts must say
		// exactly what was.
		return tx.Commit(context.WithoutCancel(ctx))
	})
	if err != nil {
		return 0, 0, err
	}
	return inserted, updated, nil
}

// copyNew copies rows into contacts if none of their emails is a contact,
// and reports whether it did. It leaves tx as it found it when it did not.
func (w *postgresImport) copyNew(ctx context.Context, tx pgx.Tx, rows []importRow, now time.Time) (bool, error) {
	emails := make([]string, len(rows))
	for i, r := range rows {
		emails[i] = r.c.Email
	}
	var allNew bool
	if err := tx.QueryRow(ctx, pgNewEmails, emails).Scan(&allNew); err != nil {
		return false, fmt.Errorf("look up emails: %w", err)
	}
	if !allNew {
		return false, nil
	}
	sorted := slices.SortedFunc(slices.Values(rows), func(a, b importRow) int { return strings.Compare(a.c.Email, b.c.Email) })
	sp, err := tx.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("savepoint: %w", err)
	}
	src := &pgCopySource{rows: sorted, enc: &w.enc, i: -1, now: now}
	if _, err := sp.CopyFrom(ctx, pgx.Identifier{"contacts"}, pgContactColumns, src); err != nil {
		if rerr := sp.Rollback(ctx); rerr != nil || !isUniqueViolation(err) {
			return false, fmt.Errorf("copy new contacts: %w", err)
		}
		return false, nil
	}
	if err := sp.Commit(ctx); err != nil {
		return false, fmt.Errorf("release savepoint: %w", err)
	}
	return true, nil
}

// upsert stages rows in a temporary table and merges them with pgUpsert.
func (w *postgresImport) upsert(ctx context.Context, tx pgx.Tx, rows []importRow, now time.Time) (inserted, updated int64, err error) {
	if _, err := tx.Exec(ctx, pgCreateStaging); err != nil {
		return 0, 0, fmt.Errorf("create staging table: %w", err)
	}
	src := &pgCopySource{rows: rows, enc: &w.enc, i: -1}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"funnel_import_staging"}, pgStagingColumns, src); err != nil {
		return 0, 0, fmt.Errorf("copy rows: %w", err)
	}
	if err := tx.QueryRow(ctx, pgUpsert, now, w.opts.UpdateExisting).Scan(&inserted, &updated); err != nil {
		return 0, 0, fmt.Errorf("upsert contacts: %w", err)
	}
	return inserted, updated, nil
}

// pgCopySource feeds rows to CopyFrom without building a [][]any first:
// the staging columns, and with a non-zero now the created and updated
// times of pgContactColumns as well.
type pgCopySource struct {
	rows []importRow
	enc  *jsonEncoder
	i    int
	now  time.Time
	vals [10]any
}

func (s *pgCopySource) Next() bool { s.i++; return s.i < len(s.rows) }

func (s *pgCopySource) Values() ([]any, error) {
	c := s.rows[s.i].c
	s.vals = [10]any{c.Email, c.FirstName, c.LastName, s.enc.attributes(c.Attributes), s.enc.tags(c.Tags),
		string(c.Status), c.ConsentSource, c.ConsentAt, s.now, s.now}
	if s.now.IsZero() {
		return s.vals[:8], nil
	}
	return s.vals[:], nil
}

func (s *pgCopySource) Err() error { return nil }
