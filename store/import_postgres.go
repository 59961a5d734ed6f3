package store

import (
	"context"
	"database/sql"
	"fmt"
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

func (w *postgresImport) write(ctx context.Context, rows []importRow, now time.Time) (inserted, updated int64, err error) {
	src := &pgCopySource{rows: rows, enc: &w.enc, i: -1}
	err = w.conn.Raw(func(driverConn any) error {
		conn := driverConn.(*stdlib.Conn).Conn()
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, pgCreateStaging); err != nil {
				return fmt.Errorf("create staging table: %w", err)
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"funnel_import_staging"}, pgStagingColumns, src); err != nil {
				return fmt.Errorf("copy rows: %w", err)
			}
			err := tx.QueryRow(ctx, pgUpsert, now, w.opts.UpdateExisting).Scan(&inserted, &updated)
			if err != nil {
				return fmt.Errorf("upsert contacts: %w", err)
			}
			return nil
		})
	})
	return inserted, updated, err
}

// pgCopySource feeds rows to CopyFrom without building a [][]any first.
type pgCopySource struct {
	rows []importRow
	enc  *jsonEncoder
	i    int
	vals [8]any
}

func (s *pgCopySource) Next() bool { s.i++; return s.i < len(s.rows) }

func (s *pgCopySource) Values() ([]any, error) {
	c := s.rows[s.i].c
	s.vals = [8]any{c.Email, c.FirstName, c.LastName, s.enc.attributes(c.Attributes), s.enc.tags(c.Tags),
		string(c.Status), c.ConsentSource, c.ConsentAt}
	return s.vals[:], nil
}

func (s *pgCopySource) Err() error { return nil }
