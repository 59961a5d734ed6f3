// Package ui renders the pages of Funnel's web UI: server-side
// html/template pages with embedded CSS and a little JavaScript, no build
// step. Pages read from the store; every change goes through the REST API
// (fetch with the session's CSRF token), so the UI and the API cannot
// disagree about validation: API errors are shown next to their field.
//
// Package admin authenticates and authorizes every page before a handler
// here runs, and puts the Viewer in the request context.
package ui

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
)

//go:embed templates/*.html static/*
var files embed.FS

// Viewer is the signed-in user looking at a page.
type Viewer struct {
	UserID int64
	Email  string
	Name   string
	Role   campaign.Role
	// TimeZone is the IANA name of the zone that pages show times in and
	// read typed times in; "" or an unknown name means UTC.
	TimeZone string
	// CSRF is the session's token; pages put it in forms and in a meta
	// tag that app.js sends as X-CSRF-Token.
	CSRF string
}

// Location is the viewer's time zone: UTC for no viewer, no zone or a
// zone this machine does not know.
func (v *Viewer) Location() *time.Location {
	if v == nil {
		return time.UTC
	}
	loc, err := campaign.LoadTimeZone(v.TimeZone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// Can reports whether the viewer holds one of roles (admin holds all).
func (v *Viewer) Can(roles ...string) bool {
	if v == nil {
		return false
	}
	if v.Role == campaign.RoleAdmin {
		return true
	}
	for _, r := range roles {
		if string(v.Role) == r {
			return true
		}
	}
	return false
}

type viewerKey struct{}

// WithViewer returns ctx carrying v.
func WithViewer(ctx context.Context, v *Viewer) context.Context {
	return context.WithValue(ctx, viewerKey{}, v)
}

func viewerFrom(ctx context.Context) *Viewer {
	v, _ := ctx.Value(viewerKey{}).(*Viewer)
	return v
}

// Message is a message caught by funnel dev's SMTP catcher.
type Message struct {
	ID         int64
	From       string
	To         []string
	Subject    string
	ReceivedAt time.Time
	Raw        []byte
}

// Config holds what the pages need. DB and Logger are required.
type Config struct {
	DB     *store.DB
	Logger *slog.Logger
	// Caught lists caught messages; nil hides the outbox pages.
	Caught func() []Message
	// SMTPPools are the pools of the configured SMTP servers (their pool=
	// URL parameter), which a campaign can be sent through.
	SMTPPools []string
	// Monitor says the asynq queue monitor is served at /monitoring/, so
	// that admins' navigation links it.
	Monitor bool
}

// Pages renders the UI's pages.
type Pages struct {
	db     *store.DB
	log    *slog.Logger
	caught func() []Message
	pools  []string
	// monitor is Config.Monitor.
	monitor bool
	// pages are the parsed pages; they are never executed, only cloned
	// into zoned, one clone per page and time zone that formats times in
	// that zone (html/template cannot clone an executed template).
	pages  map[string]*template.Template
	mu     sync.Mutex
	zoned  map[string]*template.Template
	static http.Handler
}

// timeLayout is how pages show a time: to the minute, with the zone's
// abbreviation.
const timeLayout = "2006-01-02 15:04 MST"

// zoneFuncs are the template functions that depend on the viewer's zone.
//
//	when:       a time.Time or *time.Time as timeLayout in loc ("—" for nil)
//	localInput: a *time.Time as a datetime-local input value in loc
func zoneFuncs(loc *time.Location) template.FuncMap {
	return template.FuncMap{
		"when": func(t any) string {
			switch v := t.(type) {
			case time.Time:
				return v.In(loc).Format(timeLayout)
			case *time.Time:
				if v == nil {
					return "—"
				}
				return v.In(loc).Format(timeLayout)
			}
			return ""
		},
		"localInput": func(t *time.Time) string {
			if t == nil {
				return ""
			}
			return t.In(loc).Format("2006-01-02T15:04")
		},
	}
}

// page returns the page name with its times in loc.
func (p *Pages) page(name string, loc *time.Location) (*template.Template, error) {
	key := name + "\x00" + loc.String()
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.zoned[key]; ok {
		return t, nil
	}
	base, ok := p.pages[name]
	if !ok {
		return nil, fmt.Errorf("no page %q", name)
	}
	t, err := base.Clone()
	if err != nil {
		return nil, err
	}
	t.Funcs(zoneFuncs(loc))
	p.zoned[key] = t
	return t, nil
}

// New parses the embedded templates; a template error panics, since the
// templates are part of the binary and tested.
func New(cfg Config) *Pages {
	funcs := zoneFuncs(time.UTC)
	maps.Copy(funcs, template.FuncMap{
		"iso": func(t *time.Time) string {
			if t == nil {
				return ""
			}
			return t.UTC().Format(time.RFC3339)
		},
		"percent": func(n, of int64) int64 {
			if of <= 0 {
				return 0
			}
			return n * 100 / of
		},
		"rate": rateText,
		"join": strings.Join,
		"add":  func(a, b int) int { return a + b },
		"sub":  func(a, b int64) int64 { return a - b },
		"mul":  func(a, b int) int { return a * b },
		"max":  func(a, b int) int { return max(a, b) },
		"etag": func(kind string, id int64, t time.Time) string {
			return fmt.Sprintf(`"%s-%d-%d"`, kind, id, t.UnixNano())
		},
	})
	p := &Pages{db: cfg.DB, log: cfg.Logger, caught: cfg.Caught, pools: cfg.SMTPPools, monitor: cfg.Monitor, pages: map[string]*template.Template{}, zoned: map[string]*template.Template{}}
	names, _ := fs.Glob(files, "templates/*.html")
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		p.pages[base] = template.Must(template.New(base).Funcs(funcs).ParseFS(files, "templates/layout.html", n))
	}
	sub, _ := fs.Sub(files, "static")
	p.static = http.StripPrefix("/static/", http.FileServerFS(sub))
	return p
}

// rateText writes messages per second as the campaign page does, and
// as app.js (rateText) writes it when the page updates: one decimal,
// or two significant digits below 1 (one message a minute is 0.017,
// not 0.0).
func rateText(r float64) string {
	if r > 0 && r < 1 {
		return strconv.FormatFloat(r, 'g', 2, 64) + " messages/s"
	}
	return strconv.FormatFloat(r, 'f', 1, 64) + " messages/s"
}

// pageData is what every page template receives.
type pageData struct {
	Title  string
	Nav    string
	Viewer *Viewer
	Outbox bool
	// Monitor: the queue monitor is served (admins see its link).
	Monitor bool
	Data    any
}

// render writes a page with the security headers every page has. The
// CSP allows no inline script; the previews of messages are in sandboxed
// iframes.
func (p *Pages) render(w http.ResponseWriter, r *http.Request, status int, name, title, nav string, data any) {
	var buf bytes.Buffer
	v := viewerFrom(r.Context())
	t, err := p.page(name, v.Location())
	if err == nil {
		err = t.ExecuteTemplate(&buf, "layout", pageData{Title: title, Nav: nav, Viewer: v, Outbox: p.caught != nil, Monitor: p.monitor, Data: data})
	}
	if err != nil {
		p.log.ErrorContext(r.Context(), "render page", "page", name, "err", err)
		http.Error(w, "could not render the page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src * data:; style-src 'self' 'unsafe-inline'; frame-src 'self'; frame-ancestors 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// LoginForm is the sign-in form with its errors.
type LoginForm struct {
	Email, Next, CSRF         string
	Error                     string
	EmailError, PasswordError string
}

// Login renders the sign-in page.
func (p *Pages) Login(w http.ResponseWriter, r *http.Request, status int, form LoginForm) {
	p.render(w, r, status, "login", "Sign in", "", form)
}

// Error renders an error page with the given status.
func (p *Pages) Error(w http.ResponseWriter, r *http.Request, status int, msg string) {
	p.render(w, r, status, "error", http.StatusText(status), "", map[string]any{"Status": status, "Message": msg})
}

// Static serves the embedded CSS and JavaScript.
func (p *Pages) Static(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	p.static.ServeHTTP(w, r)
}

// fail renders err as a page: its domain status, or 500 (logged).
func (p *Pages) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := map[string]int{campaign.ENOTFOUND: 404, campaign.EINVALID: 422, campaign.EFORBIDDEN: 403}[campaign.ErrorCode(err)]
	if status == 0 {
		p.log.ErrorContext(r.Context(), "page failed", "path", r.URL.Path, "err", err)
		p.Error(w, r, http.StatusInternalServerError, "Something went wrong; it has been logged.")
		return
	}
	p.Error(w, r, status, campaign.ErrorMessage(err))
}
