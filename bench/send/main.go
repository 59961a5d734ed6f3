// Command send measures a campaign send end to end: a real `funnel work`
// process sends a personalized 14 KB template to N contacts through a
// discarding SMTP server on 127.0.0.1, with Postgres and Redis.
//
//	go build -o /tmp/funnel ./cmd/funnel
//	go run ./bench/send -funnel /tmp/funnel \
//	  -db 'postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable' -redis redis://127.0.0.1:6379/8 -contacts 20000
//
// It creates (and drops) a fresh database named funnel_bench_send on the
// server of -db, flushes the Redis database of -redis, and reports
// messages/s from the send call to the last accepted message, the
// worker's peak RSS, and CPU seconds per 1,000 messages of the worker,
// Postgres, Redis and the SMTP server (this process).
package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/outbox"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/worker"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "send:", err)
		os.Exit(1)
	}
}

func run() error {
	bin := flag.String("funnel", "", "path of the funnel binary (required)")
	dbURL := flag.String("db", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "Postgres server URL")
	redisURL := flag.String("redis", "redis://127.0.0.1:6379/8", "Redis URL; its database is flushed")
	n := flag.Int("contacts", 20000, "contacts in the audience")
	conc := flag.Int("concurrency", 16, "worker concurrency (SMTP connections)")
	keep := flag.Bool("keep", false, "keep the database afterwards (to EXPLAIN the ledger's statements)")
	flag.Parse()
	if *bin == "" {
		return fmt.Errorf("-funnel is required")
	}
	ctx := context.Background()
	benchURL, drop, err := freshDB(ctx, *dbURL)
	if err != nil {
		return err
	}
	if !*keep {
		defer drop()
	}
	db, err := store.Open(ctx, benchURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return err
	}
	c, err := fixture(ctx, db, *n)
	if err != nil {
		return err
	}
	opt, err := redis.ParseURL(*redisURL)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opt)
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		return err
	}
	box, err := outbox.Listen("127.0.0.1:0", outbox.Options{Discard: true})
	if err != nil {
		return err
	}
	defer box.Close()

	cmd := exec.Command(*bin, "work", "-addr", "127.0.0.1:0", "-concurrency", strconv.Itoa(*conc))
	cmd.Env = append(os.Environ(), "FUNNEL_DATABASE_URL="+benchURL, "FUNNEL_REDIS_URL="+*redisURL,
		"FUNNEL_SMTP_URL=smtp://"+box.Addr()+"?tls=none", "FUNNEL_PUBLIC_URL=https://t.example.com",
		"FUNNEL_SECRET="+strings.Repeat("b", 40), "FUNNEL_LOG_LEVEL=warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	time.Sleep(2 * time.Second) // let the worker connect and run its first reconcile

	pgBefore, redisBefore := cpuByPID("postgres"), cpuOf("redis-server")
	workerBefore := procCPU(cmd.Process.Pid)
	var self0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self0)

	// What POST /api/v1/campaigns/{id}/send does: schedule for now in the
	// database, then enqueue the start task (the reconciler would pick it
	// up within its 2 s tick otherwise).
	start := time.Now()
	sc, err := db.ScheduleCampaign(ctx, c.ID, start)
	if err != nil {
		return err
	}
	client := worker.NewClient(rdb)
	defer client.Close()
	if err := client.DispatchCampaign(ctx, sc); err != nil {
		return err
	}
	var first time.Time
	for box.Accepted() < int64(*n) {
		if first.IsZero() && box.Accepted() > 0 {
			first = time.Now()
		}
		if time.Since(start) > 10*time.Minute {
			return fmt.Errorf("only %d of %d accepted after 10 minutes", box.Accepted(), *n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	var self1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self1)
	workerCPU := procCPU(cmd.Process.Pid) - workerBefore
	pgCPU, err := postgresCPU(ctx, db, pgBefore)
	if err != nil {
		return err
	}
	redisCPU := cpuOf("redis-server") - redisBefore
	smtpCPU := rusageSeconds(self1) - rusageSeconds(self0)
	per := func(s float64) string { return fmt.Sprintf("%.3f", s/float64(*n)*1000) }
	fmt.Printf("contacts %d, concurrency %d\n", *n, *conc)
	fmt.Printf("send call -> last accepted: %s = %.0f msg/s (first accepted after %s)\n",
		elapsed.Round(time.Millisecond), float64(*n)/elapsed.Seconds(), first.Sub(start).Round(time.Millisecond))
	fmt.Printf("worker peak RSS: %d MB\n", peakRSS(cmd.Process.Pid)/1024)
	fmt.Printf("CPU s per 1,000 messages: worker %s, postgres %s, redis %s, smtp server (bench process) %s\n",
		per(workerCPU), per(pgCPU), per(redisCPU), per(smtpCPU))
	return nil
}

func fixture(ctx context.Context, db *store.DB, n int) (*campaign.Campaign, error) {
	if _, err := db.ExecContext(ctx, fmt.Sprintf(`INSERT INTO contacts (email, first_name, last_name, attributes, created_at, updated_at)
		SELECT 'user' || g || '@example.com', 'Ann' || g, 'Lee', '{"company": "Acme", "plan": "pro"}', now(), now()
		FROM generate_series(1, %d) g`, n)); err != nil {
		return nil, err
	}
	if err := db.SetSender(ctx, campaign.Sender{CompanyName: "Acme", PostalAddress: "1 Road, Town", FromEmail: "news@acme.example"}); err != nil {
		return nil, err
	}
	var body strings.Builder
	body.WriteString(`<h1>Hello {{ .Contact.FirstName }} {{ .Contact.LastName }}</h1><p>News for {{ .Attr "company" | default "your team" }} on the {{ .Attr "plan" }} plan, {{ .Contact.Email }}.</p>`)
	for i := 0; body.Len() < 14<<10; i++ {
		fmt.Fprintf(&body, `<p>Paragraph %d: Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.</p>`, i)
		if i%25 == 0 && i/25 < 4 {
			fmt.Fprintf(&body, `<p><a href="https://acme.example/link%d">Link %d</a></p>`, i/25, i/25)
		}
	}
	tpl := &campaign.Template{Name: "bench", Subject: "News for {{ .Contact.FirstName }}", HTML: body.String()}
	if err := db.CreateTemplate(ctx, tpl); err != nil {
		return nil, err
	}
	seg := &campaign.Segment{Name: "bench", Rule: &campaign.Rule{Field: "email", Op: campaign.OpEndsWith, Value: "@example.com"}}
	if err := db.CreateSegment(ctx, seg); err != nil {
		return nil, err
	}
	c := &campaign.Campaign{Name: "bench", TemplateID: tpl.ID, SegmentIDs: []int64{seg.ID}, FromName: "Acme", FromEmail: "news@acme.example"}
	return c, db.CreateCampaign(ctx, c)
}

func freshDB(ctx context.Context, base string) (string, func(), error) {
	const name = "funnel_bench_send"
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return "", nil, err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, err
	}
	u, _ := url.Parse(base)
	u.Path = "/" + name
	return u.String(), func() {
		c, err := pgx.Connect(context.Background(), base)
		if err == nil {
			c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(context.Background())
		}
	}, nil
}

// procCPU is user+system CPU seconds of pid (from /proc/pid/stat).
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	cut, _ := strconv.ParseFloat(f[13], 64)
	cst, _ := strconv.ParseFloat(f[14], 64)
	return (ut + st + cut + cst) / 100 // USER_HZ
}

// cpuOf sums the CPU seconds of every process whose command name is comm.
func cpuOf(comm string) float64 {
	total := 0.0
	for _, s := range cpuByPID(comm) {
		total += s
	}
	return total
}

// cpuByPID is the CPU seconds of every process whose command name is comm.
func cpuByPID(comm string) map[int]float64 {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	out := map[int]float64{}
	for _, d := range dirs {
		b, err := os.ReadFile(d + "/comm")
		if err != nil || strings.TrimSpace(string(b)) != comm {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(d))
		out[pid] = procCPU(pid)
	}
	return out
}

// postgresCPU is the CPU seconds the Postgres server spent for the bench
// since before: its background processes (WAL writer, checkpointer,
// autovacuum...) and the backends connected to the bench database, but
// not the backends of other databases, which other work on the same
// server (tests in parallel) would add. A backend that exited meanwhile is
// missed; the worker keeps its connections open.
func postgresCPU(ctx context.Context, db *store.DB, before map[int]float64) (float64, error) {
	var pids []int
	err := db.SelectContext(ctx, &pids, `SELECT pid FROM pg_stat_activity
		WHERE datname = current_database() OR backend_type <> 'client backend'`)
	if err != nil {
		return 0, fmt.Errorf("list the bench's Postgres processes: %w", err)
	}
	total := 0.0
	for _, pid := range pids {
		total += procCPU(pid) - before[pid]
	}
	return total, nil
}

// peakRSS is VmHWM of pid in KiB.
func peakRSS(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

func rusageSeconds(r syscall.Rusage) float64 {
	return float64(r.Utime.Sec+r.Stime.Sec) + float64(r.Utime.Usec+r.Stime.Usec)/1e6
}
