package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/funnel-email/funnel/campaign"
)

// sqliteRowsPerInsert keeps one multi-row INSERT well under SQLite's
// 32,766 bound variables (10 per row).
const sqliteRowsPerInsert = 500

// sqliteImport writes each batch in one immediate transaction: it reads
// the batch's existing contacts, merges in Go with
// campaign.Contact.MergeImport, and writes new and changed contacts with
// multi-row upserts. The immediate transaction holds the write lock from
// the read on, so the merge sees exactly what it overwrites.
type sqliteImport struct {
	db    *DB
	conn  *sqlx.Conn
	opts  campaign.ImportOptions
	enc   jsonEncoder
	args  []any                 // scratch, reused across statements
	stmts map[string]*sqlx.Stmt // full-chunk statements, by SQL text
}

// sqliteImportCache is the page cache of the import's connection, in KiB.
// The default 2 MiB cannot hold the hot pages of the email index of a
// large table, and every miss and every re-dirtied page costs a system
// call; 32 MiB keeps them in memory and stays well inside the memory
// budget of an import.
const sqliteImportCache = 32 << 10

// sqliteImportCheckpoint is the WAL size, in pages, at which the import's
// commits checkpoint. Ten times SQLite's default means the hot pages of
// the indexes are copied into the database file ten times less often; the
// WAL grows to about 40 MiB during an import.
const sqliteImportCheckpoint = 10000

func newSQLiteImport(ctx context.Context, db *DB, opts campaign.ImportOptions) (*sqliteImport, error) {
	conn, err := db.Connx(ctx)
	if err != nil {
		return nil, fmt.Errorf("import: get a connection: %w", err)
	}
	for _, pragma := range []string{
		fmt.Sprintf("PRAGMA cache_size = -%d", sqliteImportCache),
		fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", sqliteImportCheckpoint),
	} {
		if _, err := conn.ExecContext(ctx, pragma); err != nil {
			conn.Close()
			return nil, fmt.Errorf("import: %s: %w", pragma, err)
		}
	}
	return &sqliteImport{db: db, conn: conn, opts: opts, stmts: map[string]*sqlx.Stmt{}}, nil
}

// close gives the connection back to the pool with the default cache, so
// that the pool does not keep the import's memory.
func (w *sqliteImport) close() error {
	for _, st := range w.stmts {
		st.Close()
	}
	_, err := w.conn.ExecContext(context.Background(), "PRAGMA cache_size = -2000")
	if _, cerr := w.conn.ExecContext(context.Background(), "PRAGMA wal_autocheckpoint = 1000"); err == nil {
		err = cerr
	}
	if cerr := w.conn.Close(); err == nil {
		err = cerr
	}
	return err
}

func (w *sqliteImport) write(ctx context.Context, rows []importRow, now time.Time) (inserted, updated int64, err error) {
	err = w.inTx(ctx, func(tx *sqlxTx) error {
		existing, err := w.existing(ctx, tx, rows)
		if err != nil {
			return err
		}
		out := make([]*campaign.Contact, 0, len(rows))
		inserted, updated = 0, 0
		for _, r := range rows {
			old, ok := existing[r.c.Email]
			switch {
			case !ok:
				inserted++
				out = append(out, r.c)
			case w.opts.UpdateExisting && old.MergeImport(r.c):
				updated++
				out = append(out, old)
			}
		}
		// Writing in email order touches the email index page by page.
		slices.SortFunc(out, func(a, b *campaign.Contact) int { return strings.Compare(a.Email, b.Email) })
		for len(out) > 0 {
			n := min(len(out), sqliteRowsPerInsert)
			if err := w.upsert(ctx, tx, out[:n], now); err != nil {
				return err
			}
			out = out[n:]
		}
		return nil
	})
	return inserted, updated, err
}

// inTx runs fn in an immediate transaction (the DSN's _txlock) on the
// import's connection.
func (w *sqliteImport) inTx(ctx context.Context, fn func(tx *sqlxTx) error) error {
	tx, err := w.conn.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// existing returns the stored contacts with the emails of rows.
func (w *sqliteImport) existing(ctx context.Context, tx *sqlxTx, rows []importRow) (map[string]*campaign.Contact, error) {
	found := map[string]*campaign.Contact{}
	for start := 0; start < len(rows); start += sqliteRowsPerInsert {
		chunk := rows[start:min(len(rows), start+sqliteRowsPerInsert)]
		w.args = w.args[:0]
		for _, r := range chunk {
			w.args = append(w.args, r.c.Email)
		}
		q := `SELECT ` + contactColumns + ` FROM contacts WHERE email IN (?` + strings.Repeat(",?", len(chunk)-1) + `)`
		var found1 []contactRow
		st, err := w.stmt(ctx, tx, q, len(chunk) == sqliteRowsPerInsert)
		if err == nil {
			err = st.SelectContext(ctx, &found1, w.args...)
		}
		if err != nil {
			return nil, fmt.Errorf("read existing contacts: %w", err)
		}
		for i := range found1 {
			c, err := found1[i].contact()
			if err != nil {
				return nil, err
			}
			found[c.Email] = c
		}
	}
	return found, nil
}

// upsert writes contacts that are new or were merged with what is stored.
// The merge happened in this transaction, so the update takes the merged
// values as they are; the status CASE is a second guard that no import
// ever lifts a suppression.
func (w *sqliteImport) upsert(ctx context.Context, tx *sqlxTx, cs []*campaign.Contact, now time.Time) error {
	var q strings.Builder
	q.WriteString(`INSERT INTO contacts (email, first_name, last_name, attributes, tags, status,
		consent_source, consent_at, created_at, updated_at) VALUES `)
	w.args = w.args[:0]
	for i, c := range cs {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString("(?,?,?,?,?,?,?,?,?,?)")
		w.args = append(w.args, c.Email, c.FirstName, c.LastName, string(w.enc.attributes(c.Attributes)),
			string(w.enc.tags(c.Tags)), string(c.Status), c.ConsentSource, c.ConsentAt, now, now)
	}
	q.WriteString(` ON CONFLICT (email) DO UPDATE SET first_name = excluded.first_name,
		last_name = excluded.last_name, attributes = excluded.attributes, tags = excluded.tags,
		status = CASE WHEN contacts.status = 'active' THEN excluded.status ELSE contacts.status END,
		consent_source = excluded.consent_source, consent_at = excluded.consent_at,
		updated_at = excluded.updated_at`)
	st, err := w.stmt(ctx, tx, q.String(), len(cs) == sqliteRowsPerInsert)
	if err == nil {
		_, err = st.ExecContext(ctx, w.args...)
	}
	if err != nil {
		return fmt.Errorf("upsert contacts: %w", err)
	}
	return nil
}

// stmt returns q as a statement of tx. Statements of full chunks are
// prepared once per import, because parsing a statement with 5,000
// parameters costs about as much as running it; they are prepared on the
// pool so that database/sql reuses them in each transaction on the
// import's connection. Other statements are prepared for one use.
func (w *sqliteImport) stmt(ctx context.Context, tx *sqlxTx, q string, cache bool) (*sqlx.Stmt, error) {
	if !cache {
		return tx.PreparexContext(ctx, q)
	}
	st, ok := w.stmts[q]
	if !ok {
		var err error
		if st, err = w.db.PreparexContext(ctx, q); err != nil {
			return nil, err
		}
		w.stmts[q] = st
	}
	return tx.StmtxContext(ctx, st), nil
}
