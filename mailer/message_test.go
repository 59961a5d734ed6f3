package mailer

import (
	"bytes"
	"flag"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/templates"
	"github.com/funnel-email/funnel/token"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var fixedNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func testCodec(tb testing.TB) *token.Codec {
	tb.Helper()
	c, err := token.NewCodec([]byte("test-secret-0123456789"))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// zeroReader makes the boundary and Message-ID nonce predictable.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func newComposer(tb testing.TB, keys ...DKIMKey) *Composer {
	tb.Helper()
	c, err := NewComposer(ComposerConfig{
		BounceDomain: "bounces.example.com", FeedbackSender: "funnel-test", DKIM: keys,
		Now: func() time.Time { return fixedNow }, Rand: zeroReader{},
	}, testCodec(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

var testSender = campaign.Sender{
	CompanyName: "Example Co", PostalAddress: "1 Main Street\nSpringfield 12345",
	FromName: "Example Co News", FromEmail: "news@example.com", ReplyTo: "support@example.com",
}

// draftFor renders tmpl for a contact and returns the draft of its message.
func draftFor(tb testing.TB, tmpl campaign.Template, contact campaign.Contact, delivery int64) Draft {
	tb.Helper()
	tmpl.Name = "golden"
	c, err := templates.Compile(tmpl, templates.Options{PublicURL: "https://t.example.com", Codec: testCodec(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	r, err := c.Render(templates.Input{Contact: contact, Campaign: templates.CampaignData{ID: 12, Name: "Spring"}, Sender: testSender, Delivery: delivery, Now: fixedNow})
	if err != nil {
		tb.Fatal(err)
	}
	return Draft{
		Sender: testSender, ToEmail: contact.Email, ToName: contact.FullName(),
		Subject: r.Subject, HTML: r.HTML, Text: r.Text, UnsubscribeURL: r.UnsubscribeURL,
		CampaignID: 12, DeliveryID: delivery,
	}
}

var ana = campaign.Contact{Email: "ana@example.org", FirstName: "Ana", LastName: "López", Attributes: campaign.Attributes{"company": "Acme"}}

var goldenCases = []struct {
	name  string
	tmpl  campaign.Template
	test  bool
	deliv int64
}{
	{"default_layout", campaign.Template{
		Subject:   "{{ .Contact.FirstName }}, spring news ☀",
		Preheader: "What is new at {{ .Sender.CompanyName }}",
		HTML:      `<h1>Hello {{ .Contact.FirstName }}</h1><p>News for {{ .Attr "company" | default "your team" }}: <a href="https://example.com/pricing" data-funnel-intent="pricing">see pricing</a>.</p>`,
	}, false, 981},
	{"no_layout_text_test_send", campaign.Template{
		Layout:  campaign.LayoutNone,
		Subject: "Plain {{ .Campaign.Name }}",
		HTML:    `<html><body><p>Hi {{ .Contact.FullName }}</p><p><a href="https://example.com/a">A</a> <a href="{{ .UnsubscribeURL }}">Unsubscribe</a></p></body></html>`,
		Text:    "Hi {{ .Contact.FullName }}\nA: https://example.com/a\nUnsubscribe: {{ .UnsubscribeURL }}\n",
	}, true, 0},
}

var (
	normDate     = regexp.MustCompile(`(?m)^Date: [^\r\n]*`)
	normID       = regexp.MustCompile(`<d(\d+)\.c(\d+)\.[a-z2-7]+@`)
	normBoundary = regexp.MustCompile(`funnel-[a-z2-7]{26}`)
)

// normalize replaces what changes per run and sorts the header fields:
// go-mail writes its preformatted headers in map order.
func normalize(b []byte) []byte {
	head, body, _ := bytes.Cut(b, []byte("\r\n\r\n"))
	var fields []string
	for _, line := range strings.Split(string(head), "\r\n") {
		if strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
			fields[len(fields)-1] += "\r\n" + line
			continue
		}
		fields = append(fields, line)
	}
	slices.Sort(fields)
	b = []byte(strings.Join(fields, "\r\n") + "\r\n\r\n" + string(body))
	b = normDate.ReplaceAll(b, []byte("Date: DATE"))
	b = normID.ReplaceAll(b, []byte("<d$1.c$2.NONCE@"))
	return normBoundary.ReplaceAll(b, []byte("BOUNDARY"))
}

func TestComposeMatchesGoldenFiles(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			d := draftFor(t, tc.tmpl, ana, tc.deliv)
			d.Test = tc.test
			m, err := newComposer(t).Compose(d)
			if err != nil {
				t.Fatal(err)
			}
			got := normalize(m.Raw)
			path := filepath.Join("testdata", tc.name+".eml")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
			}
		})
	}
}

// parsed is a message read back with net/mail and mime/multipart.
type parsed struct {
	header mail.Header
	parts  map[string]string // media type -> decoded body, "\n" line ends
	order  []string
}

func parse(tb testing.TB, raw []byte) parsed {
	tb.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		tb.Fatalf("net/mail cannot read the message: %v", err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		tb.Fatalf("Content-Type = %q (%v), want multipart/alternative", msg.Header.Get("Content-Type"), err)
	}
	p := parsed{header: msg.Header, parts: map[string]string{}}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			tb.Fatalf("multipart: %v", err)
		}
		ct, cp, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		if cp["charset"] != "UTF-8" {
			tb.Errorf("part %s charset = %q, want UTF-8", ct, cp["charset"])
		}
		body, err := io.ReadAll(part)
		if err != nil {
			tb.Fatal(err)
		}
		p.parts[ct] = strings.ReplaceAll(string(body), "\r\n", "\n")
		p.order = append(p.order, ct)
	}
	return p
}

func TestComposeBuildsAlternativeMessageWithCampaignHeaders(t *testing.T) {
	d := draftFor(t, goldenCases[0].tmpl, ana, 981)
	m, err := newComposer(t).Compose(d)
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, m.Raw)
	if diff := cmp.Diff([]string{"text/plain", "text/html"}, p.order); diff != "" {
		t.Errorf("part order (-want +got):\n%s", diff)
	}
	if p.parts["text/html"] != strings.ReplaceAll(d.HTML, "\r\n", "\n") || p.parts["text/plain"] != d.Text {
		t.Errorf("decoded parts differ from the draft")
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(p.header.Get("Subject"))
	if err != nil || subject != "Ana, spring news ☀" {
		t.Errorf("Subject = %q (%v)", subject, err)
	}
	from, _ := p.header.AddressList("From")
	to, _ := p.header.AddressList("To")
	replyTo, _ := p.header.AddressList("Reply-To")
	gotAddrs := [][]*mail.Address{from, to, replyTo}
	wantAddrs := [][]*mail.Address{{{Name: "Example Co News", Address: "news@example.com"}}, {{Name: "Ana López", Address: "ana@example.org"}}, {{Address: "support@example.com"}}}
	if diff := cmp.Diff(wantAddrs, gotAddrs); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	if date, err := p.header.Date(); err != nil || !date.Equal(fixedNow) {
		t.Errorf("Date = %v, %v; want %v", date, err, fixedNow)
	}
	if id := p.header.Get("Message-ID"); !regexp.MustCompile(`^<d981\.c12\.[a-z2-7]+@example\.com>$`).MatchString(id) || id != "<"+m.MessageID+">" {
		t.Errorf("Message-ID = %q (Message.MessageID %q)", id, m.MessageID)
	}
	wantHeaders := map[string]string{
		"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		"Feedback-ID":           "12:campaign:funnel-test",
		"X-Funnel-Campaign":     "12",
		"X-Funnel-Delivery":     "981",
		"Precedence":            "bulk",
		"User-Agent":            "",
		"X-Mailer":              "",
		"X-Funnel-Test":         "",
	}
	for k, want := range wantHeaders {
		if got := p.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	lu := regexp.MustCompile(`^<(https://t\.example\.com/u/[A-Za-z0-9_-]+)>, <mailto:unsubscribe\+([a-v0-9]+)@bounces\.example\.com\?subject=unsubscribe>$`).FindStringSubmatch(p.header.Get("List-Unsubscribe"))
	if lu == nil || lu[1] != d.UnsubscribeURL {
		t.Fatalf("List-Unsubscribe = %q, want the https URL %s and a mailto", p.header.Get("List-Unsubscribe"), d.UnsubscribeURL)
	}
	codec := testCodec(t)
	if tok, err := codec.DecodeAddress(lu[2], token.Unsubscribe); err != nil || tok.Delivery != 981 {
		t.Errorf("mailto unsubscribe token = %+v, %v", tok, err)
	}
	local, ok := strings.CutPrefix(m.From, "bounces+")
	local, domain, _ := strings.Cut(local, "@")
	tok, err := codec.DecodeAddress(local, token.Bounce)
	if !ok || domain != "bounces.example.com" || err != nil || tok.Delivery != 981 {
		t.Errorf("envelope from = %q: token %+v, %v; want bounces+{token for delivery 981}@bounces.example.com", m.From, tok, err)
	}
	if diff := cmp.Diff([]string{"ana@example.org"}, m.To); diff != "" {
		t.Errorf("envelope to (-want +got):\n%s", diff)
	}
}

func TestComposeMarksTestSends(t *testing.T) {
	d := draftFor(t, goldenCases[0].tmpl, ana, 0)
	d.Test = true
	m, err := newComposer(t).Compose(d)
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, m.Raw)
	subject, _ := new(mime.WordDecoder).DecodeHeader(p.header.Get("Subject"))
	if !strings.HasPrefix(subject, "[Test] ") || p.header.Get(HeaderTest) != "yes" || p.header.Get("Feedback-ID") != "12:test:funnel-test" {
		t.Errorf("test send: Subject %q, %s %q, Feedback-ID %q", subject, HeaderTest, p.header.Get(HeaderTest), p.header.Get("Feedback-ID"))
	}
}

func TestComposeNeverLetsDataCreateHeaders(t *testing.T) {
	evil := "Ana\r\nBcc: victim@example.net\r\nX-Evil: 1"
	d := draftFor(t, campaign.Template{Subject: "Hi {{ .Contact.FirstName }}", HTML: "<p>x</p>"}, campaign.Contact{Email: "ana@example.org", FirstName: evil}, 5)
	d.Subject = "Hi " + evil // as if the template engine had let it through
	d.Sender.FromName = evil
	m, err := newComposer(t).Compose(d)
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, m.Raw)
	for _, h := range []string{"Bcc", "X-Evil"} {
		if v, ok := p.header[h]; ok {
			t.Errorf("header %s = %q was created from contact data", h, v)
		}
	}
	if bytes.Contains(m.Raw, []byte("\r\nBcc:")) || bytes.Contains(m.Raw, []byte("\nX-Evil:")) {
		t.Errorf("raw message holds an injected header line")
	}
	to, err := p.header.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Address != "ana@example.org" || strings.ContainsAny(to[0].Name, "\r\n") {
		t.Errorf("To = %v, %v; want only ana@example.org with a one-line name", to, err)
	}
	if diff := cmp.Diff([]string{"ana@example.org"}, m.To); diff != "" {
		t.Errorf("envelope recipients (-want +got):\n%s", diff)
	}
}

func TestComposeRefusesBadAddressesAndPlainHTTPUnsubscribe(t *testing.T) {
	base := draftFor(t, goldenCases[0].tmpl, ana, 1)
	tests := map[string]func(*Draft){
		"to with a line break": func(d *Draft) { d.ToEmail = "a@example.org\r\nBcc: b@example.org" },
		"from without domain":  func(d *Draft) { d.Sender.FromEmail = "news" },
		"http unsubscribe URL": func(d *Draft) { d.UnsubscribeURL = "http://t.example.com/u/x" },
	}
	for name, mutate := range tests {
		d := base
		mutate(&d)
		if _, err := newComposer(t).Compose(d); campaign.ErrorCode(err) != campaign.EINVALID {
			t.Errorf("%s: err = %v, want EINVALID", name, err)
		}
	}
}
