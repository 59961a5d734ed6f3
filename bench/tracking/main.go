// Command tracking benchmarks the tracking endpoints under wrk against
// real PostgreSQL and Redis, and checks afterwards that the events table
// holds exactly one event per answered request and how long the backlog
// took to drain.
//
//	go run ./bench/tracking -kind open   # the open pixel
//	go run ./bench/tracking -kind click  # the click redirect
//
// It creates a fresh database (dropped at the end), a campaign with
// -deliveries deliveries and three links, serves the tracking handler and
// runs the event writer in this process, and has wrk fetch a different
// valid token on every request (a Lua script walks a list of paths), so
// nothing can be answered from a cache keyed by URL.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/templates"
	"github.com/funnel-email/funnel/token"
	"github.com/funnel-email/funnel/tracking"
	"github.com/funnel-email/funnel/worker"
)

func main() {
	var (
		pgURL       = flag.String("database", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "PostgreSQL server URL (a fresh database is created on it)")
		redisURL    = flag.String("redis", "redis://127.0.0.1:6379/0", "Redis URL (a unique key is used and deleted)")
		kind        = flag.String("kind", "open", "open or click")
		deliveries  = flag.Int("deliveries", 200000, "deliveries in the campaign")
		paths       = flag.Int("paths", 600000, "distinct token paths wrk cycles through")
		duration    = flag.String("duration", "30s", "wrk -d")
		threads     = flag.Int("threads", 2, "wrk -t")
		conns       = flag.Int("connections", 50, "wrk -c")
		cpuprofile  = flag.String("cpuprofile", "", "write a CPU profile of this process during the run")
		writerBatch = flag.Int("batch", 2000, "hits per event-writer transaction")
		drainLimit  = flag.Duration("drain-timeout", 2*time.Minute, "give up waiting for the backlog to drain after this long")
	)
	flag.Parse()
	if err := run(*pgURL, *redisURL, *kind, *deliveries, *paths, *duration, *threads, *conns, *cpuprofile, *writerBatch, *drainLimit); err != nil {
		log.Fatal(err)
	}
}

func run(pgURL, redisURL, kind string, nDeliveries, nPaths int, duration string, threads, conns int, cpuprofile string, batch int, drainLimit time.Duration) error {
	ctx := context.Background()
	dbURL, drop, err := freshDatabase(ctx, pgURL)
	if err != nil {
		return err
	}
	defer drop()
	db, err := store.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return err
	}
	ids, err := seed(ctx, db, nDeliveries)
	if err != nil {
		return err
	}

	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	key := fmt.Sprintf("funnel:bench:tracking:%d", time.Now().UnixNano())
	defer rdb.Del(ctx, key, key+":lock")

	codec, _ := token.NewCodec([]byte("bench-secret-bench-secret-bench-secret"))
	rec := tracking.NewRecorder(tracking.RecorderConfig{DB: db})
	q := tracking.NewQueue(tracking.QueueConfig{Redis: rdb, Key: key,
		Fallback: func(ctx context.Context, hits []tracking.Hit) error { _, err := rec.Record(ctx, hits); return err }})
	h := tracking.New(tracking.Config{Codec: codec, DB: db, Links: store.NewLinks(db), Queue: q})
	var answered atomic.Int64
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &codeWriter{ResponseWriter: w}
		h.ServeHTTP(cw, r)
		if cw.code == http.StatusOK || cw.code == http.StatusFound {
			answered.Add(1)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: counted}
	go func() { _ = srv.Serve(ln) }()

	writer := &worker.EventWriter{Queue: q, Recorder: rec, Batch: batch}
	wctx, stopWriter := context.WithCancel(ctx)
	defer stopWriter()
	writerDone := make(chan struct{})
	go func() { defer close(writerDone); writer.Run(wctx) }()

	dir, err := os.MkdirTemp("", "funnel-bench-tracking")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	script, err := writeScript(dir, codec, kind, ids, nPaths)
	if err != nil {
		return err
	}

	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		_ = pprof.StartCPUProfile(f)
	}
	target := "http://" + ln.Addr().String()
	fmt.Printf("wrk -t%d -c%d -d%s --latency -s %s %s  (%s, %d deliveries, %d distinct paths)\n", threads, conns, duration, filepath.Base(script), target, kind, len(ids), nPaths)
	out, err := exec.Command("wrk", fmt.Sprintf("-t%d", threads), fmt.Sprintf("-c%d", conns), "-d"+duration, "--latency", "-s", script, target).CombinedOutput()
	loadEnd := time.Now()
	if cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	fmt.Print(string(out))
	if err != nil {
		return fmt.Errorf("wrk: %w", err)
	}

	// The backlog: wait until the queue is empty and its last batch written.
	var backlog int64
	for {
		n, err := q.Len(ctx)
		if err != nil {
			return err
		}
		if backlog == 0 {
			backlog = n
		}
		if n == 0 {
			break
		}
		if time.Since(loadEnd) > drainLimit {
			return fmt.Errorf("backlog of %d hits not drained %s after the load stopped (%d left)", backlog, drainLimit, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopWriter()
	<-writerDone
	drained := time.Since(loadEnd)
	_ = srv.Shutdown(ctx)
	h.Close()
	q.Close()

	var rows int64
	if err := db.GetContext(ctx, &rows, `SELECT COUNT(*) FROM events`); err != nil {
		return err
	}
	wrkTotal := regexp.MustCompile(`(\d+) requests in`).FindStringSubmatch(string(out))
	fmt.Printf("\nbacklog at load end: %d hits; drained %.2fs after the load stopped\n", backlog, drained.Seconds())
	fmt.Printf("answered (200/302): %d; wrk counted: %s; events rows: %d; equal: %v\n", answered.Load(), wrkTotal[1], rows, rows == answered.Load())
	if rows != answered.Load() {
		return fmt.Errorf("events %d != answered %d", rows, answered.Load())
	}
	return nil
}

type codeWriter struct {
	http.ResponseWriter
	code int
}

func (w *codeWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *codeWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// freshDatabase creates an empty database on the server and returns its
// URL and a function that drops it.
func freshDatabase(ctx context.Context, base string) (string, func(), error) {
	name := fmt.Sprintf("funnel_bench_tracking_%d", time.Now().UnixNano())
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, err
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close(ctx)
		return "", nil, err
	}
	u, _ := url.Parse(base)
	u.Path = "/" + name
	return u.String(), func() {
		_, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		admin.Close(context.Background())
	}, nil
}

var benchLinks = []templates.Link{
	{Index: 1, URL: "https://example.com/pricing", Intent: "pricing"},
	{Index: 2, URL: "https://example.com/blog/launch"},
	{Index: 3, URL: "https://example.com/docs?utm_source=funnel"},
}

// seed creates n contacts and a campaign with one sent delivery each
// (accepted a day ago) and records the campaign's links.
func seed(ctx context.Context, db *store.DB, n int) ([]int64, error) {
	tpl := &campaign.Template{Name: "bench", Subject: "Hi", HTML: "<p>Hello</p>"}
	if err := db.CreateTemplate(ctx, tpl); err != nil {
		return nil, err
	}
	seg := &campaign.Segment{Name: "all", Rule: &campaign.Rule{Field: "email", Op: campaign.OpContains, Value: "@"}}
	if err := db.CreateSegment(ctx, seg); err != nil {
		return nil, err
	}
	c := &campaign.Campaign{Name: "bench", TemplateID: tpl.ID, SegmentIDs: []int64{seg.ID}, FromEmail: "news@example.com"}
	if err := db.CreateCampaign(ctx, c); err != nil {
		return nil, err
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO contacts (email, created_at, updated_at)
		SELECT 'bench' || g || '@example.com', now(), now() FROM generate_series(1, $1) g`, n); err != nil {
		return nil, err
	}
	var ids []int64
	if err := db.SelectContext(ctx, &ids, `INSERT INTO deliveries (campaign_id, contact_id, status, sent_at, created_at, updated_at)
		SELECT $1, id, 'sent', now() - interval '1 day', now(), now() FROM contacts ORDER BY id RETURNING id`, c.ID); err != nil {
		return nil, err
	}
	if err := worker.NewLinkRecorder(store.NewLinks(db)).Record(ctx, c.ID, ids[0], benchLinks); err != nil {
		return nil, err
	}
	_, err := db.ExecContext(ctx, `ANALYZE`)
	return ids, err
}

// writeScript writes the token paths and a wrk Lua script that sends each
// request to the next path, with a browser's User-Agent.
func writeScript(dir string, codec *token.Codec, kind string, ids []int64, n int) (string, error) {
	pathsFile := filepath.Join(dir, "paths.txt")
	f, err := os.Create(pathsFile)
	if err != nil {
		return "", err
	}
	w := bufio.NewWriter(f)
	for i := range n {
		d := ids[i%len(ids)]
		switch kind {
		case "open":
			fmt.Fprintln(w, templates.PathOpen+codec.Encode(token.Token{Kind: token.Open, Delivery: d}))
		case "click":
			link := 1 + (i/len(ids))%len(benchLinks)
			fmt.Fprintln(w, templates.PathClick+codec.Encode(token.Token{Kind: token.Click, Delivery: d, Link: link}))
		default:
			return "", fmt.Errorf("-kind %q: want open or click", kind)
		}
	}
	if err := w.Flush(); err != nil {
		return "", err
	}
	f.Close()
	script := filepath.Join(dir, "paths.lua")
	lua := strings.ReplaceAll(`
local paths = {}
for line in io.lines("PATHS") do paths[#paths + 1] = line end
local counter = 0
local ua = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
function setup(thread)
  thread:set("offset", counter)
  counter = counter + 1
end
function init(args)
  i = offset * math.floor(#paths / 8)
end
function request()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1], { ["User-Agent"] = ua })
end
`, "PATHS", pathsFile)
	return script, os.WriteFile(script, []byte(lua), 0o600)
}
