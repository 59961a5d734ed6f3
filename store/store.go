// Package store persists Funnel's domain in PostgreSQL (production) or
// SQLite (the embedded default) through sqlx. Each resource has its own
// file; SQL that differs between the dialects is written out for each one
// rather than generated from a shared string.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/migrations"
)

// Dialect names the SQL database behind a DB.
type Dialect string

// Supported dialects.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// DB is a connection pool to Funnel's database.
type DB struct {
	*sqlx.DB
	Dialect Dialect
	// now is the clock; tests may replace it.
	now func() time.Time
}

// Open connects to the database named by rawURL and checks that it
// answers. It does not migrate.
//
// Accepted forms: postgres://... or postgresql://... for PostgreSQL;
// sqlite:PATH, sqlite://PATH or file:PATH for SQLite (":memory:" is refused
// because each pooled connection would see its own empty database).
func Open(ctx context.Context, rawURL string) (*DB, error) {
	dialect, dsn, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	driver := "pgx"
	if dialect == SQLite {
		driver = "sqlite"
	}
	sqldb, err := sqlx.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", dialect, err)
	}
	if dialect == SQLite {
		sqldb = sqlx.NewDb(sqldb.DB, "sqlite") // placeholders stay '?'
		// One writer at a time is SQLite's model; a small pool keeps readers
		// concurrent under WAL while _txlock=immediate serializes writers.
		sqldb.SetMaxOpenConns(4)
	} else {
		sqldb.SetMaxOpenConns(20)
		sqldb.SetMaxIdleConns(20)
	}
	// Postgres keeps microseconds; truncating here makes a written time
	// equal to the same time read back on both dialects.
	db := &DB{DB: sqldb, Dialect: dialect, now: func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to %s database: %w", dialect, err)
	}
	return db, nil
}

// ParseURL reports the dialect of a database URL, or an error that says
// what is wrong with it. Config validation uses it before anything connects.
func ParseURL(rawURL string) (Dialect, error) {
	d, _, err := parseURL(rawURL)
	return d, err
}

func parseURL(rawURL string) (Dialect, string, error) {
	switch {
	case rawURL == "":
		return "", "", errors.New("is empty")
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		if _, err := url.Parse(rawURL); err != nil {
			return "", "", fmt.Errorf("is not a valid URL: %v", err)
		}
		return Postgres, rawURL, nil
	case strings.HasPrefix(rawURL, "sqlite:"), strings.HasPrefix(rawURL, "file:"):
		path := strings.TrimPrefix(strings.TrimPrefix(rawURL, "sqlite:"), "file:")
		path = strings.TrimPrefix(path, "//")
		if i := strings.IndexByte(path, '?'); i >= 0 {
			return "", "", errors.New("must not carry query parameters: Funnel sets the SQLite pragmas itself")
		}
		if path == "" || path == ":memory:" {
			return "", "", errors.New("must name a database file, such as sqlite:funnel.db")
		}
		return SQLite, sqliteDSN(path), nil
	default:
		return "", "", fmt.Errorf("%q must start with postgres://, postgresql:// or sqlite:", redactURL(rawURL))
	}
}

// sqliteDSN sets what every connection needs: WAL so readers never block the
// writer, a busy timeout so writers queue instead of failing, immediate
// transactions so a read-then-write never fails on lock upgrade, foreign
// keys, and one fixed UTC text layout for times so that text order is time
// order.
func sqliteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate&_time_format=sqlite"
}

// redactURL drops the password from a URL so that it can appear in errors
// and logs.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

func (db *DB) migrationProvider() (*goose.Provider, error) {
	sub, err := fs.Sub(migrations.FS, string(db.Dialect))
	if err != nil {
		return nil, err
	}
	gd := goose.DialectPostgres
	if db.Dialect == SQLite {
		gd = goose.DialectSQLite3
	}
	return goose.NewProvider(gd, db.DB.DB, sub)
}

// Migrate applies every pending migration and returns the versions it
// applied.
func (db *DB) Migrate(ctx context.Context) ([]int64, error) {
	p, err := db.migrationProvider()
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	applied := make([]int64, 0, len(results))
	for _, r := range results {
		applied = append(applied, r.Source.Version)
	}
	return applied, nil
}

// ErrSchemaBehind is returned by CheckSchema when migrations are pending.
var ErrSchemaBehind = errors.New("the database schema is behind this version of Funnel: run `funnel migrate`")

// CheckSchema returns ErrSchemaBehind (wrapped with the versions) when the
// database has not been migrated to the latest version this binary knows.
func (db *DB) CheckSchema(ctx context.Context) error {
	p, err := db.migrationProvider()
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	current, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	sources := p.ListSources()
	latest := sources[len(sources)-1].Version
	if current < latest {
		return fmt.Errorf("%w (database at version %d, latest is %d)", ErrSchemaBehind, current, latest)
	}
	return nil
}

// rebind turns '?' placeholders into the dialect's form.
func (db *DB) rebind(q string) string { return db.Rebind(q) }

// withTx runs fn in a transaction, committing when fn returns nil.
func (db *DB) withTx(ctx context.Context, fn func(tx *sqlxTx) error) (err error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback()
			return
		}
		err = tx.Commit()
	}()
	return fn(tx)
}

// isForeignKeyViolation reports whether err is a foreign-key failure.
func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23503"
	}
	var sqlErr *sqlite.Error
	if errors.As(err, &sqlErr) {
		return sqlErr.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}

// isUniqueViolation reports whether err is a unique-constraint failure.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var sqlErr *sqlite.Error
	if errors.As(err, &sqlErr) {
		return sqlErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || sqlErr.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// notFound converts sql.ErrNoRows into an ENOTFOUND domain error.
func notFound(err error, format string, args ...any) error {
	if errors.Is(err, sql.ErrNoRows) {
		return campaign.Errorf(campaign.ENOTFOUND, format, args...)
	}
	return err
}

// sqlxTx is the transaction type handed to withTx callbacks.
type sqlxTx = sqlx.Tx
