// Command importbench measures a CSV import of contacts into Postgres or
// SQLite: rows per second and the peak resident memory of the process.
//
//	go run ./bench/importbench -db 'postgres://postgres@127.0.0.1:5432/funnel_bench?sslmode=disable' -rows 1000000
//	go run ./bench/importbench -db sqlite:/tmp/funnel-bench.db -rows 1000000
//
// Without -file it first writes a deterministic CSV (bench/contactgen,
// -seed) to a temporary file; writing it is not timed. The contacts table
// (with every row that refers to it) is emptied first unless -keep is
// given, so that runs are comparable: point -db at a benchmark database.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/funnel-email/funnel/bench/contactgen"
	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "importbench:", err)
		os.Exit(1)
	}
}

type config struct {
	db, file, cpuprofile string
	rows                 int
	seed                 int64
	update, keep         bool
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("importbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.db, "db", "", "database URL: postgres://... or sqlite:PATH (required)")
	fs.StringVar(&c.file, "file", "", "CSV file to import (default: generate -rows rows)")
	fs.IntVar(&c.rows, "rows", 1000000, "rows to generate when -file is not given")
	fs.Int64Var(&c.seed, "seed", 1, "generator seed")
	fs.BoolVar(&c.update, "update", false, "import with UpdateExisting")
	fs.BoolVar(&c.keep, "keep", false, "keep existing contacts (measures a re-import)")
	fs.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile of the import to this file")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.db == "" {
		return c, errors.New("-db is required")
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	path := cfg.file
	if path == "" {
		if path, err = generate(cfg.rows, cfg.seed); err != nil {
			return err
		}
		defer os.Remove(path)
	}
	db, err := store.Open(ctx, cfg.db)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return err
	}
	if !cfg.keep {
		if err := emptyContacts(ctx, db); err != nil {
			return err
		}
	}
	stats, elapsed, err := importFile(ctx, db, path, cfg)
	if err != nil {
		return err
	}
	report(stdout, db.Dialect, stats, elapsed)
	return nil
}

// generate writes the benchmark CSV to a temporary file.
func generate(rows int, seed int64) (string, error) {
	f, err := os.CreateTemp("", "importbench-*.csv")
	if err != nil {
		return "", err
	}
	bw := bufio.NewWriterSize(f, 1<<16)
	err = contactgen.New(seed).WriteCSV(bw, rows)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("generate CSV: %w", err)
	}
	return f.Name(), nil
}

func emptyContacts(ctx context.Context, db *store.DB) error {
	q := "DELETE FROM contacts"
	if db.Dialect == store.Postgres {
		q = "TRUNCATE contacts CASCADE"
	}
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("empty contacts: %w", err)
	}
	if db.Dialect == store.SQLite {
		// Give back the freed pages so each run starts from the same file.
		_, err := db.ExecContext(ctx, "VACUUM")
		return err
	}
	return nil
}

// importFile times the import of path, with the CPU profile around it.
func importFile(ctx context.Context, db *store.DB, path string, cfg config) (campaign.ImportStats, time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return campaign.ImportStats{}, 0, err
	}
	defer f.Close()
	if cfg.cpuprofile != "" {
		pf, err := os.Create(cfg.cpuprofile)
		if err != nil {
			return campaign.ImportStats{}, 0, err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return campaign.ImportStats{}, 0, err
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	r, err := campaign.NewCSVReader(f)
	if err != nil {
		return campaign.ImportStats{}, 0, err
	}
	stats, err := db.ImportContacts(ctx, r, campaign.ImportOptions{UpdateExisting: cfg.update}, nil)
	return stats, time.Since(start), err
}

func report(w io.Writer, d store.Dialect, s campaign.ImportStats, elapsed time.Duration) {
	fmt.Fprintf(w, "dialect=%s rows=%d inserted=%d updated=%d unchanged=%d invalid=%d bytes=%d\n",
		d, s.RowsRead, s.Inserted, s.Updated, s.Unchanged, s.Invalid, s.BytesRead)
	fmt.Fprintf(w, "elapsed=%.2fs rows_per_sec=%.0f peak_rss=%s\n",
		elapsed.Seconds(), float64(s.RowsRead)/elapsed.Seconds(), peakRSS())
}

// peakRSS reads the process's high-water resident set size (VmHWM).
func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return "unknown"
}
