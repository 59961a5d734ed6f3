package mailer

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"
)

func TestParseSMTPURL(t *testing.T) {
	tests := []struct {
		in   string
		want Config
	}{
		{"smtp://mail.example.com", Config{Host: "mail.example.com", Port: 25, TLS: TLSMandatory}},
		{"smtp://localhost:1025?tls=none", Config{Host: "localhost", Port: 1025, TLS: TLSNone}},
		{"smtp://u%40x.com:p%3Ass@relay.example.com:587?tls=opportunistic", Config{Host: "relay.example.com", Port: 587, Username: "u@x.com", Password: "p:ss", TLS: TLSOpportunistic}},
		{"smtps://user:secret@smtp.example.com", Config{Host: "smtp.example.com", Port: 465, Username: "user", Password: "secret", TLS: TLSImplicit}},
		{"smtp://[::1]:2525?tls=mandatory", Config{Host: "::1", Port: 2525, TLS: TLSMandatory}},
	}
	for _, tt := range tests {
		got, err := ParseSMTPURL(tt.in)
		if err != nil {
			t.Errorf("ParseSMTPURL(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseSMTPURL(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestParseSMTPURLErrorsNameTheProblemButNotThePassword(t *testing.T) {
	tests := map[string]string{
		"http://u:hunter2@x.com":            `SMTP URL scheme "http": want smtp or smtps`,
		"smtp://u:hunter2@:25":              "SMTP URL smtp://u:xxxxx@:25 has no host",
		"smtp://u:hunter2@x.com:99999":      `SMTP URL smtp://u:xxxxx@x.com:99999: port "99999" is not a number from 1 to 65535`,
		"smtp://u:hunter2@x.com?tls=always": `SMTP URL smtp://u:xxxxx@x.com?tls=always: tls="always": want none, opportunistic or mandatory`,
		"smtp://u:hunter2@x.com?priority=3": `SMTP URL smtp://u:xxxxx@x.com?priority=3: unknown parameter "priority" (known: tls, weight, max_conns, rate, pool)`,
		"smtps://u:hunter2@x.com?tls=none":  "SMTP URL smtps://u:xxxxx@x.com?tls=none: smtps is always TLS; use smtp:// with tls=none",
		"smtp://u:hunter2@x.com/path":       `SMTP URL smtp://u:xxxxx@x.com/path: unexpected path "/path"`,
		"smtp://u:hunter2@x.com:12%zz":      "SMTP URL is not a URL of the form smtp://user:password@host:port",
	}
	for in, want := range tests {
		_, err := ParseSMTPURL(in)
		if err == nil || err.Error() != want {
			t.Errorf("ParseSMTPURL(%q) error = %v, want %q", in, err, want)
		}
	}
}

// smtpServer is a real SMTP server in the test process that records what
// it accepts and can fail any stage with a chosen reply.
type smtpServer struct {
	addr string
	mu   sync.Mutex
	fail map[string]*smtp.SMTPError // stage -> reply
	got  []received
	auth [][2]string
}

type received struct {
	From string
	To   []string
	Data []byte
}

func startSMTP(tb testing.TB) *smtpServer {
	tb.Helper()
	s := &smtpServer{fail: map[string]*smtp.SMTPError{}}
	srv := smtp.NewServer(s)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 5*time.Second, 5*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.addr = l.Addr().String()
	go srv.Serve(l) //nolint:errcheck // ends with Close
	tb.Cleanup(func() { srv.Close() })
	return s
}

func (s *smtpServer) config(tb testing.TB) Config {
	tb.Helper()
	host, port, _ := net.SplitHostPort(s.addr)
	c, err := ParseSMTPURL("smtp://" + host + ":" + port + "?tls=none")
	if err != nil {
		tb.Fatal(err)
	}
	c.Timeout = 5 * time.Second
	return c
}

func (s *smtpServer) failAt(stage string, code int, enhanced smtp.EnhancedCode, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[stage] = &smtp.SMTPError{Code: code, EnhancedCode: enhanced, Message: msg}
}

func (s *smtpServer) failure(stage string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.fail[stage]; e != nil {
		return e
	}
	return nil
}

func (s *smtpServer) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{srv: s}, nil }

type session struct {
	srv *smtpServer
	cur received
}

func (ss *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		ss.srv.mu.Lock()
		defer ss.srv.mu.Unlock()
		ss.srv.auth = append(ss.srv.auth, [2]string{user, pass})
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	ss.cur.From = from
	return ss.srv.failure("mail")
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.cur.To = append(ss.cur.To, to)
	return ss.srv.failure("rcpt")
}

func (ss *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := ss.srv.failure("data"); err != nil {
		return err
	}
	ss.cur.Data = b
	ss.srv.mu.Lock()
	ss.srv.got = append(ss.srv.got, ss.cur)
	ss.srv.mu.Unlock()
	return nil
}

func (ss *session) Reset()        { ss.cur = received{} }
func (ss *session) Logout() error { return nil }

func testMessage(tb testing.TB) *Message {
	tb.Helper()
	rsaKey, _ := testKeys(tb)
	m, err := newComposer(tb, rsaKey).Compose(draftFor(tb, goldenCases[0].tmpl, ana, 0))
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func TestSenderDeliversTheExactBytes(t *testing.T) {
	srv := startSMTP(t)
	cfg := srv.config(t)
	cfg.Username, cfg.Password = "funnel", "s3cret"
	s, err := NewSender(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := testMessage(t)
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	want := []received{{From: m.From, To: m.To, Data: m.Raw}}
	if diff := cmp.Diff(want, srv.got); diff != "" {
		t.Errorf("server received (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][2]string{{"funnel", "s3cret"}}, srv.auth); diff != "" {
		t.Errorf("auth (-want +got):\n%s", diff)
	}
}

func TestSenderClassifiesFailures(t *testing.T) {
	tests := []struct {
		stage string
		code  int
		want  Class
	}{
		{"rcpt", 550, Permanent},
		{"rcpt", 452, Temporary},
		{"mail", 451, Temporary},
		{"mail", 553, Permanent},
		{"data", 554, Permanent},
		{"data", 421, Temporary},
	}
	for _, tt := range tests {
		srv := startSMTP(t)
		srv.failAt(tt.stage, tt.code, smtp.EnhancedCode{tt.code / 100, 0, 0}, "test reply")
		s, err := NewSender(srv.config(t))
		if err != nil {
			t.Fatal(err)
		}
		err = s.Send(context.Background(), testMessage(t))
		var se *SendError
		if !errors.As(err, &se) {
			t.Fatalf("%s %d: err = %v, want *SendError", tt.stage, tt.code, err)
		}
		if se.Stage != tt.stage || se.Code != tt.code || se.Class() != tt.want {
			t.Errorf("%s %d: got stage %q code %d class %v, want %s", tt.stage, tt.code, se.Stage, se.Code, se.Class(), tt.want)
		}
		if len(srv.got) != 0 {
			t.Errorf("%s %d: server recorded a message", tt.stage, tt.code)
		}
	}
}

func TestSenderReportsTransportFailures(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	l.Close() // nothing listens there now
	s, err := NewSender(Config{Host: "127.0.0.1", Port: addr.Port, TLS: TLSNone, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), testMessage(t))
	var se *SendError
	if !errors.As(err, &se) || se.Class() != Transport || se.Code != 0 || se.Stage != "dial" {
		t.Errorf("err = %#v, want a dial *SendError of class transport", err)
	}
}

func TestSenderRefusesPlaintextWhenTLSIsMandatory(t *testing.T) {
	srv := startSMTP(t)
	cfg := srv.config(t)
	cfg.TLS = TLSMandatory
	s, err := NewSender(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), testMessage(t)); err == nil || len(srv.got) != 0 {
		t.Errorf("mandatory TLS against a server without STARTTLS: err = %v, %d messages sent", err, len(srv.got))
	}
}
