package campaign

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Webhook event types.
const (
	WebhookLeadCreated        = "lead.created"
	WebhookLeadUpdated        = "lead.updated"
	WebhookContactUnsubscribe = "contact.unsubscribed"
)

// WebhookEvents lists every event type an endpoint may subscribe to.
var WebhookEvents = []string{WebhookLeadCreated, WebhookLeadUpdated, WebhookContactUnsubscribe}

// Webhook is an endpoint that receives events as signed JSON POSTs.
//
// Each request carries the headers
//
//	Funnel-Event: lead.created
//	Funnel-Delivery: 42                      (the idempotency key: same on every retry)
//	Funnel-Signature: t=1767225600,v1=5257a8...
//
// where v1 is the lower-case hex HMAC-SHA256, keyed with the endpoint's
// secret, of the timestamp, a dot and the raw body: "1767225600.{...}".
// Receivers recompute it, compare in constant time, and refuse timestamps
// older than a few minutes (replays). Delivery is at least once: a
// receiver that answers late may see a delivery again and should ignore a
// Funnel-Delivery (also the body's "id") it has already processed.
type Webhook struct {
	ID     int64    `json:"id"`
	URL    string   `json:"url"`
	Events []string `json:"events"`
	Active bool     `json:"active"`
	// Secret signs deliveries. It is shown when the endpoint is created
	// and never again.
	Secret       string    `json:"secret,omitempty"`
	SecretPrefix string    `json:"secret_prefix"`
	Description  string    `json:"description"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// WebhookPatch changes an endpoint; absent fields are kept.
type WebhookPatch struct {
	URL         *string   `json:"url"`
	Events      *[]string `json:"events"`
	Active      *bool     `json:"active"`
	Description *string   `json:"description"`
}

// Apply copies the present fields into w.
func (p *WebhookPatch) Apply(w *Webhook) {
	if p.URL != nil {
		w.URL = *p.URL
	}
	if p.Events != nil {
		w.Events = *p.Events
	}
	if p.Active != nil {
		w.Active = *p.Active
	}
	if p.Description != nil {
		w.Description = *p.Description
	}
}

// MaxWebhookURL bounds an endpoint URL, in bytes.
const MaxWebhookURL = 2048

// Validate checks the endpoint. Unless allowPrivate, a URL whose host is
// localhost or an IP address that is loopback, private, link-local,
// unspecified or multicast is refused (names are checked again against
// the addresses they resolve to when delivering).
func (w *Webhook) Validate(allowPrivate bool) error {
	var details []FieldError
	if err := CheckWebhookURL(w.URL, allowPrivate); err != nil {
		details = append(details, FieldError{Field: "url", Message: err.Error()})
	}
	if len(w.Events) == 0 {
		details = append(details, FieldError{Field: "events", Message: "must name at least one of " + strings.Join(WebhookEvents, ", ")})
	}
	for i, e := range w.Events {
		if !slices.Contains(WebhookEvents, e) {
			details = append(details, FieldError{Field: fmt.Sprintf("events[%d]", i), Message: fmt.Sprintf("unknown event %q: use %s", clipText(e), strings.Join(WebhookEvents, ", "))})
		}
	}
	if len(w.Description) > 500 {
		details = append(details, FieldError{Field: "description", Message: "longer than 500 bytes"})
	}
	if len(details) > 0 {
		return Invalid("invalid webhook", details...)
	}
	return nil
}

// CheckWebhookURL returns why raw cannot be a webhook endpoint, or nil.
func CheckWebhookURL(raw string, allowPrivate bool) error {
	if raw == "" {
		return errors.New("is required")
	}
	if len(raw) > MaxWebhookURL {
		return fmt.Errorf("longer than %d bytes", MaxWebhookURL)
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return errors.New("must not contain spaces or control characters")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("is not a valid URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("must be an http or https URL")
	case u.Opaque != "" || u.Host == "":
		return errors.New("must name a host")
	case u.User != nil:
		return errors.New("must not carry credentials: authenticate with the signature")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return errors.New("must not have a fragment")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return errors.New("has an invalid port")
		}
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "" {
		return errors.New("must name a host")
	}
	if allowPrivate {
		return nil
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") || strings.HasSuffix(host, ".internal") || strings.HasSuffix(host, ".local") {
		return errors.New("must not point at this machine or a private network")
	}
	if ip := net.ParseIP(host); ip != nil && !PublicIP(ip) {
		return errors.New("must not point at a loopback, private or link-local address")
	}
	return nil
}

// PublicIP reports whether ip may be the target of a webhook when private
// targets are not allowed.
func PublicIP(ip net.IP) bool {
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	addr = addr.Unmap()
	switch {
	case addr.IsLoopback(), addr.IsPrivate(), addr.IsLinkLocalUnicast(), addr.IsLinkLocalMulticast(),
		addr.IsUnspecified(), addr.IsMulticast(), addr.IsInterfaceLocalMulticast():
		return false
	}
	// Carrier-grade NAT (100.64.0.0/10) and 0.0.0.0/8 are not public either.
	for _, p := range []netip.Prefix{netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("192.0.0.0/24")} {
		if p.Contains(addr) {
			return false
		}
	}
	return true
}

// SignatureHeader is the header that carries a delivery's signature.
const SignatureHeader = "Funnel-Signature"

// SignWebhook returns the Funnel-Signature value for body sent at t.
func SignWebhook(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + webhookMAC(secret, ts, body)
}

func webhookMAC(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// VerifyWebhook checks a Funnel-Signature header against body: one of its
// v1 values must be the HMAC of its timestamp and body, and the timestamp
// within tolerance of now. It is what a receiver written in Go runs.
func VerifyWebhook(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs []string
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return errors.New("malformed signature header")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errors.New("signature timestamp outside the tolerance")
	}
	want := webhookMAC(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return errors.New("signature does not match")
}

// WebhookPayload is the JSON body of every delivery.
type WebhookPayload struct {
	// ID is the delivery's idempotency key (also in Funnel-Delivery).
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	CreatedAt time.Time       `json:"created_at"`
	Data      json.RawMessage `json:"data"`
}

// WebhookDelivery is one event queued for one endpoint, with its outcome.
type WebhookDelivery struct {
	ID         int64           `json:"id"`
	WebhookID  int64           `json:"webhook_id"`
	Event      string          `json:"event"`
	Data       json.RawMessage `json:"data"`
	Status     string          `json:"status"` // pending, delivered, failed
	Attempts   int             `json:"attempts"`
	StatusCode int             `json:"last_status_code"`
	Error      string          `json:"last_error"`
	CreatedAt  time.Time       `json:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
	// Log lists every attempt, oldest first (filled by the detail route).
	Log []WebhookAttempt `json:"attempts_log,omitempty"`
}

// Webhook delivery statuses.
const (
	WebhookPending   = "pending"
	WebhookDelivered = "delivered"
	WebhookFailed    = "failed"
)

// WebhookAttempt is one POST of a delivery.
type WebhookAttempt struct {
	Attempt    int       `json:"attempt"`
	StatusCode int       `json:"status_code"`
	Error      string    `json:"error"`
	DurationMS int64     `json:"duration_ms"`
	At         time.Time `json:"at"`
}
