package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/funnel-email/funnel/campaign"
)

// importCommand imports contacts from a CSV file.
type importCommand struct{ env }

// tagList is a repeatable, comma-separated -tag flag.
type tagList []string

func (t *tagList) String() string { return strings.Join(*t, ",") }
func (t *tagList) Set(v string) error {
	*t = append(*t, strings.Split(v, ",")...)
	return nil
}

func (c *importCommand) Run(ctx context.Context, args []string) error {
	var cfg Config
	fs := newFlagSet(c.env, "import", "import [flags] FILE.csv",
		"Import contacts from a CSV file with a header row. Columns email (required), first_name, last_name and tags\n"+
			"are recognised in any case; every other column becomes an attribute. Invalid rows are reported with their\n"+
			"line number and skipped; the valid rows are kept. Unsubscribed, bounced and complained contacts stay so.")
	cfg.bind(fs, c.getenv, "")
	var opts campaign.ImportOptions
	var tags tagList
	fs.BoolVar(&opts.UpdateExisting, "update", false, "update the names, attributes and tags of contacts that exist")
	fs.Var(&tags, "tag", "tag every imported contact (repeatable, or comma-separated)")
	fs.StringVar(&opts.ConsentSource, "consent-source", "csv import", "where the imported contacts gave consent")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("import: expected one CSV file, got %d arguments", fs.NArg())
	}
	opts.Tags = campaign.NormalizeTags(tags)
	if err := cfg.validate(needDatabase); err != nil {
		return err
	}
	path := fs.Arg(0)
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	src, err := campaign.NewCSVReader(f)
	if err != nil {
		return fmt.Errorf("import %s: %w", path, err)
	}
	db, err := openCurrentStore(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	imp, err := db.CreateImport(ctx, path, info.Size(), opts)
	if err != nil {
		return err
	}
	p := newProgress(c.stderr, info.Size())
	stats, importErr := db.ImportContacts(ctx, src, opts, p.update)
	p.finish(stats)
	finishCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := db.FinishImport(finishCtx, imp.ID, stats, importErr); err != nil {
		return err
	}
	printImportSummary(c.stdout, path, stats)
	if importErr != nil {
		return fmt.Errorf("import %s stopped after %d rows: %w", path, stats.RowsRead, importErr)
	}
	return nil
}

func printImportSummary(w io.Writer, path string, s campaign.ImportStats) {
	fmt.Fprintf(w, "%s: %d rows: %d inserted, %d updated, %d unchanged, %d invalid\n",
		path, s.RowsRead, s.Inserted, s.Updated, s.Unchanged, s.Invalid)
	for _, e := range s.Errors {
		fmt.Fprintf(w, "  line %d: %s\n", e.Line, e.Message)
	}
	if shown := int64(len(s.Errors)); s.Invalid > shown {
		fmt.Fprintf(w, "  ... and %d more invalid rows\n", s.Invalid-shown)
	}
}

// progress shows an import's progress: a redrawn bar on a terminal, a
// plain line every few seconds otherwise (logs, CI).
type progress struct {
	w       io.Writer
	total   int64
	tty     bool
	start   time.Time
	lastOut time.Time
}

func newProgress(w io.Writer, total int64) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, total: total, tty: ok && term.IsTerminal(int(f.Fd())), start: time.Now()}
}

func (p *progress) update(s campaign.ImportStats) {
	every := 5 * time.Second
	if p.tty {
		every = 200 * time.Millisecond
	}
	if time.Since(p.lastOut) < every {
		return
	}
	p.lastOut = time.Now()
	p.print(s, false)
}

func (p *progress) finish(s campaign.ImportStats) { p.print(s, true) }

func (p *progress) print(s campaign.ImportStats, done bool) {
	elapsed := time.Since(p.start)
	rate := float64(s.RowsRead) / max(elapsed.Seconds(), 0.001)
	frac := 1.0
	if p.total > 0 && !done {
		frac = min(float64(s.BytesRead)/float64(p.total), 1)
	}
	eta := "-"
	if frac > 0 && !done {
		eta = (time.Duration(float64(elapsed)/frac) - elapsed).Round(time.Second).String()
	}
	if !p.tty {
		fmt.Fprintf(p.w, "import: %3.0f%% %d rows %.0f rows/s eta %s\n", frac*100, s.RowsRead, rate, eta)
		return
	}
	const width = 30
	filled := int(frac * width)
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", width-filled)
	fmt.Fprintf(p.w, "\r[%s] %3.0f%% %d rows %.0f rows/s eta %-8s", bar, frac*100, s.RowsRead, rate, eta)
	if done {
		fmt.Fprintln(p.w)
	}
}

var _ flag.Value = (*tagList)(nil)
