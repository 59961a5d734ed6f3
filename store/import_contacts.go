package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/funnel-email/funnel/campaign"
)

// Import tuning per dialect. Postgres COPY amortizes its round trips over
// large batches, and two connections let the server insert on both cores
// while this process parses. SQLite has one writer at a time; its batches
// stay small enough that other writers wait at most a fraction of a
// second.
const (
	postgresImportBatch   = 10000
	postgresImportWriters = 2
	sqliteImportBatch     = 5000
	sqliteImportWriters   = 1
)

// importRow is one valid row of a file with the line it came from.
type importRow struct {
	c    *campaign.Contact
	line int64
}

// batchWriter writes one batch of rows with distinct emails in one
// transaction on its own connection and says how many it inserted and
// updated; the rest were left unchanged.
type batchWriter interface {
	write(ctx context.Context, rows []importRow, now time.Time) (inserted, updated int64, err error)
	close() error
}

// ImportContacts streams every row of src into contacts in bounded
// batches, each in its own transaction, calling progress (which may be
// nil) after each batch with the cumulative stats, and returns the final
// stats.
//
// Rows apply as if each were imported after the one before it in the
// file: a row whose email appeared earlier meets the contact that row
// made and counts as updated or unchanged under opts.UpdateExisting. The
// merge rules are campaign.Contact.MergeImport's; an import never lifts a
// suppression. Row errors are counted and the first MaxImportErrors kept,
// sorted by line. Invalid options are EINVALID. A database or read error
// stops the import and is returned with the stats so far (rows of a batch
// that failed count as read but in no outcome); the rows of committed
// batches stay. progress runs on other goroutines than the caller's, one
// call at a time.
func (db *DB) ImportContacts(ctx context.Context, src *campaign.CSVReader, opts campaign.ImportOptions, progress func(campaign.ImportStats)) (campaign.ImportStats, error) {
	return db.importContacts(ctx, src, opts, 0, progress)
}

func (db *DB) importContacts(ctx context.Context, src *campaign.CSVReader, opts campaign.ImportOptions, batchSize int, progress func(campaign.ImportStats)) (stats campaign.ImportStats, err error) {
	opts.Normalize()
	if err := opts.Validate(); err != nil {
		return campaign.ImportStats{}, err
	}
	size, n := sqliteImportBatch, sqliteImportWriters
	if db.Dialect == Postgres {
		size, n = postgresImportBatch, postgresImportWriters
	}
	if batchSize > 0 {
		size = batchSize
	}
	imp := &contactImport{db: db, opts: opts, progress: progress, src: src, size: size,
		inflight: make(map[string]uint64, size*(n+1)), committed: make(chan *importBatch, n+1),
		stopped: make(chan struct{})}
	imp.stats.Errors = []campaign.ImportRowError{}
	defer func() {
		for _, w := range imp.writers {
			if cerr := w.close(); err == nil && cerr != nil {
				err = cerr
			}
		}
	}()
	for range n {
		w, err := db.newBatchWriter(ctx, opts)
		if err != nil {
			return imp.stats, err
		}
		imp.writers = append(imp.writers, w)
	}
	err = imp.run(ctx)
	slices.SortFunc(imp.stats.Errors, func(a, b campaign.ImportRowError) int { return cmp.Compare(a.Line, b.Line) })
	return imp.stats, err
}

func (db *DB) newBatchWriter(ctx context.Context, opts campaign.ImportOptions) (batchWriter, error) {
	if db.Dialect == Postgres {
		return newPostgresImport(ctx, db, opts)
	}
	return newSQLiteImport(ctx, db, opts)
}

// contactImport is the state of one ImportContacts call. The caller's
// goroutine reads and validates rows into batches; one goroutine per
// writer writes them. Batches in flight never share an email, so that
// concurrent writers still apply each contact's rows in file order.
type contactImport struct {
	db       *DB
	writers  []batchWriter
	src      *campaign.CSVReader
	opts     campaign.ImportOptions
	progress func(campaign.ImportStats)
	size     int

	mu    sync.Mutex // guards stats and werr, and serializes progress
	stats campaign.ImportStats
	werr  error

	stopOnce  sync.Once
	stopped   chan struct{}     // closed when a writer fails
	committed chan *importBatch // written batches, back to the reader

	// reader state
	cur      *importBatch
	seq      uint64
	inflight map[string]uint64 // email -> seq of the unwritten batch holding it
	kept     int               // row errors kept so far, to stop at MaxImportErrors
}

// importBatch is what the reader hands a writer: valid rows, and the counts
// and errors of the rows read since the previous batch.
type importBatch struct {
	seq     uint64
	rows    []importRow
	read    int64
	invalid int64
	errors  []campaign.ImportRowError
	bytes   int64 // input consumed when the batch was cut
}

// errWriterStopped tells the reader that a writer failed.
var errWriterStopped = errors.New("import writer stopped")

func (imp *contactImport) run(ctx context.Context) error {
	batches := make(chan *importBatch)
	var wg sync.WaitGroup
	for _, w := range imp.writers {
		wg.Go(func() { imp.writeAll(ctx, w, batches) })
	}
	rerr := imp.readAll(batches)
	close(batches)
	// Writers report each written batch; nobody needs them any more, but
	// the writers must not block on the report.
	go func() {
		wg.Wait()
		close(imp.committed)
	}()
	for range imp.committed {
	}
	if imp.werr != nil {
		return imp.werr
	}
	return rerr
}

// readAll reads every row and sends batches until the input ends or a
// writer stops.
func (imp *contactImport) readAll(batches chan<- *importBatch) error {
	imp.cur = imp.newBatch()
	for {
		c, line, err := imp.src.Next()
		if err == io.EOF {
			return imp.send(batches) // also delivers the counts of trailing bad rows
		}
		imp.cur.read++
		var rowErr *campaign.RowError
		switch {
		case errors.As(err, &rowErr):
			imp.rowError(rowErr.Line, rowErr.Message)
			continue
		case err != nil:
			return fmt.Errorf("read CSV at line %d: %w", line, err)
		}
		if err := c.ApplyImportOptions(imp.opts, imp.db.now()); err != nil {
			imp.rowError(line, err.Error())
			continue
		}
		if err := imp.add(batches, importRow{c: c, line: line}); err != nil {
			return err
		}
	}
}

// add queues a valid row. A batch must not touch one contact twice
// (Postgres refuses), and a row must not overtake an earlier row for the
// same contact: a repeated email cuts the current batch and waits until
// the batch holding the earlier row is written.
func (imp *contactImport) add(batches chan<- *importBatch, r importRow) error {
	if seq, ok := imp.inflight[r.c.Email]; ok {
		if seq == imp.cur.seq {
			if err := imp.send(batches); err != nil {
				return err
			}
		}
		if err := imp.awaitWritten(r.c.Email); err != nil {
			return err
		}
	}
	if len(imp.cur.rows) >= imp.size {
		if err := imp.send(batches); err != nil {
			return err
		}
	}
	imp.cur.rows = append(imp.cur.rows, r)
	imp.inflight[r.c.Email] = imp.cur.seq
	return nil
}

func (imp *contactImport) newBatch() *importBatch {
	imp.seq++
	return &importBatch{seq: imp.seq, rows: make([]importRow, 0, imp.size)}
}

func (imp *contactImport) rowError(line int64, message string) {
	imp.cur.invalid++
	if imp.kept < campaign.MaxImportErrors {
		imp.kept++
		imp.cur.errors = append(imp.cur.errors, campaign.ImportRowError{Line: line, Message: message})
	}
}

// send hands the current batch to a writer and starts a new one.
func (imp *contactImport) send(batches chan<- *importBatch) error {
	imp.cur.bytes = imp.src.BytesRead()
	for {
		select {
		case batches <- imp.cur:
			imp.cur = imp.newBatch()
			return nil
		case b := <-imp.committed:
			imp.forget(b)
		case <-imp.stopped:
			return errWriterStopped
		}
	}
}

// awaitWritten waits until the batch holding email is written.
func (imp *contactImport) awaitWritten(email string) error {
	for {
		if _, ok := imp.inflight[email]; !ok {
			return nil
		}
		select {
		case b := <-imp.committed:
			imp.forget(b)
		case <-imp.stopped:
			return errWriterStopped
		}
	}
}

// forget drops the emails of a written batch from inflight.
func (imp *contactImport) forget(b *importBatch) {
	for _, r := range b.rows {
		if imp.inflight[r.c.Email] == b.seq {
			delete(imp.inflight, r.c.Email)
		}
	}
}

// writeAll writes batches with w until batches closes or a writer fails.
func (imp *contactImport) writeAll(ctx context.Context, w batchWriter, batches <-chan *importBatch) {
	for b := range batches {
		var ins, upd int64
		var err error
		select {
		case <-imp.stopped:
			// Another writer failed: the import stops here.
			err = errWriterStopped
		default:
		}
		if err == nil && len(b.rows) > 0 {
			ins, upd, err = w.write(ctx, b.rows, imp.db.now())
		}
		if err != nil && err != errWriterStopped {
			err = fmt.Errorf("import rows of lines %d to %d: %w", b.rows[0].line, b.rows[len(b.rows)-1].line, err)
		}
		imp.record(b, ins, upd, err)
		if err != nil {
			imp.stopOnce.Do(func() { close(imp.stopped) })
			return
		}
		imp.committed <- b
	}
}

// record adds a written (or failed) batch to the stats and reports
// progress.
func (imp *contactImport) record(b *importBatch, ins, upd int64, err error) {
	imp.mu.Lock()
	defer imp.mu.Unlock()
	s := &imp.stats
	s.RowsRead += b.read
	s.Invalid += b.invalid
	s.Errors = append(s.Errors, b.errors...)
	s.BytesRead = max(s.BytesRead, b.bytes)
	if err != nil {
		if imp.werr == nil && err != errWriterStopped {
			imp.werr = err
		}
		return
	}
	s.Inserted += ins
	s.Updated += upd
	s.Unchanged += int64(len(b.rows)) - ins - upd
	if imp.progress != nil {
		imp.progress(*s)
	}
}
