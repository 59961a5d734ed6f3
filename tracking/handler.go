package tracking

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/templates"
	"github.com/funnel-email/funnel/token"
)

// Config configures a Handler. Codec, DB, Links and Queue are required.
type Config struct {
	Codec *token.Codec
	DB    *store.DB
	Links *store.Links
	Queue *Queue
	// Templates renders messages for view in browser (GET /v/): the
	// PublicURL and Codec the sender renders with. Without a PublicURL the
	// web version is not available (404 page).
	Templates templates.Options
	// TrustedProxies are the networks of reverse proxies whose
	// X-Forwarded-For is believed; otherwise the peer address is the
	// client's.
	TrustedProxies []netip.Prefix
	Logger         *slog.Logger
	Metrics        *Metrics
	// Now is the clock; tests may replace it.
	Now func() time.Time
}

// Handler serves the public tracking endpoints (see Routes). It holds
// only what they use; Close stops its background lookups.
type Handler struct {
	cfg    Config
	mux    *http.ServeMux
	ids    *hitIDs
	lookup *batcher[int64, *store.TrackedDelivery]
	cache  *deliveryCache
	views  viewTemplates
}

// New returns a Handler.
func New(cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux(), ids: newHitIDs()}
	h.lookup = newBatcher(4, 256, h.findDeliveries)
	h.cache = newDeliveryCache(deliveryCacheSize, deliveryCacheTTL, cfg.Now)
	h.routes()
	return h
}

// Routes lists the path prefixes the Handler serves, for mounting it on
// another mux.
var Routes = []string{"/t/", "/u/", "/v/"}

// ServeHTTP serves the tracking endpoints. A path that is not in clean
// form gets a 404 rather than the mux's redirect to the cleaned path: the
// endpoints answer with nothing but their own pages, the pixel and
// redirects to recorded links.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; strings.Contains(p, "//") || strings.Contains(p, "/./") || strings.Contains(p, "/../") {
		notFound(w)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// Close stops the delivery lookups; requests after Close fail with 503.
func (h *Handler) Close() { h.lookup.close() }

// routes registers the whole tracking surface. GET patterns also answer
// HEAD.
func (h *Handler) routes() {
	h.mux.HandleFunc("GET /t/o/{token}", h.open)
	h.mux.HandleFunc("GET /t/c/{token}", h.click)
	h.mux.HandleFunc("GET /u/{token}", h.unsubscribePage)
	h.mux.HandleFunc("POST /u/{token}", h.unsubscribe)
	h.mux.HandleFunc("GET /v/{token}", h.view)
	for _, p := range Routes {
		h.mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) { notFound(w) })
	}
}

// findDeliveries is the lookup batcher's function: one pair of queries
// for every delivery asked for at about the same time.
func (h *Handler) findDeliveries(batch []*call[int64, *store.TrackedDelivery]) {
	ids := make([]int64, len(batch))
	for i, c := range batch {
		ids[i] = c.arg
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	found, err := h.cfg.Links.FindDeliveries(ctx, ids)
	if err == nil {
		h.cache.put(found)
	}
	for _, c := range batch {
		c.res, c.err = found[c.arg], err
	}
}

// The delivery cache: entries per generation, and a generation's age.
const (
	deliveryCacheSize = 100_000
	deliveryCacheTTL  = time.Minute
)

// delivery returns the delivery of a token, nil when it does not exist.
func (h *Handler) delivery(id int64) (*store.TrackedDelivery, error) {
	if d := h.cache.get(id); d != nil {
		return d, nil
	}
	return h.lookup.do(id)
}

// transparent GIF, 1x1.
var pixel = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

// Header values the hot paths share instead of building them on every
// request; nothing modifies a header value slice in place.
var (
	pixelLength    = []string{strconv.Itoa(len(pixel))}
	gifType        = []string{"image/gif"}
	noStore        = []string{"no-store"}
	clickReferrer  = []string{"no-referrer-when-downgrade"}
	noCacheControl = []string{"no-store, no-cache, must-revalidate, max-age=0"}
	noCachePragma  = []string{"no-cache"}
	expiresZero    = []string{"0"}
)

func (h *Handler) open(w http.ResponseWriter, r *http.Request) {
	t, err := h.cfg.Codec.Decode(r.PathValue("token"), token.Open)
	if err != nil {
		notFound(w)
		return
	}
	if !t.Preview() {
		h.record(r, &Hit{Kind: campaign.EventOpened, Delivery: t.Delivery})
	}
	hd := w.Header()
	hd["Content-Type"] = gifType
	hd["Content-Length"] = pixelLength
	noCache(hd)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(pixel)
	}
}

// click redirects to the link the token names. Only a link recorded for
// the token's delivery is ever a destination, and only an http(s) one.
func (h *Handler) click(w http.ResponseWriter, r *http.Request) {
	t, err := h.cfg.Codec.Decode(r.PathValue("token"), token.Click)
	if err != nil {
		notFound(w)
		return
	}
	if t.Preview() {
		page(w, http.StatusOK, "Preview link", "This link belongs to a preview or test message, so it goes nowhere. In the real campaign it leads to its destination.")
		return
	}
	d, err := h.delivery(t.Delivery)
	if err != nil {
		unavailable(w, h.cfg.Logger, err)
		return
	}
	if d == nil {
		notFound(w)
		return
	}
	if t.Link == token.HoneypotLink {
		h.record(r, &Hit{Kind: campaign.EventClicked, Delivery: t.Delivery, Link: t.Link})
		page(w, http.StatusOK, "Nothing here", "")
		return
	}
	link, err := h.cfg.Links.Link(r.Context(), d, t.Link)
	if campaign.ErrorCode(err) == campaign.ENOTFOUND || (err == nil && !redirectable(link.URL)) {
		notFound(w)
		return
	}
	if err != nil {
		unavailable(w, h.cfg.Logger, err)
		return
	}
	h.record(r, &Hit{Kind: campaign.EventClicked, Delivery: t.Delivery, Link: t.Link, URL: link.URL})
	hd := w.Header()
	hd["Location"] = []string{link.URL}
	hd["Cache-Control"] = noStore
	hd["Referrer-Policy"] = clickReferrer
	w.WriteHeader(http.StatusFound)
}

// redirectable accepts absolute http(s) URLs with a host: never
// javascript:, data: or a relative path.
func redirectable(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil
}

// unsubscribePage shows the unsubscribe button. It changes nothing:
// scanners fetch every link.
func (h *Handler) unsubscribePage(w http.ResponseWriter, r *http.Request) {
	t, err := h.cfg.Codec.Decode(r.PathValue("token"), token.Unsubscribe)
	if err != nil {
		notFound(w)
		return
	}
	if !t.Preview() {
		d, err := h.delivery(t.Delivery)
		if err != nil {
			unavailable(w, h.cfg.Logger, err)
			return
		}
		if d == nil {
			notFound(w)
			return
		}
	}
	page(w, http.StatusOK, "Unsubscribe", `Do you want to stop receiving these emails?</p>
<form method="post"><input type="hidden" name="confirm" value="yes"><button type="submit">Unsubscribe</button></form><p>`)
}

// maxForm bounds an unsubscribe POST body.
const maxForm = 16 << 10

// unsubscribe handles the RFC 8058 one-click POST (body
// List-Unsubscribe=One-Click) and the page's button: the contact is
// unsubscribed before the answer is sent, and an event is recorded.
func (h *Handler) unsubscribe(w http.ResponseWriter, r *http.Request) {
	t, err := h.cfg.Codec.Decode(r.PathValue("token"), token.Unsubscribe)
	if err != nil {
		notFound(w)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	var flags HitFlags
	switch {
	case r.PostFormValue("List-Unsubscribe") == "One-Click":
		flags = FlagOneClick
	case r.PostFormValue("confirm") != "":
	default:
		page(w, http.StatusBadRequest, "Bad request", "An unsubscribe request carries List-Unsubscribe=One-Click or the page's confirmation.")
		return
	}
	if t.Preview() {
		done(w, flags, "This is a preview or test message: nobody was unsubscribed.")
		return
	}
	d, err := h.delivery(t.Delivery)
	if err != nil {
		unavailable(w, h.cfg.Logger, err)
		return
	}
	if d == nil {
		notFound(w)
		return
	}
	changed, err := h.cfg.DB.Unsubscribe(r.Context(), d.ContactID)
	if campaign.ErrorCode(err) == campaign.ENOTFOUND {
		notFound(w)
		return
	}
	if err != nil {
		unavailable(w, h.cfg.Logger, err)
		return
	}
	if changed {
		flags |= FlagChanged
	}
	h.record(r, &Hit{Kind: campaign.EventUnsubscribed, Delivery: t.Delivery, Flags: flags})
	done(w, flags, "You are unsubscribed and will not receive these emails again.")
}

func done(w http.ResponseWriter, flags HitFlags, msg string) {
	if flags&FlagOneClick != 0 {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(msg + "\n"))
		return
	}
	page(w, http.StatusOK, "Unsubscribed", msg)
}

// record queues the hit of an accepted request with what the classifier
// needs from the request. It returns once the hit is durable; a hit that
// could not be stored anywhere is counted and logged by the queue, and
// the request is answered all the same (the reader comes first).
func (h *Handler) record(r *http.Request, hit *Hit) {
	hit.ID = h.ids.next()
	hit.Time = h.cfg.Now()
	if r.Method == http.MethodHead {
		hit.Flags |= FlagHead
	}
	if isPrefetch(r.Header) {
		hit.Flags |= FlagPrefetch
	}
	hit.IP = h.clientIP(r)
	ua := r.Header.Get("User-Agent")
	if len(ua) > MaxUserAgent {
		ua = ua[:MaxUserAgent]
	}
	hit.UA = ua
	if err := h.cfg.Queue.Push(hit); err != nil {
		h.cfg.Metrics.lost.Inc()
		return
	}
	h.cfg.Metrics.hit(hit.Kind).Inc()
}

func isPrefetch(hd http.Header) bool {
	for _, k := range [...]string{"Purpose", "Sec-Purpose", "X-Moz", "X-Purpose"} {
		if v := hd[k]; len(v) > 0 {
			l := strings.ToLower(v[0])
			if strings.Contains(l, "prefetch") || strings.Contains(l, "preview") {
				return true
			}
		}
	}
	return false
}

// clientIP is the peer's address or, behind a trusted proxy, the last
// X-Forwarded-For address that is not a trusted proxy.
func (h *Handler) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if len(h.cfg.TrustedProxies) == 0 || !h.trusted(host) {
		return host
	}
	xff := r.Header.Values("X-Forwarded-For")
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for k := len(parts) - 1; k >= 0; k-- {
			p := strings.TrimSpace(parts[k])
			if !h.trusted(p) {
				if _, err := netip.ParseAddr(p); err != nil {
					return host
				}
				return p
			}
		}
	}
	return host
}

func (h *Handler) trusted(s string) bool {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range h.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func noCache(hd http.Header) {
	hd["Cache-Control"] = noCacheControl
	hd["Pragma"] = noCachePragma
	hd["Expires"] = expiresZero
}

func notFound(w http.ResponseWriter) {
	page(w, http.StatusNotFound, "Link not found", "This link is not valid. It may have been mistyped or cut short.")
}

func unavailable(w http.ResponseWriter, log *slog.Logger, err error) {
	if !errors.Is(err, errClosed) {
		log.Error("tracking lookup failed", "err", err)
	}
	w.Header().Set("Retry-After", "5")
	page(w, http.StatusServiceUnavailable, "Try again", "This link cannot be followed right now. Please try again in a moment.")
}

// page writes a small HTML page. body is trusted HTML (constants only).
func page(w http.ResponseWriter, status int, title, body string) {
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Content-Type-Options", "nosniff")
	noCache(hd)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">` +
		`<title>` + title + `</title><style>body{font:16px/1.5 system-ui,sans-serif;max-width:32em;margin:4em auto;padding:0 1em}</style>` +
		`</head><body><h1>` + title + `</h1><p>` + body + `</p></body></html>`))
}
