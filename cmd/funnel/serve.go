package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/funnel-email/funnel/admin"
	"github.com/funnel-email/funnel/ops"
)

// serveCommand runs the admin API. It keeps no state of its own, so any
// number can run behind a load balancer.
type serveCommand struct{ env }

// staleImportAge is how long a running import may go without recording
// progress before a starting server declares it interrupted.
const staleImportAge = 2 * time.Minute

func (c *serveCommand) Run(ctx context.Context, args []string) error {
	var cfg Config
	fs := newFlagSet(c.env, "serve", "serve [flags]", "Serve the admin API, /healthz, /readyz and /metrics against PostgreSQL and Redis.")
	cfg.bind(fs, c.getenv, ":8080")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if err := cfg.validate(needDatabase | needRedis | needAddr | needPublicURL | needSecret); err != nil {
		return err
	}
	log := cfg.logger(c.stderr)
	db, rdb, closeBackends, err := openBackends(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeBackends()
	if n, err := db.FailStaleImports(ctx, staleImportAge); err != nil {
		return err
	} else if n > 0 {
		log.Warn("marked interrupted imports as failed", "count", n)
	}

	mail, err := newTemplateMail(cfg)
	if err != nil {
		return err
	}
	sending, err := sendingSetup(cfg, mail, "")
	if err != nil {
		return err
	}
	ln, err := listen(cfg.Addr)
	if err != nil {
		return err
	}
	monitor, stopMonitor := newMonitor(rdb)
	defer stopMonitor()
	api := admin.New(admin.Config{DB: db, Logger: log, Mail: mail, PublicURL: cfg.PublicURL,
		AllowPrivateWebhooks: cfg.WebhookAllowPrivate == "1", Monitor: monitor, Sending: sending})
	defer api.Close()
	reg := ops.NewRegistry()
	tr, err := startTracking(cfg, c.getenv, db, rdb, log, reg)
	if err != nil {
		return err
	}
	defer tr.Close()
	mux := publicMux(reg, readinessChecks(db, rdb), api, tr.handler)
	return serveHTTP(ctx, ln, mux, log, func(a net.Addr) { log.Info("serving admin API", "addr", a.String()) })
}

// connectRedis opens a client for a validated Redis URL and checks that
// the server answers.
func connectRedis(ctx context.Context, rawURL string) (*redis.Client, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("FUNNEL_REDIS_URL: %w", err)
	}
	rdb := redis.NewClient(opt)
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pingCtx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("FUNNEL_REDIS_URL: connect to %s: %w", opt.Addr, err)
	}
	return rdb, nil
}
