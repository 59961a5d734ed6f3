// Package admin is Funnel's admin service: the REST API under /api/v1 that
// integrators use, and the web UI (package admin/ui renders its pages)
// that marketers and sales people use. Every route, listed in one table
// (routes.go), authenticates the caller and checks its role: API routes
// accept a bearer token or a browser session, pages only a session.
package admin

import (
	"context"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/funnel-email/funnel/admin/ui"
	"github.com/funnel-email/funnel/campaign"
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
	// Monitor, when set, is the asynq queue monitor, served to admins under
	// /monitoring/ (its handler must be rooted there and read-only: the UI
	// sends no CSRF token, so its writes would be refused anyway).
	Monitor http.Handler
	// Outbox, when set, serves GET /api/v1/dev/outbox (funnel dev's
	// caught messages) to admins and marketers.
	Outbox http.Handler
	// Caught, when set, lists funnel dev's caught messages for the
	// outbox pages of the web UI.
	Caught func() []ui.Message
	// PublicURL is where people reach the service; when it is https the
	// session cookie is marked Secure (it also is for a request that came
	// over TLS).
	PublicURL string
	// SessionTTL is how long a browser session lasts (default 12 hours).
	SessionTTL time.Duration
	// AllowPrivateWebhooks lets webhook endpoints point at loopback,
	// private and link-local addresses (tests, funnel dev, a CRM inside
	// the network); off, such URLs are refused with 422.
	AllowPrivateWebhooks bool
	// Sending is how this process sends mail (SMTP servers, DKIM keys,
	// bounce domain), shown to admins under /settings and checked by
	// POST /api/v1/smtp-servers/{index}/check. The zero value shows none.
	Sending Sending
}

// API serves the admin REST API.
type API struct {
	db        *store.DB
	log       *slog.Logger
	maxBody   int64
	maxUpload int64
	uploadDir string
	outbox    http.Handler
	monitor   http.Handler
	mail      Mail
	// privateHooks is Config.AllowPrivateWebhooks.
	privateHooks bool
	mux          *http.ServeMux
	ctx          context.Context // cancelled by Close; bounds background imports
	cancel       context.CancelFunc
	imports      sync.WaitGroup
	table        []route
	pages        *ui.Pages
	secure       bool // session cookies are Secure
	ttl          time.Duration
	openAPICache
	caught bool // the outbox pages are served
	// sending is Config.Sending.
	sending Sending
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
		uploadDir: cfg.UploadDir, outbox: cfg.Outbox, monitor: cfg.Monitor, mail: cfg.Mail, privateHooks: cfg.AllowPrivateWebhooks, mux: http.NewServeMux(), ctx: ctx, cancel: cancel,
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	a.caught = cfg.Caught != nil
	a.sending = cfg.Sending
	a.secure = strings.HasPrefix(cfg.PublicURL, "https://")
	a.ttl = cfg.SessionTTL
	a.pages = ui.New(ui.Config{DB: cfg.DB, Logger: cfg.Logger, Caught: cfg.Caught, SMTPPools: cfg.Sending.pools(), Monitor: cfg.Monitor != nil})
	a.routes()
	return a
}

// ServeHTTP serves the API. A NUL character in the URL or a form is
// refused before any handler: PostgreSQL cannot store it in text, and
// SQLite would store what PostgreSQL refuses.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := a.refuseNUL(w, r); err != nil {
		a.writeError(w, r, err)
		return
	}
	a.mux.ServeHTTP(w, r)
}

// refuseNUL returns EMALFORMED when the request's path, query or
// url-encoded form holds a NUL character. JSON bodies are checked where
// they are decoded.
func (a *API) refuseNUL(w http.ResponseWriter, r *http.Request) error {
	if strings.Contains(r.URL.RawQuery, "%00") || strings.ContainsRune(r.URL.Path, 0) {
		return campaign.Errorf(campaign.EMALFORMED, "the URL contains a NUL character (%%00), which no field may hold")
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" || r.Method != http.MethodPost {
		return nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, a.maxBody)
	if err := r.ParseForm(); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return campaign.Errorf(campaign.ETOOLARGE, "the form is larger than %d bytes", a.maxBody)
		}
		return campaign.Errorf(campaign.EMALFORMED, "the form cannot be read: %v", err)
	}
	for name, vs := range r.PostForm {
		for _, v := range vs {
			if strings.ContainsRune(v, 0) || strings.ContainsRune(name, 0) {
				return &campaign.Error{Code: campaign.EMALFORMED, Message: "the form contains a NUL character, which no field may hold",
					Details: []campaign.FieldError{{Field: strings.ReplaceAll(name, "\x00", ""), Message: "contains a NUL character"}}}
			}
		}
	}
	return nil
}

// Close stops background work (running imports) and waits for it.
func (a *API) Close() {
	a.cancel()
	a.imports.Wait()
}
