package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/funnel-email/funnel/admin"
	"github.com/funnel-email/funnel/mailer"
	"github.com/funnel-email/funnel/ops"
	"github.com/funnel-email/funnel/store"
)

// newFlagSet returns a flag set whose -h prints the command's synopsis and
// flags to stderr.
func newFlagSet(e env, name, synopsis, description string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: funnel %s\n\n%s\n\nFlags:\n", synopsis, description)
		fs.PrintDefaults()
	}
	return fs
}

// noArgs fails when a command that takes only flags got positional args.
func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

// openCurrentStore opens the database and refuses to go on when its schema
// is behind this binary: serving on an old schema corrupts data quietly.
func openCurrentStore(ctx context.Context, databaseURL string) (*store.DB, error) {
	db, err := store.Open(ctx, databaseURL)
	if err != nil {
		return nil, fmt.Errorf("FUNNEL_DATABASE_URL: %w", err)
	}
	if err := db.CheckSchema(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// openBackends opens the database, refusing a schema that is behind, and
// Redis, as serve, work and track all need; closeBackends closes both.
func openBackends(ctx context.Context, cfg Config) (db *store.DB, rdb *redis.Client, closeBackends func(), err error) {
	if db, err = openCurrentStore(ctx, cfg.DatabaseURL); err != nil {
		return nil, nil, nil, err
	}
	if rdb, err = connectRedis(ctx, cfg.RedisURL); err != nil {
		db.Close()
		return nil, nil, nil, err
	}
	return db, rdb, func() { rdb.Close(); db.Close() }, nil
}

// publicMux joins what serve and dev answer on one port: the ops
// endpoints, and the admin surface with the tracking endpoints (/t/, /u/,
// /v/) counted per route.
func publicMux(reg *prometheus.Registry, checks map[string]ops.Check, api, tracking http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	ops.Register(mux, reg, checks)
	routes := http.NewServeMux()
	routes.Handle("/", api)
	mountTracking(routes, tracking)
	mux.Handle("/", ops.Instrument(reg, routes))
	return mux
}

// readinessChecks are the /readyz checks shared by every process kind.
func readinessChecks(db *store.DB, rdb redis.UniversalClient) map[string]ops.Check {
	checks := map[string]ops.Check{
		"database": func(ctx context.Context) error { return db.PingContext(ctx) },
		"schema":   db.CheckSchema,
	}
	if rdb != nil {
		checks["redis"] = func(ctx context.Context) error { return rdb.Ping(ctx).Err() }
	}
	return checks
}

// listen opens the HTTP listener early, so that a process learns its
// address (port 0 in tests) before it builds what needs it.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("FUNNEL_ADDR: listen on %s: %w", addr, err)
	}
	return ln, nil
}

// serveHTTP reports the bound address through started, and serves h on ln
// until ctx is done; then it shuts down gracefully, giving requests in
// flight up to ten seconds.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger, started func(net.Addr)) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if started != nil {
		started(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down HTTP server: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// sendingSetup describes for the admin's settings pages how this process
// sends mail: the servers of FUNNEL_SMTP_URL without their passwords, a
// check of each, and tm's DKIM keys and bounce domain. catcher, when not
// empty, is the address of funnel dev's SMTP catcher. The configuration
// was validated.
func sendingSetup(cfg Config, tm *mailer.TemplateMail, catcher string) (admin.Sending, error) {
	s := admin.Sending{BounceDomain: tm.Composer.BounceDomain()}
	for _, k := range tm.Composer.DKIMKeys() {
		s.DKIM = append(s.DKIM, admin.DKIMKey{Domain: k.Domain, Selector: k.Selector, PublicKey: k.Signer.Public()})
	}
	if cfg.SMTPURL == "" {
		return s, nil
	}
	servers, err := mailer.ParseSMTPServers(cfg.SMTPURL)
	if err != nil {
		return s, fmt.Errorf("FUNNEL_SMTP_URL: %w", err)
	}
	for _, sc := range servers {
		addr := net.JoinHostPort(sc.Host, fmt.Sprint(sc.Port))
		s.SMTP = append(s.SMTP, admin.SMTPServer{Host: sc.Host, Port: sc.Port, TLS: string(sc.TLS), Username: sc.Username,
			Weight: max(sc.Weight, 1), MaxConns: sc.MaxConns, Rate: sc.Rate, Pool: sc.Pool, Catcher: catcher != "" && addr == catcher})
	}
	s.CheckSMTP = func(ctx context.Context, i int) admin.SMTPCheck {
		r := mailer.CheckSMTP(ctx, servers[i].Config)
		return admin.SMTPCheck{OK: r.OK, Stage: r.Stage, Error: r.Error, Code: r.Code, Greeting: r.Greeting, Hello: r.Hello,
			Extensions: r.Extensions, TLS: r.TLS, Auth: r.Auth, LatencyMS: float64(r.Latency.Microseconds()/100) / 10}
	}
	return s, nil
}
