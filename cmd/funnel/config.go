package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/funnel-email/funnel/mailer"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/tracking"
)

// Config is everything a Funnel process is told from outside. Each field
// comes from a flag, else from its environment variable, else from its
// default; validate checks the fields a command needs and names the
// variable in every error.
type Config struct {
	DatabaseURL string // FUNNEL_DATABASE_URL
	RedisURL    string // FUNNEL_REDIS_URL
	SMTPURL     string // FUNNEL_SMTP_URL
	// DomainRates caps messages per second per recipient domain across
	// all workers: gmail.com:50,outlook.com:30.
	DomainRates string // FUNNEL_DOMAIN_RATES
	PublicURL   string // FUNNEL_PUBLIC_URL: where recipients reach tracking links
	Secret      string // FUNNEL_SECRET: signs tracking and unsubscribe tokens
	// PreviousSecrets still verify tokens after a rotation (comma-separated).
	PreviousSecrets string // FUNNEL_PREVIOUS_SECRETS
	BounceDomain    string // FUNNEL_BOUNCE_DOMAIN: the VERP envelope sender's domain
	DKIMKeys        string // FUNNEL_DKIM_KEYS: domain:selector:/path/to/key.pem, comma-separated
	// WebhookAllowPrivate ("1") lets webhooks target loopback and private
	// networks, which are refused by default so that a webhook cannot
	// probe the servers around Funnel.
	WebhookAllowPrivate string // FUNNEL_WEBHOOK_ALLOW_PRIVATE
	Addr                string // FUNNEL_ADDR: the HTTP listen address
	LogLevel            string // FUNNEL_LOG_LEVEL
	LogFormat           string // FUNNEL_LOG_FORMAT
	// ScoreDelay is how old a human click must be before it is scored, a
	// Go duration; "" means the classifier's longest window plus eventLag.
	ScoreDelay string // FUNNEL_SCORE_DELAY
}

// setting describes one configuration value.
type setting struct {
	field *string
	env   string
	flag  string // "" when the value must not be a flag (secrets show in ps)
	def   string
	usage string
}

func (c *Config) settings(defaultAddr string) []setting {
	return []setting{
		{&c.DatabaseURL, "FUNNEL_DATABASE_URL", "database", "", "database URL: postgres://... or sqlite:PATH"},
		{&c.RedisURL, "FUNNEL_REDIS_URL", "redis", "", "Redis URL: redis://[:password@]host:port[/db]"},
		{&c.SMTPURL, "FUNNEL_SMTP_URL", "smtp", "", "SMTP server URLs, comma-separated: smtp://user:pass@host:587?weight=2&max_conns=10&rate=50 or smtps://..."},
		{&c.DomainRates, "FUNNEL_DOMAIN_RATES", "domain-rates", "", "messages per second per recipient domain across all workers, e.g. gmail.com:50,outlook.com:30"},
		{&c.PublicURL, "FUNNEL_PUBLIC_URL", "public-url", "", "public base URL of the tracking endpoints, e.g. https://mail.example.com"},
		{&c.Secret, "FUNNEL_SECRET", "", "", ""},
		{&c.PreviousSecrets, "FUNNEL_PREVIOUS_SECRETS", "", "", ""},
		{&c.BounceDomain, "FUNNEL_BOUNCE_DOMAIN", "bounce-domain", "", "domain of the bounce (VERP) addresses; default: the public URL's host"},
		{&c.DKIMKeys, "FUNNEL_DKIM_KEYS", "dkim-keys", "", "DKIM keys as domain:selector:/path/key.pem, comma-separated"},
		{&c.WebhookAllowPrivate, "FUNNEL_WEBHOOK_ALLOW_PRIVATE", "", "", ""},
		{&c.ScoreDelay, "FUNNEL_SCORE_DELAY", "score-delay", "", "how old a human click must be before it is scored, e.g. 30s (default: the classifier's longest window plus 20s)"},
		{&c.Addr, "FUNNEL_ADDR", "addr", defaultAddr, "HTTP listen address"},
		{&c.LogLevel, "FUNNEL_LOG_LEVEL", "log-level", "info", "log level: debug, info, warn or error"},
		{&c.LogFormat, "FUNNEL_LOG_FORMAT", "log-format", "text", "log format: text or json"},
	}
}

// bind registers the configuration flags on fs with defaults taken from
// the environment.
func (c *Config) bind(fs *flag.FlagSet, getenv func(string) string, defaultAddr string) {
	for _, s := range c.settings(defaultAddr) {
		v := getenv(s.env)
		if v == "" {
			v = s.def
		}
		if s.flag == "" {
			*s.field = v
			continue
		}
		fs.StringVar(s.field, s.flag, v, s.usage+" ($"+s.env+")")
	}
}

// need names the settings a command cannot run without.
type need int

const (
	needDatabase need = 1 << iota
	needRedis
	needSMTP
	needPublicURL
	needSecret
	needAddr
)

// minSecretLength keeps tracking tokens unforgeable: HMAC keys shorter than
// 32 bytes are guessable offline from one signed link.
const minSecretLength = 32

// validate checks the settings in needs (and the always-present logging
// settings) and returns every problem, each naming its variable.
func (c *Config) validate(needs need) error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
	}
	if needs&needDatabase != 0 {
		if _, err := store.ParseURL(c.DatabaseURL); err != nil {
			bad("FUNNEL_DATABASE_URL", "%v", err)
		}
	}
	if needs&needRedis != 0 {
		if c.RedisURL == "" {
			bad("FUNNEL_REDIS_URL", "is empty; set it to redis://host:6379")
		} else if _, err := redis.ParseURL(c.RedisURL); err != nil {
			bad("FUNNEL_REDIS_URL", "%v", err)
		}
	}
	if needs&needSMTP != 0 || c.SMTPURL != "" {
		if err := validateSMTPURL(c.SMTPURL); err != nil {
			bad("FUNNEL_SMTP_URL", "%v", err)
		}
	}
	if _, err := c.domainRates(); err != nil {
		bad("FUNNEL_DOMAIN_RATES", "%v", err)
	}
	if needs&needPublicURL != 0 {
		if err := validatePublicURL(c.PublicURL); err != nil {
			bad("FUNNEL_PUBLIC_URL", "%v", err)
		}
	}
	if needs&needSecret != 0 && len(c.Secret) < minSecretLength {
		bad("FUNNEL_SECRET", "must be at least %d characters (it is %d); generate one with `openssl rand -base64 48`", minSecretLength, len(c.Secret))
	}
	for i, s := range c.previousSecrets() {
		if len(s) < minSecretLength {
			bad("FUNNEL_PREVIOUS_SECRETS", "secret %d must be at least %d characters", i+1, minSecretLength)
		}
	}
	if v := c.WebhookAllowPrivate; v != "" && v != "0" && v != "1" {
		bad("FUNNEL_WEBHOOK_ALLOW_PRIVATE", "%q is not 0 or 1", v)
	}
	if _, err := c.dkimKeySpecs(); err != nil {
		bad("FUNNEL_DKIM_KEYS", "%v", err)
	}
	if v := c.ScoreDelay; v != "" {
		if d, err := time.ParseDuration(v); err != nil || d < 0 {
			bad("FUNNEL_SCORE_DELAY", "%q is not a duration such as 30s", v)
		}
	}
	if needs&needAddr != 0 {
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			bad("FUNNEL_ADDR", "%q is not host:port (%v)", c.Addr, err)
		}
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		bad("FUNNEL_LOG_LEVEL", "%v", err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("FUNNEL_LOG_FORMAT", "%q is not text or json", c.LogFormat)
	}
	return errors.Join(errs...)
}

func validatePublicURL(raw string) error {
	if raw == "" {
		return errors.New("is empty; set it to the https URL where recipients reach Funnel")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %v", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q must be an absolute http:// or https:// URL", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q must not carry a query, fragment or user", raw)
	}
	return nil
}

func validateSMTPURL(raw string) error {
	if raw == "" {
		return errors.New("is empty; set it to smtp://user:pass@host:587")
	}
	_, err := mailer.ParseSMTPServers(raw)
	return err
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%q is not debug, info, warn or error", s)
	}
	return l, nil
}

// logger builds the process's logger from the validated settings.
func (c *Config) logger(w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(c.LogFormat, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func (c *Config) previousSecrets() []string {
	if c.PreviousSecrets == "" {
		return nil
	}
	return strings.Split(c.PreviousSecrets, ",")
}

// domainRates parses FUNNEL_DOMAIN_RATES: domain:rate pairs,
// comma-separated, rate in messages per second (more than 0).
func (c *Config) domainRates() (map[string]float64, error) {
	if c.DomainRates == "" {
		return nil, nil
	}
	rates := map[string]float64{}
	for i, item := range strings.Split(c.DomainRates, ",") {
		domain, rate, ok := strings.Cut(strings.TrimSpace(item), ":")
		domain = strings.ToLower(strings.TrimSpace(domain))
		r, err := strconv.ParseFloat(strings.TrimSpace(rate), 64)
		if !ok || domain == "" || strings.ContainsAny(domain, "@ ") || err != nil || !(r > 0) || math.IsInf(r, 0) {
			return nil, fmt.Errorf("entry %d %q is not domain:messages-per-second, such as gmail.com:50", i+1, item)
		}
		if _, dup := rates[domain]; dup {
			return nil, fmt.Errorf("entry %d: %s is listed twice", i+1, domain)
		}
		rates[domain] = r
	}
	return rates, nil
}

// dkimKeySpec names one DKIM key file.
type dkimKeySpec struct{ domain, selector, path string }

func (c *Config) dkimKeySpecs() ([]dkimKeySpec, error) {
	if c.DKIMKeys == "" {
		return nil, nil
	}
	var specs []dkimKeySpec
	for i, item := range strings.Split(c.DKIMKeys, ",") {
		parts := strings.SplitN(strings.TrimSpace(item), ":", 3)
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
			return nil, fmt.Errorf("entry %d %q is not domain:selector:/path/to/key.pem", i+1, item)
		}
		specs = append(specs, dkimKeySpec{strings.ToLower(parts[0]), parts[1], parts[2]})
	}
	return specs, nil
}

// eventLag is how late after a hit its event may reach the database that
// the default FUNNEL_SCORE_DELAY allows for: twice the 10 s in which the
// event writer drains a backlog once a load stops (BENCHMARKS.md).
const eventLag = 20 * time.Second

// scoreDelay returns FUNNEL_SCORE_DELAY, or by default the longest time in
// which the classifier (FUNNEL_CLASSIFIER_FILE) can still make a click a
// machine's, plus eventLag.
func (c *Config) scoreDelay(getenv func(string) string) (time.Duration, error) {
	if c.ScoreDelay != "" {
		return time.ParseDuration(c.ScoreDelay)
	}
	rules, err := tracking.LoadRules(getenv("FUNNEL_CLASSIFIER_FILE"))
	if err != nil {
		return 0, fmt.Errorf("FUNNEL_CLASSIFIER_FILE: %w", err)
	}
	return rules.Settle() + eventLag, nil
}
