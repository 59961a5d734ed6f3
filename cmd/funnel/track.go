package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/funnel-email/funnel/ops"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/templates"
	"github.com/funnel-email/funnel/token"
	"github.com/funnel-email/funnel/tracking"
	"github.com/funnel-email/funnel/worker"
)

// trackCommand serves the tracking endpoints alone: open pixel, click
// redirect, unsubscribe. Like serve it keeps no state; run many.
type trackCommand struct{ env }

func (c *trackCommand) Run(ctx context.Context, args []string) error {
	var cfg Config
	fs := newFlagSet(c.env, "track", "track [flags]", "Serve the tracking endpoints (/t/, /u/, /v/), /healthz, /readyz and /metrics against PostgreSQL and Redis.\n"+
		"Tracking settings: FUNNEL_TRACKING_IP (truncate|hash|full|none), FUNNEL_CLASSIFIER_FILE, FUNNEL_TRUSTED_PROXIES (CIDRs).")
	cfg.bind(fs, c.getenv, ":8082")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if err := cfg.validate(needDatabase | needRedis | needAddr | needSecret); err != nil {
		return err
	}
	log := cfg.logger(c.stderr)
	db, rdb, closeBackends, err := openBackends(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeBackends()
	ln, err := listen(cfg.Addr)
	if err != nil {
		return err
	}
	reg := ops.NewRegistry()
	tr, err := startTracking(cfg, c.getenv, db, rdb, log, reg)
	if err != nil {
		return err
	}
	defer tr.Close()
	mux := http.NewServeMux()
	ops.Register(mux, reg, readinessChecks(db, rdb))
	mountTracking(mux, ops.Instrument(reg, tr.handler))
	return serveHTTP(ctx, ln, mux, log, func(a net.Addr) { log.Info("serving tracking endpoints", "addr", a.String()) })
}

// trackingSettings are the tracking variables, read beside Config.
type trackingSettings struct {
	ipMode         tracking.IPMode // FUNNEL_TRACKING_IP
	rules          *tracking.Rules // FUNNEL_CLASSIFIER_FILE
	trustedProxies []netip.Prefix  // FUNNEL_TRUSTED_PROXIES
}

// readTrackingSettings reads and checks the tracking variables; every
// error names its variable.
func readTrackingSettings(getenv func(string) string) (trackingSettings, error) {
	var s trackingSettings
	var errs []error
	var err error
	if s.ipMode, err = tracking.ParseIPMode(getenv("FUNNEL_TRACKING_IP")); err != nil {
		errs = append(errs, fmt.Errorf("FUNNEL_TRACKING_IP: %w", err))
	}
	if s.rules, err = tracking.LoadRules(getenv("FUNNEL_CLASSIFIER_FILE")); err != nil {
		errs = append(errs, fmt.Errorf("FUNNEL_CLASSIFIER_FILE: %w", err))
	}
	if v := getenv("FUNNEL_TRUSTED_PROXIES"); v != "" {
		for _, p := range strings.Split(v, ",") {
			pfx, err := netip.ParsePrefix(strings.TrimSpace(p))
			if err != nil {
				errs = append(errs, fmt.Errorf("FUNNEL_TRUSTED_PROXIES: %q is not a CIDR prefix such as 10.0.0.0/8", p))
				continue
			}
			s.trustedProxies = append(s.trustedProxies, pfx)
		}
	}
	return s, errors.Join(errs...)
}

// newRecorder builds the event recorder from the settings.
func newRecorder(cfg Config, s trackingSettings, db *store.DB, log *slog.Logger, m *tracking.Metrics) *tracking.Recorder {
	key := sha256.Sum256([]byte("funnel tracking ip hash\x00" + cfg.Secret))
	return tracking.NewRecorder(tracking.RecorderConfig{DB: db, Classifier: tracking.NewClassifier(s.rules),
		IPMode: s.ipMode, HashKey: key[:], Logger: log, Metrics: m})
}

// runningTracking is the tracking handler with its queue.
type runningTracking struct {
	handler *tracking.Handler
	queue   *tracking.Queue
}

// startTracking builds the tracking endpoints over Redis, with the
// direct database write as the fallback.
func startTracking(cfg Config, getenv func(string) string, db *store.DB, rdb redis.UniversalClient, log *slog.Logger, reg prometheus.Registerer) (*runningTracking, error) {
	s, err := readTrackingSettings(getenv)
	if err != nil {
		return nil, err
	}
	codec, err := newCodec(cfg)
	if err != nil {
		return nil, err
	}
	m := tracking.NewMetrics(reg)
	rec := newRecorder(cfg, s, db, log, m)
	q := tracking.NewQueue(tracking.QueueConfig{Redis: rdb, Logger: log, Metrics: m,
		Fallback: func(ctx context.Context, hits []tracking.Hit) error { _, err := rec.Record(ctx, hits); return err }})
	h := tracking.New(tracking.Config{Codec: codec, DB: db, Links: store.NewLinks(db), Queue: q,
		Templates: templates.Options{PublicURL: cfg.PublicURL, Codec: codec}, TrustedProxies: s.trustedProxies, Logger: log, Metrics: m})
	return &runningTracking{handler: h, queue: q}, nil
}

// mountTracking routes the tracking paths of mux to h.
func mountTracking(mux *http.ServeMux, h http.Handler) {
	for _, p := range tracking.Routes {
		mux.Handle(p, h)
	}
}

// Close stops the handler's lookups and flushes the queue; call it after
// the HTTP server has stopped.
func (t *runningTracking) Close() {
	t.handler.Close()
	t.queue.Close()
}

// newCodec returns the token codec of FUNNEL_SECRET and
// FUNNEL_PREVIOUS_SECRETS.
func newCodec(cfg Config) (*token.Codec, error) {
	var prev [][]byte
	for _, p := range cfg.previousSecrets() {
		prev = append(prev, []byte(p))
	}
	c, err := token.NewCodec([]byte(cfg.Secret), prev...)
	if err != nil {
		return nil, fmt.Errorf("FUNNEL_SECRET: %w", err)
	}
	return c, nil
}

// startEventWriter runs the tracking event writer until stop is called.
func startEventWriter(ctx context.Context, cfg Config, getenv func(string) string, db *store.DB, rdb redis.UniversalClient, log *slog.Logger) (func(), error) {
	s, err := readTrackingSettings(getenv)
	if err != nil {
		return nil, err
	}
	q := tracking.NewQueue(tracking.QueueConfig{Redis: rdb, Logger: log})
	w := &worker.EventWriter{Queue: q, Recorder: newRecorder(cfg, s, db, log, nil), Logger: log}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); w.Run(wctx) }()
	return func() { cancel(); <-done; q.Close() }, nil
}
