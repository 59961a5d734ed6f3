package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/funnel-email/funnel/campaign"
)

// Import job statuses.
const (
	ImportRunning = "running"
	ImportDone    = "done"
	ImportFailed  = "failed"
)

// Import is the record of one CSV import job: what was asked, how far it
// got, and how it ended.
type Import struct {
	ID         int64                  `json:"id"`
	Filename   string                 `json:"filename"`
	Status     string                 `json:"status"` // running, done or failed
	Options    campaign.ImportOptions `json:"options"`
	BytesTotal int64                  `json:"bytes_total"` // size of the upload, 0 when unknown
	Stats      campaign.ImportStats   `json:"stats"`
	Failure    string                 `json:"failure,omitempty"` // why a failed import stopped
	CreatedAt  time.Time              `json:"created_at"`
	UpdatedAt  time.Time              `json:"updated_at"`
	FinishedAt *time.Time             `json:"finished_at"`
}

type importRecord struct {
	ID         int64      `db:"id"`
	Filename   string     `db:"filename"`
	Status     string     `db:"status"`
	Options    []byte     `db:"options"`
	BytesTotal int64      `db:"bytes_total"`
	BytesRead  int64      `db:"bytes_read"`
	RowsRead   int64      `db:"rows_read"`
	Inserted   int64      `db:"inserted"`
	Updated    int64      `db:"updated"`
	Unchanged  int64      `db:"unchanged"`
	Invalid    int64      `db:"invalid"`
	Errors     []byte     `db:"errors"`
	Failure    string     `db:"failure"`
	CreatedAt  time.Time  `db:"created_at"`
	UpdatedAt  time.Time  `db:"updated_at"`
	FinishedAt *time.Time `db:"finished_at"`
}

const importColumns = `id, filename, status, options, bytes_total, bytes_read, rows_read, inserted,
	updated, unchanged, invalid, errors, failure, created_at, updated_at, finished_at`

func (r *importRecord) imp() (*Import, error) {
	im := &Import{
		ID: r.ID, Filename: r.Filename, Status: r.Status, BytesTotal: r.BytesTotal, Failure: r.Failure,
		Stats: campaign.ImportStats{BytesRead: r.BytesRead, RowsRead: r.RowsRead, Inserted: r.Inserted,
			Updated: r.Updated, Unchanged: r.Unchanged, Invalid: r.Invalid},
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), FinishedAt: utcPtr(r.FinishedAt),
	}
	if err := json.Unmarshal(r.Options, &im.Options); err != nil {
		return nil, fmt.Errorf("decode options of import %d: %w", r.ID, err)
	}
	if err := json.Unmarshal(r.Errors, &im.Stats.Errors); err != nil {
		return nil, fmt.Errorf("decode errors of import %d: %w", r.ID, err)
	}
	if im.Stats.Errors == nil {
		im.Stats.Errors = []campaign.ImportRowError{}
	}
	if im.Options.Tags == nil {
		im.Options.Tags = []string{}
	}
	return im, nil
}

// CreateImport records a new running import of filename (bytesTotal may be
// 0 when the size is unknown). Options are normalized; invalid ones are
// EINVALID.
func (db *DB) CreateImport(ctx context.Context, filename string, bytesTotal int64, opts campaign.ImportOptions) (*Import, error) {
	opts.Normalize()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	now := db.now()
	var id int64
	err := db.QueryRowxContext(ctx, db.rebind(`INSERT INTO imports (filename, status, options, bytes_total,
		created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`),
		filename, ImportRunning, jsonText(opts), bytesTotal, now, now).Scan(&id)
	if err != nil {
		return nil, fmt.Errorf("insert import: %w", err)
	}
	return db.FindImport(ctx, id)
}

// UpdateImportProgress stores the stats of a running import. It returns
// ENOTFOUND when no such import exists, and ECONFLICT when the import has
// already finished.
func (db *DB) UpdateImportProgress(ctx context.Context, id int64, stats campaign.ImportStats) error {
	return db.setImportState(ctx, id, stats, ImportRunning, "", nil)
}

// FinishImport ends a running import with its final stats: done when
// failure is nil, otherwise failed with the failure's user-facing message
// (campaign.ErrorMessage, so that internal details stay in logs). It
// returns ENOTFOUND for an unknown import and ECONFLICT for one that has
// already finished.
func (db *DB) FinishImport(ctx context.Context, id int64, stats campaign.ImportStats, failure error) error {
	now := db.now()
	if failure != nil {
		return db.setImportState(ctx, id, stats, ImportFailed, campaign.ErrorMessage(failure), &now)
	}
	return db.setImportState(ctx, id, stats, ImportDone, "", &now)
}

// setImportState updates a running import in one statement, so a finished
// import can never be changed again.
func (db *DB) setImportState(ctx context.Context, id int64, s campaign.ImportStats, status, failure string, finished *time.Time) error {
	errs := s.Errors
	if errs == nil {
		errs = []campaign.ImportRowError{}
	}
	res, err := db.ExecContext(ctx, db.rebind(`UPDATE imports SET status = ?, bytes_read = ?, rows_read = ?,
		inserted = ?, updated = ?, unchanged = ?, invalid = ?, errors = ?, failure = ?, updated_at = ?,
		finished_at = ? WHERE id = ? AND status = 'running'`),
		status, s.BytesRead, s.RowsRead, s.Inserted, s.Updated, s.Unchanged, s.Invalid, jsonText(errs),
		failure, db.now(), finished, id)
	if err != nil {
		return fmt.Errorf("update import %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := db.FindImport(ctx, id); err != nil {
			return err
		}
		return campaign.Errorf(campaign.ECONFLICT, "import %d has already finished", id)
	}
	return nil
}

// FindImport returns the import with the given ID, or ENOTFOUND.
func (db *DB) FindImport(ctx context.Context, id int64) (*Import, error) {
	var r importRecord
	err := db.GetContext(ctx, &r, db.rebind(`SELECT `+importColumns+` FROM imports WHERE id = ?`), id)
	if err != nil {
		return nil, notFound(err, "import %d not found", id)
	}
	return r.imp()
}

// FailStaleImports marks as failed ("interrupted") every running import
// whose progress has not been updated for olderThan, and returns how many
// it marked. Called at start-up, it closes the imports of a process that
// died; olderThan must exceed the progress interval of live imports.
func (db *DB) FailStaleImports(ctx context.Context, olderThan time.Duration) (int64, error) {
	now := db.now()
	res, err := db.ExecContext(ctx, db.rebind(`UPDATE imports SET status = 'failed',
		failure = 'interrupted: the import stopped before it finished (the server restarted); import the file again',
		updated_at = ?, finished_at = ? WHERE status = 'running' AND updated_at < ?`), now, now, now.Add(-olderThan))
	if err != nil {
		return 0, fmt.Errorf("fail stale imports: %w", err)
	}
	return res.RowsAffected()
}
