// Package admin is Funnel's admin service: the REST API under /api/v1 that
// marketers, sales people and integrators use. Every route authenticates
// the caller and checks its role.
package admin

import (
	"context"
	"log/slog"
	"net/http"
	"sync"

	"github.com/funnel-email/funnel/store"
)

// Config holds what the API needs. DB and Logger are required.
type Config struct {
	DB     *store.DB
	Logger *slog.Logger
	// MaxBodyBytes bounds JSON request bodies (default 1 MiB).
	MaxBodyBytes int64
	// MaxUploadBytes bounds CSV uploads (default 1 GiB).
	MaxUploadBytes int64
	// UploadDir holds CSV uploads while they are imported (default: the
	// system temporary directory).
	UploadDir string
	// Mail checks, previews and test-sends templates. Required.
	Mail Mail
	// Outbox, when set, serves GET /api/v1/dev/outbox (funnel dev's
	// caught messages) to admins and marketers.
	Outbox http.Handler
}

// API serves the admin REST API.
type API struct {
	db        *store.DB
	log       *slog.Logger
	maxBody   int64
	maxUpload int64
	uploadDir string
	outbox    http.Handler
	mail      Mail
	mux       *http.ServeMux
	ctx       context.Context // cancelled by Close; bounds background imports
	cancel    context.CancelFunc
	imports   sync.WaitGroup
}

// New returns an API ready to serve. Call Close when the server stops, so
// that running imports are stopped and recorded as failed.
func New(cfg Config) *API {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = 1 << 30
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &API{
		db: cfg.DB, log: cfg.Logger, maxBody: cfg.MaxBodyBytes, maxUpload: cfg.MaxUploadBytes,
		uploadDir: cfg.UploadDir, outbox: cfg.Outbox, mail: cfg.Mail, mux: http.NewServeMux(), ctx: ctx, cancel: cancel,
	}
	a.routes()
	return a
}

// ServeHTTP serves the API.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// Close stops background work (running imports) and waits for it.
func (a *API) Close() {
	a.cancel()
	a.imports.Wait()
}
