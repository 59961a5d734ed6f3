package mailer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/funnel-email/funnel/campaign"
)

// TLSMode says how an SMTP connection is encrypted.
type TLSMode string

// TLS modes. smtp:// URLs use None, Opportunistic or Mandatory (STARTTLS);
// smtps:// URLs use Implicit.
const (
	TLSNone          TLSMode = "none"          // never encrypt (local catchers such as Mailpit)
	TLSOpportunistic TLSMode = "opportunistic" // STARTTLS when offered
	TLSMandatory     TLSMode = "mandatory"     // STARTTLS or fail
	TLSImplicit      TLSMode = "implicit"      // TLS from the first byte (smtps)
)

// Config says how to reach an SMTP server. With a Username, the best
// mechanism the server offers is used; with TLSNone only PLAIN, and only
// towards localhost.
type Config struct {
	Host     string
	Port     int
	Username string // empty: no authentication
	Password string
	TLS      TLSMode
	// Timeout bounds the dial and every command; 0 means 30 seconds.
	Timeout time.Duration
	// TLSConfig overrides the TLS settings (tests use it to trust a
	// self-signed certificate); nil uses the system roots and Host.
	TLSConfig *tls.Config
}

// ParseSMTPURL parses one SMTP URL, smtp://[user[:password]@]host[:port][?tls=none|opportunistic|mandatory]
// or smtps://[user[:password]@]host[:port]. smtp:// defaults to port 25 and
// tls=mandatory; smtps:// to port 465. User and password are URL-decoded.
// Errors never repeat the password.
//
// s may also be a list for ParseSMTPServers: then every URL is checked
// and the first one's Config is returned (a single-connection Sender,
// such as test sends, uses the first server).
func ParseSMTPURL(s string) (Config, error) {
	servers, err := ParseSMTPServers(s)
	if err != nil {
		return Config{}, err
	}
	return servers[0].Config, nil
}

// ParseSMTPServers parses a comma-separated list of SMTP URLs (see
// ParseSMTPURL), each with optional pool parameters: weight=N (share of
// the messages, default 1), max_conns=N (connections open at most;
// 0 leaves the Pool's default), rate=N (messages per second across all
// workers; 0 is no limit) and pool=NAME (a group of servers a campaign
// can be sent through). A comma inside a password is written %2C.
// With several URLs, an error names the URL's position (1-based); errors
// never repeat a password. Servers with the same host and port get
// distinct Names.
func ParseSMTPServers(s string) ([]ServerConfig, error) {
	parts := strings.Split(s, ",")
	var servers []ServerConfig
	seen := map[string]bool{}
	for i, part := range parts {
		sc, err := parseServer(strings.TrimSpace(part))
		if err != nil {
			if len(parts) > 1 {
				return nil, fmt.Errorf("URL %d of %d: %w", i+1, len(parts), err)
			}
			return nil, err
		}
		name := net.JoinHostPort(sc.Host, strconv.Itoa(sc.Port))
		if seen[name] {
			sc.Name = fmt.Sprintf("%s#%d", name, i+1)
		}
		seen[name] = true
		servers = append(servers, sc)
	}
	return servers, nil
}

func parseServer(s string) (ServerConfig, error) {
	if s == "" {
		return ServerConfig{}, errors.New("SMTP URL is empty")
	}
	u, err := url.Parse(s)
	if err != nil {
		return ServerConfig{}, errors.New("SMTP URL is not a URL of the form smtp://user:password@host:port")
	}
	var sc ServerConfig
	switch {
	case u.Scheme == "smtp":
		sc.Port, sc.TLS = 25, TLSMandatory
	case u.Scheme == "smtps":
		sc.Port, sc.TLS = 465, TLSImplicit
	case strings.Contains(s, "://"):
		return ServerConfig{}, fmt.Errorf("SMTP URL scheme %q: want smtp or smtps", u.Scheme)
	default:
		// Not echoed: a piece without "://" may be the tail of a password
		// that held a raw comma.
		return ServerConfig{}, errors.New("SMTP URL does not start with smtp:// or smtps:// (write a comma in a password as %2C)")
	}
	if sc.Host = u.Hostname(); sc.Host == "" {
		return ServerConfig{}, fmt.Errorf("SMTP URL %s has no host", u.Redacted())
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return ServerConfig{}, fmt.Errorf("SMTP URL %s: port %q is not a number from 1 to 65535", u.Redacted(), p)
		}
		sc.Port = n
	}
	if u.User != nil {
		sc.Username = u.User.Username()
		sc.Password, _ = u.User.Password()
	}
	if u.Path != "" && u.Path != "/" {
		return ServerConfig{}, fmt.Errorf("SMTP URL %s: unexpected path %q", u.Redacted(), u.Path)
	}
	if err := sc.parseQuery(u); err != nil {
		return ServerConfig{}, err
	}
	return sc, nil
}

func (sc *ServerConfig) parseQuery(u *url.URL) error {
	for k, vs := range u.Query() {
		v := vs[len(vs)-1]
		var err error
		switch k {
		case "tls":
			if u.Scheme == "smtps" {
				return fmt.Errorf("SMTP URL %s: smtps is always TLS; use smtp:// with tls=%s", u.Redacted(), v)
			}
			err = sc.parseTLS(v)
		case "weight":
			sc.Weight, err = parseCount(v, 1)
		case "max_conns":
			sc.MaxConns, err = parseCount(v, 1)
		case "rate":
			sc.Rate, err = strconv.ParseFloat(v, 64)
			if err != nil || sc.Rate < 0 || math.IsInf(sc.Rate, 0) || math.IsNaN(sc.Rate) {
				err = errors.New("want messages per second, a number of at least 0")
			}
		case "pool":
			sc.Pool = v
			if !campaign.ValidSMTPPool(v) {
				err = errors.New("want a pool name of 1 to 64 letters, digits, '-' or '_'")
			}
		default:
			return fmt.Errorf("SMTP URL %s: unknown parameter %q (known: tls, weight, max_conns, rate, pool)", u.Redacted(), k)
		}
		if err != nil {
			return fmt.Errorf("SMTP URL %s: %s=%q: %w", u.Redacted(), k, v, err)
		}
	}
	return nil
}

func (c *Config) parseTLS(v string) error {
	switch m := TLSMode(v); m {
	case TLSNone, TLSOpportunistic, TLSMandatory:
		c.TLS = m
		return nil
	}
	return errors.New("want none, opportunistic or mandatory")
}

func parseCount(v string, least int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < least {
		return 0, fmt.Errorf("want a whole number of at least %d", least)
	}
	return n, nil
}

// Class says what a failed send means for the delivery.
type Class int

// Classes of send failures.
const (
	// Transport: no SMTP reply (dial, TLS, dropped connection, timeout).
	// Reconnect and retry.
	Transport Class = iota
	// Temporary: a 4xx reply. Retry later.
	Temporary
	// Permanent: a 5xx reply. Do not retry; on RCPT it is a hard bounce.
	Permanent
)

func (c Class) String() string {
	return [...]string{"transport", "temporary", "permanent"}[c]
}

// SendError is a failed send. Stage names the step that failed ("dial",
// "mail", "rcpt", "data"); Code is the SMTP reply code, 0 when the server
// gave none.
type SendError struct {
	Stage string
	Code  int
	Err   error
}

func (e *SendError) Error() string {
	return fmt.Sprintf("smtp %s: %v", e.Stage, e.Err)
}

func (e *SendError) Unwrap() error { return e.Err }

// Class classifies the failure by its reply code: 5xx permanent, 4xx
// temporary, no code transport.
func (e *SendError) Class() Class {
	switch {
	case e.Code >= 500 && e.Code < 600:
		return Permanent
	case e.Code >= 400 && e.Code < 500:
		return Temporary
	}
	return Transport
}

// Sender sends single messages, one connection each: enough for test
// sends, not for campaigns.
type Sender struct {
	client *mail.Client
}

// NewSender returns a Sender for cfg.
func NewSender(cfg Config) (*Sender, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	opts := []mail.Option{mail.WithPort(cfg.Port), mail.WithTimeout(cfg.Timeout)}
	switch cfg.TLS {
	case TLSNone:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	case TLSOpportunistic:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic))
	case TLSMandatory, "":
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	case TLSImplicit:
		opts = append(opts, mail.WithSSL())
	default:
		return nil, fmt.Errorf("mailer: unknown TLS mode %q", cfg.TLS)
	}
	if cfg.TLSConfig != nil {
		opts = append(opts, mail.WithTLSConfig(cfg.TLSConfig))
	}
	if cfg.Username != "" {
		// Without TLS go-mail discovers only challenge mechanisms; PLAIN is
		// then used, which go-mail allows only towards localhost, so a
		// password never crosses a network in clear.
		auth := mail.SMTPAuthAutoDiscover
		if cfg.TLS == TLSNone {
			auth = mail.SMTPAuthPlain
		}
		opts = append(opts, mail.WithSMTPAuth(auth), mail.WithUsername(cfg.Username), mail.WithPassword(cfg.Password))
	}
	c, err := mail.NewClient(cfg.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("mailer: %w", err)
	}
	return &Sender{client: c}, nil
}

// Send dials, sends m and quits. It returns nil once the server accepted
// the DATA: a failure after that (QUIT, a dropped link) must not cause a
// second send. Any failure before is a *SendError.
func (s *Sender) Send(ctx context.Context, m *Message) error {
	sc, err := s.client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return newSendError("dial", err)
	}
	defer s.client.CloseWithSMTPClient(sc) //nolint:errcheck // the message is sent or already failed
	if err := sc.Mail(m.From); err != nil {
		return newSendError("mail", err)
	}
	for _, rcpt := range m.To {
		if err := sc.Rcpt(rcpt); err != nil {
			return newSendError("rcpt", err)
		}
	}
	w, err := sc.Data()
	if err != nil {
		return newSendError("data", err)
	}
	if _, err := w.Write(m.Raw); err != nil {
		return newSendError("data", err)
	}
	if err := w.Close(); err != nil {
		return newSendError("data", err)
	}
	return nil
}

func newSendError(stage string, err error) *SendError {
	return &SendError{Stage: stage, Code: replyCode(err), Err: err}
}

// replyCode finds the SMTP reply code in err: from a *textproto.Error,
// or, for errors go-mail re-wraps as text, from a leading "4xx"/"5xx".
func replyCode(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return 0
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		msg := e.Error()
		if len(msg) >= 3 && (msg[0] == '4' || msg[0] == '5') && (len(msg) == 3 || !isDigit(msg[3])) {
			if n, err := strconv.Atoi(msg[:3]); err == nil {
				return n
			}
		}
	}
	return 0
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }
