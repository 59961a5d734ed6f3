// Command adminbench measures the admin service (REST API and web UI
// pages) over a database with a million contacts: latency percentiles of
// the list, search and detail endpoints, sequentially and under
// concurrency.
//
//	go run ./bench/adminbench -db 'postgres://postgres@127.0.0.1:5432/funnel_adminbench?sslmode=disable'
//	go run ./bench/adminbench -db '...' -reuse -rounds 3 -cpuprofile /tmp/admin.pprof
//	go run ./bench/adminbench -db sqlite:/tmp/adminbench.db
//
// It migrates the database and, unless -reuse finds the contacts already
// there, fills an empty one: the contacts through the CSV import
// (bench/contactgen rows, store.DB.ImportContacts, as bench/importbench),
// then a few statuses and a rare tag, 30 templates, segments and
// campaigns, 10 of them sent to 10% of the list each (deliveries, sent,
// open and click events) and one sending (half of its 10% sent), and
// 5,000 leads. -rounds 0 only prepares the database. It signs in an admin user (a
// user token for the API, a session for the pages) and serves admin.New
// on a loopback listener in the same process, wrapped in the metrics
// middleware as `funnel serve` does.
//
// Each round requests every endpoint -n (API) or -pages (UI) times one
// after another, then again from -concurrency clients at once, and
// prints p50/p95/p99/max in milliseconds; the last table holds the median
// of each figure over the rounds. Times are taken at the client over
// loopback, from sending the request to reading the last byte of the
// answer, so they are an upper bound of the server's time.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"runtime/pprof"
	"time"

	"github.com/funnel-email/funnel/admin"
	"github.com/funnel-email/funnel/ops"
	"github.com/funnel-email/funnel/store"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "adminbench:", err)
		os.Exit(1)
	}
}

type config struct {
	db, cpuprofile string
	contacts       int
	seed           int64
	reuse          bool
	n, pages       int
	concurrency    int
	rounds         int
	only           *regexp.Regexp
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	var only string
	fs := flag.NewFlagSet("adminbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.db, "db", "", "database URL: postgres://... or sqlite:PATH (required; a benchmark database)")
	fs.IntVar(&c.contacts, "contacts", 1_000_000, "contacts to generate")
	fs.Int64Var(&c.seed, "seed", 1, "generator seed")
	fs.BoolVar(&c.reuse, "reuse", false, "reuse a database that already holds -contacts contacts instead of requiring an empty one")
	fs.IntVar(&c.n, "n", 1000, "requests per API endpoint, per mode and round")
	fs.IntVar(&c.pages, "pages", 200, "requests per UI page, per mode and round")
	fs.IntVar(&c.concurrency, "concurrency", 4, "clients of the concurrent mode (1: sequential only)")
	fs.IntVar(&c.rounds, "rounds", 3, "rounds; the summary is the median of each figure (0: only prepare the database)")
	fs.StringVar(&only, "only", "", "measure only endpoints whose name matches this regular expression")
	fs.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile of the process during the measurements to this file")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.db == "" {
		return c, errors.New("-db is required")
	}
	if c.n < 1 || c.pages < 1 || c.concurrency < 1 || c.rounds < 0 || c.contacts < 1000 {
		return c, errors.New("-n, -pages and -concurrency must be positive, -rounds not negative and -contacts at least 1000")
	}
	var err error
	if c.only, err = regexp.Compile(only); err != nil {
		return c, fmt.Errorf("-only: %w", err)
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	db, err := store.Open(ctx, cfg.db)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return err
	}
	if err := prepare(ctx, db, cfg, stdout); err != nil || cfg.rounds == 0 {
		return err
	}
	fx, err := fixturesOf(ctx, db, cfg.seed)
	if err != nil {
		return err
	}
	base, stop, err := serve(db)
	if err != nil {
		return err
	}
	defer stop()
	cl, err := signIn(ctx, db, base, cfg.concurrency)
	if err != nil {
		return err
	}
	if cfg.cpuprofile != "" {
		f, err := os.Create(cfg.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	return measure(ctx, cl, endpoints(fx, cfg.only), cfg, stdout)
}

// prepare loads the data set, or checks that -reuse may use what is there.
func prepare(ctx context.Context, db *store.DB, cfg config, out io.Writer) error {
	n, err := db.CountContacts(ctx)
	if err != nil {
		return err
	}
	switch {
	case n == int64(cfg.contacts) && cfg.reuse:
		fmt.Fprintf(out, "reusing %d contacts\n", n)
		return nil
	case n != 0:
		return fmt.Errorf("the database holds %d contacts: pass -reuse (with -contacts %d) or use an empty database", n, n)
	}
	return load(ctx, db, cfg, out)
}

// serve starts the admin service on a loopback port and returns its base
// URL and a function that stops it.
func serve(db *store.DB) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// No Mail: nothing measured previews or sends a template.
	api := admin.New(admin.Config{DB: db, Logger: log, PublicURL: "http://" + ln.Addr().String()})
	srv := &http.Server{Handler: ops.Instrument(ops.NewRegistry(), api), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		api.Close()
	}, nil
}
