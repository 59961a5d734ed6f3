package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/funnel-email/funnel/mailer"
	"github.com/funnel-email/funnel/ops"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/worker"
)

// workCommand runs a background worker. Any number can run, on any number
// of machines, against the same PostgreSQL and Redis.
type workCommand struct{ env }

func (c *workCommand) Run(ctx context.Context, args []string) error {
	var cfg Config
	fs := newFlagSet(c.env, "work", "work [flags]", "Run a background worker against PostgreSQL and Redis; -addr serves /healthz, /readyz and /metrics.")
	cfg.bind(fs, c.getenv, ":8081")
	concurrency := fs.Int("concurrency", 20, "tasks run at once (and SMTP connections open at most)")
	lease := fs.Duration("lease", 30*time.Second, "how long a claim of deliveries holds before another worker may recover it")
	retryBase := fs.Duration("retry-base", time.Minute, "wait before the first retry of a delivery deferred by a 4xx reply or a dropped connection; it doubles per attempt up to an hour")
	reconcileEvery := fs.Duration("reconcile-every", time.Minute, "how often the batches of every sending campaign are enqueued again from the ledger (what recovers the queue after Redis lost it)")
	batchSize := fs.Int64("batch-size", worker.DefaultBucketSize, "deliveries per batch task; a campaign's batches are sent in parallel, one SMTP connection each")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if err := errors.Join(validateSendingFlags(*concurrency, *lease, *retryBase, *reconcileEvery, *batchSize),
		cfg.validate(needDatabase|needRedis|needAddr|needPublicURL|needSecret|needSMTP)); err != nil {
		return err
	}
	log := cfg.logger(c.stderr)
	tuneGC(c.getenv)
	db, rdb, closeBackends, err := openBackends(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeBackends()

	ln, err := listen(cfg.Addr)
	if err != nil {
		return err
	}
	scoreDelay, err := cfg.scoreDelay(c.getenv)
	if err != nil {
		return err
	}
	reg := ops.NewRegistry()
	_, stopSending, err := startSending(ctx, cfg, db, rdb, log, reg, sendingOptions{
		RetryBase: *retryBase, ReconcileEvery: *reconcileEvery, BatchSize: *batchSize,
		Concurrency: *concurrency, Lease: *lease, PrivateHooks: cfg.WebhookAllowPrivate == "1", Journal: true, ScoreDelay: scoreDelay})
	if err != nil {
		return err
	}
	defer stopSending()
	stopEvents, err := startEventWriter(ctx, cfg, c.getenv, db, rdb, log)
	if err != nil {
		return err
	}
	defer stopEvents()
	mux := http.NewServeMux()
	ops.Register(mux, reg, readinessChecks(db, rdb))
	return serveHTTP(ctx, ln, mux, log, func(a net.Addr) { log.Info("worker running", "ops_addr", a.String()) })
}

// validateSendingFlags checks funnel work's sending flags; every error
// names its flag.
func validateSendingFlags(concurrency int, lease, retryBase, reconcileEvery time.Duration, batchSize int64) error {
	var errs []error
	if concurrency < 1 {
		errs = append(errs, fmt.Errorf("-concurrency: %d is less than 1", concurrency))
	}
	if lease <= 0 {
		errs = append(errs, fmt.Errorf("-lease: %s is not a positive duration", lease))
	}
	if retryBase <= 0 || retryBase > time.Hour {
		errs = append(errs, fmt.Errorf("-retry-base: %s is not a duration more than 0 and at most 1h", retryBase))
	}
	if reconcileEvery <= 0 {
		errs = append(errs, fmt.Errorf("-reconcile-every: %s is not a positive duration", reconcileEvery))
	}
	if batchSize < 1 {
		errs = append(errs, fmt.Errorf("-batch-size: %d is less than 1", batchSize))
	}
	return errors.Join(errs...)
}

// tuneGC trades memory for CPU in a worker: its live heap while sending
// is small (about 20 MB at concurrency 32), so collecting at five times
// the live heap instead of twice spends a fraction of the collector's
// CPU, and a soft limit of 120 MiB keeps it within the 150 MB budget.
// GOGC and GOMEMLIMIT in the environment take precedence.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(120 << 20)
	}
}

// sendingOptions are what funnel work and funnel dev run the sending
// side with.
type sendingOptions struct {
	Concurrency int           // asynq tasks, hence SMTP connections
	Lease       time.Duration // of a claim of deliveries
	// PrivateHooks lets webhooks reach private addresses.
	PrivateHooks bool
	// Journal keeps outcomes in Redis until a claim ends (see
	// worker.SenderConfig.Journal): only when Redis outlives the worker.
	Journal bool
	// RetryBase is the first backoff of a deferred delivery, ReconcileEvery
	// the reconciler's full pass and BatchSize the deliveries per batch
	// task; zero means the worker package's default.
	RetryBase      time.Duration
	ReconcileEvery time.Duration
	BatchSize      int64
	// ScoreDelay is how old a human click must be before it is scored
	// (Config.scoreDelay).
	ScoreDelay time.Duration
}

// startSending starts the asynq server with the campaign handlers over a
// pool of SMTP connections to the servers of FUNNEL_SMTP_URL (each with
// its weight, connection cap and rate), and the reconciler. stop
// shuts them down gracefully: no new SMTP transaction starts, those in
// flight finish and are recorded, the rest is handed back to the queue.
func startSending(ctx context.Context, cfg Config, db *store.DB, rdb redis.UniversalClient, log *slog.Logger,
	reg prometheus.Registerer, opts sendingOptions) (*worker.Server, func(), error) {
	concurrency := opts.Concurrency
	tm, err := newTemplateMail(cfg)
	if err != nil {
		return nil, nil, err
	}
	servers, err := mailer.ParseSMTPServers(cfg.SMTPURL)
	if err != nil {
		return nil, nil, fmt.Errorf("FUNNEL_SMTP_URL: %w", err)
	}
	for i := range servers {
		// A worker never holds more connections than it runs tasks.
		if servers[i].MaxConns == 0 || servers[i].MaxConns > concurrency {
			servers[i].MaxConns = concurrency
		}
	}
	pool, err := mailer.NewPool(servers...)
	if err != nil {
		return nil, nil, fmt.Errorf("FUNNEL_SMTP_URL: %w", err)
	}
	domainRates, err := cfg.domainRates()
	if err != nil {
		return nil, nil, fmt.Errorf("FUNNEL_DOMAIN_RATES: %w", err)
	}
	if err := worker.RegisterQueueMetrics(reg, rdb); err != nil {
		return nil, nil, err
	}
	w := worker.NewServer(worker.Config{Redis: rdb, Logger: log, Concurrency: concurrency})
	client := worker.NewClient(rdb)
	if opts.BatchSize > 0 {
		client.BucketSize = opts.BatchSize
	}
	sender := worker.NewSender(worker.SenderConfig{
		DB: db, Redis: rdb, Client: client, Pool: pool, Composer: tm.Composer, Templates: tm.Options,
		Logger: log, Metrics: worker.NewMetrics(reg), Lease: opts.Lease, Stopping: w.Stopping(), DomainRates: domainRates,
		Journal: opts.Journal, RetryBase: opts.RetryBase,
	})
	sender.Register(w)
	// Scoring and webhook delivery: every worker runs a scorer; the scoring
	// cursor in the database serializes them.
	hooks := worker.NewWebhooks(worker.WebhookConfig{DB: db, Redis: rdb, Logger: log, AllowPrivate: opts.PrivateHooks})
	hooks.Register(w)
	if err := w.Start(); err != nil {
		return nil, nil, err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		(&worker.Reconciler{DB: db, Client: client, Sender: sender, Logger: log, Interval: opts.ReconcileEvery}).Run(rctx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		(&worker.Scorer{DB: db, Webhooks: hooks, Logger: log, Settle: opts.ScoreDelay}).Run(rctx)
	}()
	return w, func() {
		cancel()
		wg.Wait()
		w.Shutdown()
		pool.Close()
		client.Close()
		hooks.Close()
	}, nil
}
