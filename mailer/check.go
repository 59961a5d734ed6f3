package mailer

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wneessen/go-mail/smtp"
)

// CheckResult is what CheckSMTP found.
type CheckResult struct {
	// OK is true when every step succeeded.
	OK bool
	// Stage names the step that failed: "dial", "greeting", "ehlo",
	// "starttls", "auth" or "quit"; empty when OK.
	Stage string
	// Error says why that step failed. It never holds the password.
	Error string
	// Code is the SMTP reply code of the failure; 0 when the server
	// gave none (a refused connection, a timeout, a TLS error).
	Code int
	// Greeting is the server's 220 banner.
	Greeting string
	// Hello is the first line of the server's answer to EHLO.
	Hello string
	// Extensions are the EHLO keywords with their parameters ("SIZE
	// 35882577", "AUTH PLAIN LOGIN"), as announced on the connection that
	// would carry mail: after STARTTLS when it was used.
	Extensions []string
	// TLS describes the encryption ("TLS 1.3, TLS_AES_128_GCM_SHA256");
	// empty on a plain connection.
	TLS string
	// Auth is the SASL mechanism that authenticated; empty without AUTH.
	Auth string
	// Latency runs from dialing to the answer to QUIT, or to the failure.
	Latency time.Duration
}

// checkHelo is the name CheckSMTP gives in EHLO: go-mail's default, the
// one the Pool and Sender give.
const checkHelo = "localhost"

// CheckSMTP connects to the server cfg describes and does what a Sender
// does before MAIL FROM: greeting, EHLO, STARTTLS as cfg.TLS asks (none:
// never; opportunistic: when offered; mandatory: offered or fail;
// implicit: TLS from the first byte), AUTH with cfg's credentials when it
// has a Username (choosing the mechanism as the Sender does; PLAIN and
// LOGIN only over TLS or towards localhost), then QUIT. No mail is sent.
// A failure is reported in the result, never returned: an unreachable or
// misconfigured server is an answer. cfg.Timeout (default 10 seconds)
// bounds the whole check, as does ctx.
func CheckSMTP(ctx context.Context, cfg Config) CheckResult {
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var res CheckResult
	start := time.Now()
	err := (&checker{cfg: cfg, res: &res}).run(ctx)
	res.Latency = time.Since(start)
	if err == nil {
		res.OK = true
		return res
	}
	var se *stageError
	if errors.As(err, &se) {
		res.Stage = se.stage
		err = se.err
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		res.Code = te.Code
	}
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		err = fmt.Errorf("no answer after %s", res.Latency.Round(100*time.Millisecond))
	}
	res.Error = err.Error()
	return res
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// stageError is a failure of one step of the check.
type stageError struct {
	stage string
	err   error
}

func (e *stageError) Error() string { return e.stage + ": " + e.err.Error() }
func (e *stageError) Unwrap() error { return e.err }

func failAt(stage string, err error) error { return &stageError{stage, err} }

// checker is one run of CheckSMTP.
type checker struct {
	cfg  Config
	res  *CheckResult
	conn net.Conn
	text *textproto.Conn
	ext  map[string]string // EHLO keywords, upper-cased, with parameters
}

func (c *checker) run(ctx context.Context) error {
	addr := net.JoinHostPort(c.cfg.Host, strconv.Itoa(c.cfg.Port))
	dialer := &net.Dialer{}
	var err error
	if c.cfg.TLS == TLSImplicit {
		c.conn, err = (&tls.Dialer{NetDialer: dialer, Config: c.tlsConfig()}).DialContext(ctx, "tcp", addr)
	} else {
		c.conn, err = dialer.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return failAt("dial", err)
	}
	defer c.conn.Close()
	// The deadline bounds every read and write; closing on cancellation
	// ends a check whose caller went away.
	if dl, ok := ctx.Deadline(); ok {
		_ = c.conn.SetDeadline(dl)
	}
	raw := c.conn
	defer context.AfterFunc(ctx, func() { raw.Close() })()
	if tc, ok := c.conn.(*tls.Conn); ok {
		c.res.TLS = tlsName(tc.ConnectionState())
	}
	c.text = textproto.NewConn(c.conn)
	_, greeting, err := c.text.ReadResponse(220)
	if err != nil {
		return failAt("greeting", err)
	}
	c.res.Greeting = greeting
	if err := c.ehlo(); err != nil {
		return err
	}
	if err := c.startTLS(ctx); err != nil {
		return err
	}
	if c.cfg.Username != "" {
		if err := c.auth(); err != nil {
			return failAt("auth", err)
		}
	}
	if _, _, err := c.cmd(221, "QUIT"); err != nil {
		return failAt("quit", err)
	}
	return nil
}

func (c *checker) tlsConfig() *tls.Config {
	if c.cfg.TLSConfig != nil {
		return c.cfg.TLSConfig.Clone()
	}
	return &tls.Config{ServerName: c.cfg.Host, MinVersion: tls.VersionTLS12}
}

func tlsName(s tls.ConnectionState) string {
	return tls.VersionName(s.Version) + ", " + tls.CipherSuiteName(s.CipherSuite)
}

// cmd sends one command and reads its reply, which must have code expect
// (0 accepts any code).
func (c *checker) cmd(expect int, format string, args ...any) (int, string, error) {
	id, err := c.text.Cmd(format, args...)
	if err != nil {
		return 0, "", err
	}
	c.text.StartResponse(id)
	defer c.text.EndResponse(id)
	return c.text.ReadResponse(expect)
}

// ehlo greets the server and records the extensions it announces.
func (c *checker) ehlo() error {
	_, msg, err := c.cmd(250, "EHLO %s", checkHelo)
	if err != nil {
		return failAt("ehlo", err)
	}
	lines := strings.Split(msg, "\n")
	c.res.Hello, c.res.Extensions = lines[0], lines[1:]
	c.ext = map[string]string{}
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(l, " ")
		c.ext[strings.ToUpper(k)] = v
	}
	return nil
}

// startTLS upgrades the connection as the TLS mode asks and greets the
// server again over TLS.
func (c *checker) startTLS(ctx context.Context) error {
	_, offered := c.ext["STARTTLS"]
	switch {
	case c.cfg.TLS == TLSNone || c.cfg.TLS == TLSImplicit:
		return nil
	case !offered && c.cfg.TLS == TLSOpportunistic:
		return nil
	case !offered:
		return failAt("starttls", errors.New("the server does not offer STARTTLS, which tls=mandatory requires"))
	}
	if _, _, err := c.cmd(220, "STARTTLS"); err != nil {
		return failAt("starttls", err)
	}
	tc := tls.Client(c.conn, c.tlsConfig())
	if err := tc.HandshakeContext(ctx); err != nil {
		return failAt("starttls", err)
	}
	c.conn, c.text = tc, textproto.NewConn(tc)
	c.res.TLS = tlsName(tc.ConnectionState())
	return c.ehlo()
}

// auth authenticates with the mechanism the Sender would choose: with
// tls=none PLAIN (which go-mail allows only towards localhost); otherwise
// the first of go-mail's preference list that the server offers, without
// PLAIN, LOGIN and the -PLUS variants on an unencrypted connection.
func (c *checker) auth() error {
	param, ok := c.ext["AUTH"]
	if !ok {
		return errors.New("the URL has a user but the server offers no AUTH")
	}
	offered := strings.Fields(strings.ToUpper(param))
	tc, encrypted := c.conn.(*tls.Conn)
	var prefer []string
	switch {
	case c.cfg.TLS == TLSNone:
		prefer = []string{"PLAIN"}
	case encrypted:
		prefer = []string{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", "NTLM", "CRAM-MD5", "PLAIN", "LOGIN"}
	default:
		prefer = []string{"SCRAM-SHA-256", "SCRAM-SHA-1", "NTLM", "CRAM-MD5"}
	}
	i := slices.IndexFunc(prefer, func(m string) bool { return slices.Contains(offered, m) })
	if i < 0 {
		return fmt.Errorf("the server offers AUTH %s; the mailer uses %s here", param, strings.Join(prefer, ", "))
	}
	user, pass := c.cfg.Username, c.cfg.Password
	var a smtp.Auth
	switch c.res.Auth = prefer[i]; c.res.Auth {
	case "SCRAM-SHA-256-PLUS":
		s := tc.ConnectionState()
		a = smtp.ScramSHA256PlusAuth(user, pass, &s)
	case "SCRAM-SHA-256":
		a = smtp.ScramSHA256Auth(user, pass)
	case "SCRAM-SHA-1-PLUS":
		s := tc.ConnectionState()
		a = smtp.ScramSHA1PlusAuth(user, pass, &s)
	case "SCRAM-SHA-1":
		a = smtp.ScramSHA1Auth(user, pass)
	case "NTLM":
		a = smtp.NTLMAuth(user, pass, "")
	case "CRAM-MD5":
		a = smtp.CRAMMD5Auth(user, pass)
	case "PLAIN":
		a = smtp.PlainAuth("", user, pass, c.cfg.Host, false)
	default:
		a = smtp.LoginAuth(user, pass, c.cfg.Host, false)
	}
	return c.authWith(a, offered, encrypted)
}

// authWith runs one SASL exchange, as net/smtp's Client.Auth does.
func (c *checker) authWith(a smtp.Auth, offered []string, encrypted bool) error {
	enc := base64.StdEncoding
	mech, resp, err := a.Start(&smtp.ServerInfo{Name: c.cfg.Host, TLS: encrypted, Auth: offered})
	if errors.Is(err, smtp.ErrUnencrypted) {
		return errors.New("the mailer sends a password in clear only to localhost: use tls=mandatory or smtps://")
	}
	if err != nil {
		return err
	}
	code, msg, err := c.cmd(0, "%s", strings.TrimSpace("AUTH "+mech+" "+enc.EncodeToString(resp)))
	for {
		switch {
		case err != nil:
			return err
		case code == 235:
			return nil
		case code != 334:
			return &textproto.Error{Code: code, Msg: msg}
		}
		var challenge []byte
		challenge, err = enc.DecodeString(msg)
		if err == nil {
			resp, err = a.Next(challenge, true)
		}
		if err != nil {
			_, _, _ = c.cmd(0, "*") // abort the exchange
			return err
		}
		code, msg, err = c.cmd(0, "%s", enc.EncodeToString(resp))
	}
}

// BounceDomain is the domain of the VERP envelope senders (and so the
// domain SPF is checked against).
func (c *Composer) BounceDomain() string { return c.cfg.BounceDomain }

// DKIMKeys returns the keys the Composer signs with, one per domain.
func (c *Composer) DKIMKeys() []DKIMKey { return slices.Clone(c.cfg.DKIM) }
