// Command segments measures segment counts on generated data.
//
//	go run ./bench/segments -db postgres://.../funnel_bench_segments -contacts 1000000 -events 10000000
//	go run ./bench/segments -db sqlite:/tmp/segments.db -contacts 1000000 -events 10000000
//
// It migrates the database, fills an empty one deterministically (Postgres
// COPY; SQLite multi-row inserts in large transactions; the events indexes
// are dropped during the load and rebuilt after it) and runs VACUUM ANALYZE
// (ANALYZE on SQLite); then it indexes the country attribute
// (store.DB.CreateAttributeIndex, timed: on Postgres the first call
// rewrites the contacts table) and prints the median of -runs timings of
// each query, with the plan when -explain is set. A database that already
// holds the requested number of contacts is reused without loading
// anything.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "segments:", err)
		os.Exit(1)
	}
}

type config struct {
	url              string
	contacts, events int
	runs             int
	seed             uint64
	explain          bool
}

func run(ctx context.Context, args []string, out io.Writer) error {
	var cfg config
	fs := flag.NewFlagSet("segments", flag.ContinueOnError)
	fs.StringVar(&cfg.url, "db", "", "database URL (postgres://... or sqlite:PATH)")
	fs.IntVar(&cfg.contacts, "contacts", 1_000_000, "contacts to generate")
	fs.IntVar(&cfg.events, "events", 10_000_000, "events to generate")
	fs.IntVar(&cfg.runs, "runs", 5, "timed runs per query (the median is reported)")
	fs.Uint64Var(&cfg.seed, "seed", 1, "generator seed")
	fs.BoolVar(&cfg.explain, "explain", false, "print each query's plan")
	if err := fs.Parse(args); err != nil {
		return err
	}
	db, err := store.Open(ctx, cfg.url)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return err
	}
	n, err := db.CountContacts(ctx)
	if err != nil {
		return err
	}
	switch {
	case n == int64(cfg.contacts):
		fmt.Fprintf(out, "reusing %d contacts\n", n)
	case n != 0:
		return fmt.Errorf("the database holds %d contacts, not 0 or %d: use an empty database", n, cfg.contacts)
	default:
		if err := generate(ctx, db, cfg, out); err != nil {
			return err
		}
	}
	// Idempotent: on a reused database it upgrades an index made by an
	// earlier version, or does next to nothing.
	start := time.Now()
	if err := db.CreateAttributeIndex(ctx, "country"); err != nil {
		return err
	}
	fmt.Fprintf(out, "attribute index on country: %s\n", time.Since(start).Round(time.Millisecond))
	return measure(ctx, db, cfg, out)
}

func generate(ctx context.Context, db *store.DB, cfg config, out io.Writer) error {
	now := time.Now().UTC().Truncate(time.Second)
	rng := rand.New(rand.NewPCG(cfg.seed, 42))
	start := time.Now()
	if err := load(ctx, db, "contacts", contactColumns, cfg.contacts, contactRow(rng, now)); err != nil {
		return err
	}
	fmt.Fprintf(out, "contacts: %d in %s\n", cfg.contacts, time.Since(start).Round(time.Millisecond))
	indexes, err := dropEventIndexes(ctx, db)
	if err != nil {
		return err
	}
	start = time.Now()
	if err := load(ctx, db, "events", eventColumns, cfg.events, eventRow(rng, now, cfg.contacts)); err != nil {
		return err
	}
	fmt.Fprintf(out, "events: %d in %s\n", cfg.events, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	for _, ddl := range indexes {
		if _, err := db.ExecContext(ctx, ddl); err != nil {
			return fmt.Errorf("rebuild index: %w", err)
		}
	}
	// VACUUM sets the visibility map as autovacuum would after a bulk load,
	// so that plans may use index-only scans; SQLite has no such map.
	analyze := "ANALYZE"
	if db.Dialect == store.Postgres {
		analyze = "VACUUM ANALYZE"
	}
	if _, err := db.ExecContext(ctx, analyze); err != nil {
		return err
	}
	fmt.Fprintf(out, "indexes and ANALYZE: %s\n", time.Since(start).Round(time.Millisecond))
	return nil
}

var (
	contactColumns = []string{"email", "first_name", "last_name", "attributes", "tags", "status", "score", "lifecycle_stage", "created_at", "updated_at"}
	eventColumns   = []string{"contact_id", "campaign_id", "kind", "link", "human", "reason", "occurred_at"}
	countries      = []string{"DE", "DE", "FR", "FR", "US", "US", "US", "GB", "ES", "IT"} // DE 20%
	plans          = []string{"free", "free", "free", "pro", "pro", "team", "enterprise"}
)

// contactRow fills row i of the contacts: 20% in DE, 30% tagged customer,
// 3% unsubscribed, created over the last two years.
func contactRow(rng *rand.Rand, now time.Time) func(i int, row []any) {
	return func(i int, row []any) {
		attrs, _ := json.Marshal(map[string]any{
			"country": countries[rng.IntN(len(countries))], "plan": plans[rng.IntN(len(plans))],
			"seats": float64(1 + rng.IntN(200)),
		})
		var tags []string
		for _, t := range []struct {
			name string
			pct  int
		}{{"customer", 30}, {"lead", 40}, {"newsletter", 60}, {"vip", 5}} {
			if rng.IntN(100) < t.pct {
				tags = append(tags, t.name)
			}
		}
		tagJSON, _ := json.Marshal(campaign.NormalizeTags(tags))
		status := "active"
		if rng.IntN(100) < 3 {
			status = "unsubscribed"
		}
		created := now.Add(-time.Duration(rng.Int64N(int64(730 * 24 * time.Hour)))).Truncate(time.Microsecond)
		copy(row, []any{fmt.Sprintf("c%08d@example.com", i), "First", "Last", attrs, tagJSON, status,
			float64(rng.IntN(100)), campaign.LifecycleStages[rng.IntN(len(campaign.LifecycleStages))], created, created})
	}
}

// eventRow fills row i of the events over the last year: mostly sends and
// opens, 10% clicks (80% of them human), 1% unsubscribes, in 100 campaigns.
func eventRow(rng *rand.Rand, now time.Time, contacts int) func(i int, row []any) {
	kinds := []struct {
		kind string
		pct  int
	}{{"sent", 55}, {"opened", 30}, {"clicked", 10}, {"bounced", 3}, {"unsubscribed", 1}, {"complained", 1}}
	return func(i int, row []any) {
		p, kind := rng.IntN(100), ""
		for _, k := range kinds {
			if p < k.pct {
				kind = k.kind
				break
			}
			p -= k.pct
		}
		link := ""
		if kind == "clicked" {
			link = []string{"https://x.io/pricing", "https://x.io/blog", "https://x.io/docs"}[rng.IntN(3)]
		}
		human := (kind != "opened" && kind != "clicked") || rng.IntN(100) < 80
		at := now.Add(-time.Duration(rng.Int64N(int64(365 * 24 * time.Hour)))).Truncate(time.Microsecond)
		copy(row, []any{int64(1 + rng.IntN(contacts)), int64(1 + rng.IntN(100)), kind, link, human, "", at})
	}
}

// load inserts n generated rows into table.
func load(ctx context.Context, db *store.DB, table string, cols []string, n int, fill func(int, []any)) error {
	if db.Dialect == store.Postgres {
		return copyPostgres(ctx, db, table, cols, n, fill)
	}
	return insertSQLite(ctx, db, table, cols, n, fill)
}

func copyPostgres(ctx context.Context, db *store.DB, table string, cols []string, n int, fill func(int, []any)) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		i := 0
		row := make([]any, len(cols))
		_, err := pc.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromFunc(func() ([]any, error) {
			if i == n {
				return nil, nil
			}
			fill(i, row)
			i++
			return row, nil
		}))
		return err
	})
}

// insertSQLite writes 500-row INSERTs, 200 000 rows per transaction.
func insertSQLite(ctx context.Context, db *store.DB, table string, cols []string, n int, fill func(int, []any)) error {
	const batch, perTx = 500, 200_000
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	stmt := func(rows int) string {
		return "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES " +
			strings.TrimSuffix(strings.Repeat(one+", ", rows), ", ")
	}
	row := make([]any, len(cols))
	for done := 0; done < n; {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for end := min(done+perTx, n); done < end; {
			rows := min(batch, end-done)
			args := make([]any, 0, rows*len(cols))
			for range rows {
				fill(done, row)
				args = append(args, row...)
				done++
			}
			if _, err := tx.ExecContext(ctx, stmt(rows), args...); err != nil {
				tx.Rollback()
				return fmt.Errorf("insert %s: %w", table, err)
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// dropEventIndexes drops the secondary indexes of events and returns the
// statements that rebuild them, so that the load does not maintain them row
// by row.
func dropEventIndexes(ctx context.Context, db *store.DB) ([]string, error) {
	q := `SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL`
	if db.Dialect == store.Postgres {
		q = `SELECT indexdef FROM pg_indexes WHERE tablename = 'events' AND indexname <> 'events_pkey'`
	}
	var ddl []string
	if err := db.SelectContext(ctx, &ddl, q); err != nil {
		return nil, err
	}
	for _, d := range ddl {
		name := strings.Fields(d)[2] // CREATE INDEX name ON ...
		if _, err := db.ExecContext(ctx, "DROP INDEX "+name); err != nil {
			return nil, err
		}
	}
	return ddl, nil
}

var queries = []struct{ name, rule string }{
	{"DE customers who clicked in 30 days, not unsubscribed", `attr.country = "DE" and tag "customer" and clicked(within: 30d) and not unsubscribed`},
	{"indexed attribute equality (country = DE, 20%)", `attr.country = "DE"`},
	{"indexed attribute equality (country = GB, 10%)", `attr.country = "GB"`},
}

func measure(ctx context.Context, db *store.DB, cfg config, out io.Writer) error {
	for _, q := range queries {
		rule, err := campaign.ParseRule(q.rule)
		if err != nil {
			return err
		}
		var times []time.Duration
		var count int64
		for range cfg.runs {
			start := time.Now()
			if count, err = db.CountSegment(ctx, rule); err != nil {
				return err
			}
			times = append(times, time.Since(start))
		}
		slices.Sort(times)
		fmt.Fprintf(out, "%-55s count %8d  median %8s  min %8s  max %8s\n", q.name, count,
			times[len(times)/2].Round(time.Microsecond), times[0].Round(time.Microsecond), times[len(times)-1].Round(time.Microsecond))
		if cfg.explain {
			if err := explain(ctx, db, rule, out); err != nil {
				return err
			}
		}
	}
	return nil
}

func explain(ctx context.Context, db *store.DB, rule *campaign.Rule, out io.Writer) error {
	where, args, err := db.SegmentWhere(ctx, rule)
	if err != nil {
		return err
	}
	q := "EXPLAIN QUERY PLAN SELECT count(*) FROM contacts WHERE " + where
	if db.Dialect == store.Postgres {
		q = "EXPLAIN (ANALYZE, BUFFERS) SELECT count(*) FROM contacts WHERE " + where
	}
	rows, err := db.QueryContext(ctx, db.Rebind(q), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		fmt.Fprintf(out, "    %v\n", vals[len(vals)-1])
	}
	return rows.Err()
}
