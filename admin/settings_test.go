package admin_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"

	"github.com/funnel-email/funnel/admin"
	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/mailer"
	"github.com/funnel-email/funnel/outbox"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
	"github.com/funnel-email/funnel/token"
)

// sendingOf is what cmd/funnel hands the admin for these SMTP servers
// and DKIM keys: the servers without passwords, a real connection check
// of each (mailer.CheckSMTP), and the keys' public halves.
func sendingOf(bounceDomain string, keys []mailer.DKIMKey, servers ...mailer.Config) admin.Sending {
	s := admin.Sending{BounceDomain: bounceDomain}
	for _, k := range keys {
		s.DKIM = append(s.DKIM, admin.DKIMKey{Domain: k.Domain, Selector: k.Selector, PublicKey: k.Signer.Public()})
	}
	for _, c := range servers {
		s.SMTP = append(s.SMTP, admin.SMTPServer{Host: c.Host, Port: c.Port, TLS: string(c.TLS), Username: c.Username, Weight: 1})
	}
	s.CheckSMTP = func(ctx context.Context, i int) admin.SMTPCheck {
		r := mailer.CheckSMTP(ctx, servers[i])
		return admin.SMTPCheck{OK: r.OK, Stage: r.Stage, Error: r.Error, Code: r.Code, Greeting: r.Greeting, Hello: r.Hello,
			Extensions: r.Extensions, TLS: r.TLS, Auth: r.Auth, LatencyMS: float64(r.Latency.Milliseconds())}
	}
	return s
}

// hostPort splits a listener address for a mailer.Config.
func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

// closedPort returns a local address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// authServer is a real SMTP server (go-smtp) that offers STARTTLS with a
// self-signed certificate and AUTH PLAIN, only after STARTTLS, for one
// user and password.
type authServer struct {
	addr  string
	roots *x509.CertPool
}

func startAuthServer(t *testing.T, user, password string) authServer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtp test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	srv := smtp.NewServer(authBackend{user: user, password: password})
	srv.Domain = "auth.test"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	return authServer{addr: ln.Addr().String(), roots: roots}
}

type authBackend struct{ user, password string }

func (b authBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return &authSession{b: b}, nil }

type authSession struct{ b authBackend }

func (s *authSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *authSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, password string) error {
		if user != s.b.user || password != s.b.password {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
		}
		return nil
	}), nil
}
func (s *authSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *authSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *authSession) Data(r io.Reader) error               { _, err := io.Copy(io.Discard, r); return err }
func (s *authSession) Reset()                               {}
func (s *authSession) Logout() error                        { return nil }

// checkAnswer decodes POST /api/v1/smtp-servers/{index}/check.
func checkAnswer(t *testing.T, r response) admin.SMTPCheck {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("check: %d %s, want 200", r.Status, r.Body)
	}
	var c admin.SMTPCheck
	if err := json.Unmarshal(r.Body, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSMTPServersAreListedWithoutPasswordsToAdminsOnly(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	servers := []mailer.Config{
		{Host: "smtp.example.com", Port: 587, TLS: mailer.TLSMandatory, Username: "mailer", Password: "s3cret-Passw0rd"},
		{Host: "127.0.0.1", Port: 2525, TLS: mailer.TLSNone},
	}
	ta := newTestAPI(t, db, admin.Config{Sending: sendingOf("bounces.example.com", nil, servers...)})
	r := ta.json(campaign.RoleAdmin, "GET", "/api/v1/smtp-servers", "")
	if r.Status != 200 {
		t.Fatalf("GET smtp-servers: %d %s", r.Status, r.Body)
	}
	if bytes.Contains(r.Body, []byte("s3cret")) {
		t.Errorf("the list shows a password: %s", r.Body)
	}
	var got struct{ Servers []admin.SMTPServer }
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatal(err)
	}
	want := []admin.SMTPServer{
		{Index: 0, Host: "smtp.example.com", Port: 587, TLS: "mandatory", Username: "mailer", Weight: 1},
		{Index: 1, Host: "127.0.0.1", Port: 2525, TLS: "none", Weight: 1},
	}
	if diff := cmp.Diff(want, got.Servers); diff != "" {
		t.Errorf("servers (-want +got):\n%s", diff)
	}
	for _, role := range []campaign.Role{campaign.RoleMarketer, campaign.RoleSales} {
		for _, rt := range [][2]string{{"GET", "/api/v1/smtp-servers"}, {"POST", "/api/v1/smtp-servers/0/check"}, {"GET", "/api/v1/sending-domains"}} {
			if got := ta.json(role, rt[0], rt[1], "").Status; got != 403 {
				t.Errorf("%s %s as %s: %d, want 403", rt[0], rt[1], role, got)
			}
		}
	}
}

func TestSMTPCheckReportsWhatTheServerSaid(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	catcher, err := outbox.Listen("127.0.0.1:0", outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { catcher.Close() })
	auth := startAuthServer(t, "mailer", "right-password")
	trust := &tls.Config{RootCAs: auth.roots, ServerName: "127.0.0.1"}
	catcherHost, catcherPort := hostPort(t, catcher.Addr())
	authHost, authPort := hostPort(t, auth.addr)
	closedHost, closedPortN := hostPort(t, closedPort(t))
	servers := []mailer.Config{
		0: {Host: catcherHost, Port: catcherPort, TLS: mailer.TLSNone},
		1: {Host: authHost, Port: authPort, TLS: mailer.TLSMandatory, Username: "mailer", Password: "right-password", TLSConfig: trust},
		2: {Host: authHost, Port: authPort, TLS: mailer.TLSMandatory, Username: "mailer", Password: "wrong-password", TLSConfig: trust},
		3: {Host: closedHost, Port: closedPortN, TLS: mailer.TLSNone},
		4: {Host: catcherHost, Port: catcherPort, TLS: mailer.TLSMandatory},
		5: {Host: authHost, Port: authPort, TLS: mailer.TLSMandatory, Username: "mailer", Password: "right-password"},
		6: {Host: catcherHost, Port: catcherPort, TLS: mailer.TLSNone, Username: "mailer", Password: "pw"},
	}
	ta := newTestAPI(t, db, admin.Config{Sending: sendingOf("bounces.example.com", nil, servers...)})
	check := func(i int) admin.SMTPCheck {
		t.Helper()
		return checkAnswer(t, ta.json(campaign.RoleAdmin, "POST", "/api/v1/smtp-servers/"+strconv.Itoa(i)+"/check", ""))
	}

	t.Run("the catcher answers", func(t *testing.T) {
		c := check(0)
		if !c.OK || c.Stage != "" || c.Error != "" {
			t.Fatalf("check of funnel's catcher: %+v, want ok", c)
		}
		if !strings.Contains(c.Greeting, "ESMTP") || !strings.Contains(strings.Join(c.Extensions, " "), "8BITMIME") || c.TLS != "" {
			t.Errorf("greeting %q, extensions %q, tls %q: want the catcher's banner and extensions over plain SMTP", c.Greeting, c.Extensions, c.TLS)
		}
	})
	t.Run("STARTTLS and AUTH succeed", func(t *testing.T) {
		c := check(1)
		if !c.OK {
			t.Fatalf("check: %+v, want ok", c)
		}
		if !strings.HasPrefix(c.TLS, "TLS 1.") || c.Auth != "PLAIN" {
			t.Errorf("tls %q, auth %q: want TLS and AUTH PLAIN", c.TLS, c.Auth)
		}
		if !strings.Contains(strings.Join(c.Extensions, " "), "AUTH PLAIN") {
			t.Errorf("extensions after STARTTLS = %q, want AUTH PLAIN among them", c.Extensions)
		}
	})
	t.Run("a wrong password fails at auth with the server's reply", func(t *testing.T) {
		c := check(2)
		if c.OK || c.Stage != "auth" || c.Code != 535 {
			t.Errorf("check: %+v, want ok=false at auth with 535", c)
		}
		if strings.Contains(c.Error, "wrong-password") {
			t.Errorf("the error repeats the password: %q", c.Error)
		}
	})
	t.Run("a closed port is ok=false at dial, not a server error", func(t *testing.T) {
		c := check(3)
		if c.OK || c.Stage != "dial" || !strings.Contains(c.Error, "refused") {
			t.Errorf("check: %+v, want ok=false at dial, connection refused", c)
		}
	})
	t.Run("tls=mandatory without STARTTLS fails", func(t *testing.T) {
		c := check(4)
		if c.OK || c.Stage != "starttls" || !strings.Contains(c.Error, "STARTTLS") {
			t.Errorf("check: %+v, want ok=false at starttls", c)
		}
	})
	t.Run("an untrusted certificate fails at starttls", func(t *testing.T) {
		c := check(5)
		if c.OK || c.Stage != "starttls" || !strings.Contains(c.Error, "certificate") {
			t.Errorf("check: %+v, want ok=false at starttls naming the certificate", c)
		}
	})
	t.Run("a user for a server without AUTH fails at auth", func(t *testing.T) {
		c := check(6)
		if c.OK || c.Stage != "auth" || !strings.Contains(c.Error, "offers no AUTH") {
			t.Errorf("check: %+v, want ok=false at auth", c)
		}
	})
	t.Run("a bad index is 404", func(t *testing.T) {
		for _, idx := range []string{"7", "-1", "x", "1.5", "99999999999999999999"} {
			r := ta.json(campaign.RoleAdmin, "POST", "/api/v1/smtp-servers/"+idx+"/check", "")
			if r.Status != 404 {
				t.Errorf("check of server %q: %d %s, want 404", idx, r.Status, r.Body)
				continue
			}
			if code, _, _ := r.errorBody(t); code != campaign.ENOTFOUND {
				t.Errorf("check of server %q: code %q", idx, code)
			}
		}
	})
}

func TestSMTPCheckWithoutServersIs404(t *testing.T) {
	ta := newTestAPI(t, storetest.Open(t, store.SQLite), admin.Config{})
	if r := ta.json(campaign.RoleAdmin, "POST", "/api/v1/smtp-servers/0/check", ""); r.Status != 404 {
		t.Errorf("check with no server configured: %d %s, want 404", r.Status, r.Body)
	}
	r := ta.json(campaign.RoleAdmin, "GET", "/api/v1/smtp-servers", "")
	if r.Status != 200 || strings.TrimSpace(string(r.Body)) != `{"servers":[]}` {
		t.Errorf("list with no server configured: %d %s, want an empty list", r.Status, r.Body)
	}
}

// sendingDomainsAnswer is the part of GET /api/v1/sending-domains the
// tests read.
type sendingDomainsAnswer struct {
	BounceDomain string `json:"bounce_domain"`
	Domains      []struct {
		Domain    string   `json:"domain"`
		Sender    bool     `json:"sender"`
		Campaigns int64    `json:"campaigns"`
		Addresses []string `json:"addresses"`
		DKIM      struct {
			Configured    bool   `json:"configured"`
			SigningDomain string `json:"signing_domain"`
			Selector      string `json:"selector"`
			Algorithm     string `json:"algorithm"`
			Record        *struct{ Name, Type, Value, Zone string }
		} `json:"dkim"`
		SPF        struct{ Name, Value string }
		SPFAligned bool `json:"spf_aligned"`
		DMARC      struct{ Name, Value string }
		Warnings   []string
	}
}

// dkimKey writes key as the PEM file FUNNEL_DKIM_KEYS names and loads it
// as the mailer does.
func dkimKey(t *testing.T, domain, selector string, key any) mailer.DKIMKey {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	k, err := mailer.ParseDKIMKey(domain, selector, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSendingDomainsPublishTheConfiguredDKIMKeys(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys := []mailer.DKIMKey{dkimKey(t, "example.com", "s2026", rsaKey), dkimKey(t, "ed.example.org", "e1", edKey)}
		if err := db.SetSender(ctx, campaign.Sender{CompanyName: "Example", PostalAddress: "1 Main St", FromName: "News", FromEmail: "News@Mail.Example.com"}); err != nil {
			t.Fatal(err)
		}
		refs := newCampaignRefs(t, db)
		for _, from := range []string{"promo@other.example.net", "deals@other.example.net", "news@mail.example.com"} {
			c := &campaign.Campaign{Name: from, TemplateID: refs.template, SegmentIDs: []int64{refs.segment}, FromEmail: from}
			if err := db.CreateCampaign(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		ta := newTestAPI(t, db, admin.Config{Sending: sendingOf("bounces.example.com", keys,
			mailer.Config{Host: "smtp.relay.example.net", Port: 587, TLS: mailer.TLSMandatory},
			mailer.Config{Host: "email-smtp.eu-west-1.amazonaws.com", Port: 587, TLS: mailer.TLSMandatory})})
		r := ta.json(campaign.RoleAdmin, "GET", "/api/v1/sending-domains", "")
		if r.Status != 200 {
			t.Fatalf("GET sending-domains: %d %s", r.Status, r.Body)
		}
		var got sendingDomainsAnswer
		if err := json.Unmarshal(r.Body, &got); err != nil {
			t.Fatal(err)
		}
		var names []string
		byName := map[string]int{}
		for i, d := range got.Domains {
			names = append(names, d.Domain)
			byName[d.Domain] = i
		}
		if diff := cmp.Diff([]string{"ed.example.org", "example.com", "mail.example.com", "other.example.net"}, names); diff != "" {
			t.Fatalf("domains (-want +got):\n%s", diff)
		}

		// The sender's and a campaign's domain, signed with its parent's key.
		mail := got.Domains[byName["mail.example.com"]]
		if !mail.Sender || mail.Campaigns != 1 || !cmp.Equal(mail.Addresses, []string{"news@mail.example.com"}) {
			t.Errorf("mail.example.com used by sender %v, %d campaigns, %q", mail.Sender, mail.Campaigns, mail.Addresses)
		}
		if !mail.DKIM.Configured || mail.DKIM.SigningDomain != "example.com" || mail.DKIM.Selector != "s2026" || mail.DKIM.Record == nil {
			t.Fatalf("mail.example.com DKIM = %+v, want the key of example.com", mail.DKIM)
		}
		rec := *mail.DKIM.Record
		if rec.Name != "s2026._domainkey.example.com" || rec.Type != "TXT" {
			t.Errorf("DKIM record %s %s, want TXT at s2026._domainkey.example.com", rec.Type, rec.Name)
		}
		p, ok := strings.CutPrefix(rec.Value, "v=DKIM1; k=rsa; p=")
		if !ok {
			t.Fatalf("DKIM record value %q, want v=DKIM1; k=rsa; p=...", rec.Value)
		}
		der, err := base64.StdEncoding.DecodeString(p)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			t.Fatal(err)
		}
		if !rsaKey.PublicKey.Equal(pub) {
			t.Error("the DKIM record's public key is not the configured key's")
		}
		// A zone file cuts the 400-byte value into strings of 255 bytes.
		if want := rec.Name + `. 3600 IN TXT "` + rec.Value[:255] + `" "` + rec.Value[255:] + `"`; rec.Zone != want {
			t.Errorf("zone line = %q, want %q", rec.Zone, want)
		}
		if mail.SPF.Name != "bounces.example.com" || mail.SPF.Value != "v=spf1 a:smtp.relay.example.net include:amazonses.com ~all" || !mail.SPFAligned {
			t.Errorf("SPF = %+v aligned %v, want the relays on the bounce domain, aligned", mail.SPF, mail.SPFAligned)
		}
		if mail.DMARC.Name != "_dmarc.mail.example.com" || !strings.HasPrefix(mail.DMARC.Value, "v=DMARC1; p=none;") {
			t.Errorf("DMARC = %+v", mail.DMARC)
		}
		if len(mail.Warnings) != 0 {
			t.Errorf("warnings for a signed, aligned domain: %q", mail.Warnings)
		}

		// The published records verify what the mailer signs.
		for _, from := range []string{"news@mail.example.com", "news@ed.example.org"} {
			verifySigned(t, keys, got, from)
		}

		// A campaign domain without a key is warned about.
		other := got.Domains[byName["other.example.net"]]
		if other.DKIM.Configured || other.Campaigns != 2 || other.SPFAligned {
			t.Errorf("other.example.net: %+v", other)
		}
		if w := strings.Join(other.Warnings, " "); !strings.Contains(w, "No DKIM key") || !strings.Contains(w, "Gmail and Yahoo") || !strings.Contains(w, "DMARC fails") {
			t.Errorf("other.example.net warnings = %q, want the missing key and the DMARC failure", other.Warnings)
		}
		ed := got.Domains[byName["ed.example.org"]]
		if ed.DKIM.Algorithm != "ed25519" || ed.DKIM.Record == nil ||
			ed.DKIM.Record.Value != "v=DKIM1; k=ed25519; p="+base64.StdEncoding.EncodeToString(edPub) {
			t.Errorf("ed.example.org DKIM = %+v, want the Ed25519 public key", ed.DKIM)
		}
	})
}

// verifySigned composes a message from the address as the mailer does and
// verifies its DKIM signature against the records the API published.
func verifySigned(t *testing.T, keys []mailer.DKIMKey, got sendingDomainsAnswer, from string) {
	t.Helper()
	codec, err := token.NewCodec(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	comp, err := mailer.NewComposer(mailer.ComposerConfig{BounceDomain: "bounces.example.com", DKIM: keys}, codec)
	if err != nil {
		t.Fatal(err)
	}
	m, err := comp.Compose(mailer.Draft{Sender: campaign.Sender{CompanyName: "Example", PostalAddress: "1 Main St", FromName: "News", FromEmail: from},
		ToEmail: "ada@example.net", Subject: "Hello", HTML: "<p>Hello</p>", Text: "Hello", UnsubscribeURL: "https://t.example.com/u/abc"})
	if err != nil {
		t.Fatal(err)
	}
	published := map[string]string{}
	for _, d := range got.Domains {
		if d.DKIM.Record != nil {
			published[d.DKIM.Record.Name] = d.DKIM.Record.Value
		}
	}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(m.Raw), &dkim.VerifyOptions{LookupTXT: func(name string) ([]string, error) {
		if v, ok := published[name]; ok {
			return []string{v}, nil
		}
		return nil, errors.New("no TXT record at " + name)
	}})
	if err != nil || len(vs) != 1 {
		t.Fatalf("verify mail from %s: %v, %d signatures", from, err, len(vs))
	}
	if vs[0].Err != nil {
		t.Errorf("the signature of mail from %s does not verify against the published record: %v", from, vs[0].Err)
	}
}
