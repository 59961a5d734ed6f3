package mailer

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/token"
	"github.com/google/go-cmp/cmp"
	gomail "github.com/wneessen/go-mail"
)

// composeWithGoMail builds d the way Compose did before it had its own
// writer: every header and part set on a go-mail Msg, written by WriteTo.
// It uses the composer's clock, random source and codec, so both paths
// see the same boundary, nonce and tokens.
func composeWithGoMail(tb testing.TB, c *Composer, d Draft) []byte {
	tb.Helper()
	var r randoms
	if _, err := io.ReadFull(c.cfg.Rand, r.raw[:]); err != nil {
		tb.Fatal(err)
	}
	r.encode()
	domain := d.Sender.FromEmail[strings.LastIndexByte(d.Sender.FromEmail, '@')+1:]
	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent(), gomail.WithBoundary(string(r.boundary[:])))
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	must(m.FromFormat(headerText(d.Sender.FromName), d.Sender.FromEmail))
	must(m.AddToFormat(headerText(d.ToName), d.ToEmail))
	if d.Sender.ReplyTo != "" {
		must(m.ReplyTo(d.Sender.ReplyTo))
	}
	subject, kind := headerText(d.Subject), "campaign"
	if d.Test {
		subject, kind = "[Test] "+subject, "test"
		m.SetGenHeader(HeaderTest, "yes")
	}
	m.Subject(subject)
	m.SetDateWithValue(c.cfg.Now())
	m.SetMessageIDWithValue(fmt.Sprintf("d%d.c%d.%s@%s", d.DeliveryID, d.CampaignID, r.nonce[:], domain))
	mailto := "mailto:unsubscribe+" + c.codec.EncodeAddress(token.Token{Kind: token.Unsubscribe, Delivery: d.DeliveryID}) + "@" + c.cfg.BounceDomain + "?subject=unsubscribe"
	must(m.SetListUnsubscribeOneClick(d.UnsubscribeURL, mailto))
	m.SetGenHeader("Feedback-ID", strconv.FormatInt(d.CampaignID, 10)+":"+kind+":"+c.cfg.FeedbackSender)
	m.SetBulk()
	m.SetGenHeader(HeaderCampaign, strconv.FormatInt(d.CampaignID, 10))
	m.SetGenHeader(HeaderDelivery, strconv.FormatInt(d.DeliveryID, 10))
	m.SetBodyString(gomail.TypeTextPlain, d.Text)
	m.AddAlternativeString(gomail.TypeTextHTML, d.HTML)
	var buf bytes.Buffer
	if _, err := m.WriteTo(&buf); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// decodedHeader is a header with every value RFC 2047-decoded and
// unfolded, as a mail client shows it.
func decodedHeader(tb testing.TB, p parsed) map[string][]string {
	tb.Helper()
	dec := new(mime.WordDecoder)
	out := map[string][]string{}
	for k, vs := range p.header {
		for _, v := range vs {
			d, err := dec.DecodeHeader(v)
			if err != nil {
				tb.Fatalf("header %s: %q does not decode: %v", k, v, err)
			}
			out[k] = append(out[k], d)
		}
	}
	return out
}

// equivalenceDrafts are drafts that exercise the header encoder and the
// quoted-printable encoder at their edges.
func equivalenceDrafts(tb testing.TB) map[string]Draft {
	tb.Helper()
	long := strings.Repeat("Grüße aus Köln und schöne Feiertage ", 5)
	base := draftFor(tb, goldenCases[0].tmpl, ana, 981)
	drafts := map[string]Draft{}
	for _, tc := range goldenCases {
		d := draftFor(tb, tc.tmpl, ana, tc.deliv)
		d.Test = tc.test
		drafts[tc.name] = d
	}
	add := func(name string, mutate func(*Draft)) {
		d := base
		mutate(&d)
		drafts[name] = d
	}
	add("long non-ASCII subject and name", func(d *Draft) {
		d.Subject, d.ToName, d.Sender.FromName = long, "María José Fernández de la Peña y Ñúñez Castellanos", long
	})
	add("long ASCII subject folds at spaces", func(d *Draft) {
		d.Subject = strings.Repeat("Spring news for the whole team ", 6)
	})
	add("ASCII subject with a word longer than a line", func(d *Draft) {
		d.Subject = "Read " + strings.Repeat("x", 120) + " now"
	})
	add("name with specials and non-ASCII is B-encoded", func(d *Draft) {
		d.ToName, d.Sender.FromName = "Zoë (Sales), Inc.", "Café: Ünited"
	})
	add("test send without names", func(d *Draft) {
		d.Test, d.ToName, d.Sender.FromName, d.Sender.ReplyTo = true, "", "", ""
	})
	add("bodies at the edges of quoted-printable", func(d *Draft) {
		d.Text = "trailing space \nTab\t\r\nequals = sign\n" + strings.Repeat("a", 75) + " \n" + strings.Repeat("é", 40) + "\n\n" + strings.Repeat("b", 74) + "=\n" + strings.Repeat("c", 76) + "\n ends with a tab\t"
		d.HTML = strings.Repeat("<p>ünïcödé "+strings.Repeat("z", 70)+"</p>\r\n", 20) + "\x00\x7f\xff" + strings.Repeat(" ", 80)
	})
	add("empty text part", func(d *Draft) { d.Text = "" })
	return drafts
}

func TestWriterMatchesGoMail(t *testing.T) {
	for name, d := range equivalenceDrafts(t) {
		t.Run(name, func(t *testing.T) {
			ours, err := newComposer(t).Compose(d)
			if err != nil {
				t.Fatal(err)
			}
			theirs := composeWithGoMail(t, newComposer(t), d)
			po, pt := parse(t, ours.Raw), parse(t, theirs)
			if diff := cmp.Diff(decodedHeader(t, pt), decodedHeader(t, po)); diff != "" {
				t.Errorf("decoded headers differ (-go-mail +ours):\n%s", diff)
			}
			if diff := cmp.Diff(pt.order, po.order); diff != "" {
				t.Errorf("part order differs (-go-mail +ours):\n%s", diff)
			}
			if diff := cmp.Diff(pt.parts, po.parts); diff != "" {
				t.Errorf("decoded parts differ (-go-mail +ours):\n%s", diff)
			}
			// Beyond decoding alike, the bytes are alike: same encoding,
			// folding and line breaking, only the header order differs.
			if diff := cmp.Diff(string(normalize(theirs)), string(normalize(ours.Raw))); diff != "" {
				t.Errorf("bytes differ (-go-mail +ours):\n%s", diff)
			}
			for i, line := range strings.Split(string(ours.Raw), "\r\n") {
				if len(line) > 78 && !strings.HasPrefix(line, "List-Unsubscribe: ") && !strings.Contains(line, "xxxxxxxxxx") {
					t.Errorf("line %d is %d characters: %q", i+1, len(line), line)
				}
			}
		})
	}
}

func TestComposeToAppendsAndReusesTheBuffer(t *testing.T) {
	rsaKey, edKey := testKeys(t)
	d := draftFor(t, goldenCases[0].tmpl, ana, 981)
	for name, keys := range map[string][]DKIMKey{"unsigned": nil, "ed25519": {edKey}, "rsa": {rsaKey}} {
		t.Run(name, func(t *testing.T) {
			c := newComposer(t, keys...)
			want, err := c.Compose(d)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 0, 64<<10)
			for range 2 {
				got, err := c.ComposeTo(append(buf[:0], "prefix"...), d)
				if err != nil {
					t.Fatal(err)
				}
				if &got.Raw[0] != &buf[:1][0] {
					t.Error("ComposeTo did not write into the buffer it was given")
				}
				if !bytes.Equal(got.Raw[len("prefix"):], want.Raw) || string(got.Raw[:len("prefix")]) != "prefix" {
					t.Errorf("ComposeTo = prefix + a message other than Compose's")
				}
				if got.From != want.From || got.MessageID != want.MessageID || !slices.Equal(got.To, want.To) {
					t.Errorf("envelope %q %q %v, want %q %q %v", got.From, got.MessageID, got.To, want.From, want.MessageID, want.To)
				}
			}
		})
	}
}

func TestComposeRefusesUnsubscribeURLsThatBreakTheHeader(t *testing.T) {
	base := draftFor(t, goldenCases[0].tmpl, ana, 1)
	for _, u := range []string{"https://t.example.com/u/a>, <https://evil.example/", "https://t.example.com/u/a b", "https://t.example.com/u/\r\nBcc: x", "https:///u/x", "mailto:x@example.com"} {
		d := base
		d.UnsubscribeURL = u
		if _, err := newComposer(t).Compose(d); campaign.ErrorCode(err) != campaign.EINVALID {
			t.Errorf("unsubscribe URL %q: err = %v, want EINVALID", u, err)
		}
	}
}

func TestComposeEncodesNamesThatLookLikeSyntax(t *testing.T) {
	d := draftFor(t, goldenCases[0].tmpl, ana, 1)
	d.ToName = `Ana "the boss" \ López <evil@example.net>, x@example.net`
	m, err := newComposer(t).Compose(d)
	if err != nil {
		t.Fatal(err)
	}
	to, err := parse(t, m.Raw).header.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Address != "ana@example.org" || to[0].Name != d.ToName {
		t.Errorf("To = %v, %v; want one address ana@example.org named %q", to, err, d.ToName)
	}
}

// qpNormalize is what quoted-printable decodes back to: every line break
// (CRLF, LF or lone CR) is a CRLF.
func qpNormalize(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

func checkQP(t *testing.T, in string) {
	t.Helper()
	enc := appendQP([]byte("x"), in)[1:]
	dec, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(enc)))
	if err != nil {
		t.Fatalf("encoding of %q does not decode: %v\n%s", in, err, enc)
	}
	if want := qpNormalize(in); string(dec) != want {
		t.Fatalf("decode(encode(%q)) = %q, want %q\nencoded:\n%s", in, dec, want, enc)
	}
	for _, line := range bytes.Split(enc, []byte("\r\n")) {
		if len(line) > 76 {
			t.Fatalf("encoding of %q has a line of %d characters: %q", in, len(line), line)
		}
		for _, c := range line {
			if c > '~' || c < ' ' && c != '\t' {
				t.Fatalf("encoding of %q holds byte %#x", in, c)
			}
		}
		if n := len(line); n > 0 && (line[n-1] == ' ' || line[n-1] == '\t') {
			t.Fatalf("encoding of %q has a line ending in whitespace: %q", in, line)
		}
	}
	// The standard encoder drops a LF that follows a lone CR and an
	// encoded byte; apart from that the output is the same.
	if !strings.Contains(strings.ReplaceAll(in, "\r\n", ""), "\r") {
		var std bytes.Buffer
		w := quotedprintable.NewWriter(&std)
		w.Write([]byte(in))
		w.Close()
		if !bytes.Equal(std.Bytes(), enc) {
			t.Fatalf("encoding of %q differs from mime/quotedprintable:\nours: %q\nstd:  %q", in, enc, std.Bytes())
		}
	}
}

func TestQuotedPrintable(t *testing.T) {
	for _, in := range []string{
		"", " ", "\t", "=", "\r", "\n", "\r\n", "\r\r\n\n", "a \r\nb\t\nc ", "\r\xff\n",
		strings.Repeat("a", 75), strings.Repeat("a", 76), strings.Repeat("a", 75) + " ", strings.Repeat("a", 74) + " \n",
		strings.Repeat("a", 72) + "é", strings.Repeat("a", 73) + "=", strings.Repeat("=", 100),
		strings.Repeat("0123456789", 30), strings.Repeat("ab cd\tef ", 40),
	} {
		checkQP(t, in)
	}
}

func FuzzQuotedPrintable(f *testing.F) {
	for _, s := range []string{"", "a b \r\n", strings.Repeat("x", 80) + "= é\t", "\r\n\r\r\n", strings.Repeat("ab =\t", 30)} {
		f.Add(s)
	}
	f.Fuzz(checkQP)
}

func BenchmarkQuotedPrintable(b *testing.B) {
	d := draftFor(b, campaign.Template{Subject: "x", HTML: benchTemplate(b).HTML}, ana, 1)
	buf := make([]byte, 0, 64<<10)
	b.SetBytes(int64(len(d.HTML)))
	for b.Loop() {
		buf = appendQP(buf[:0], d.HTML)
	}
}

func TestPlain8MatchesBytewiseCheck(t *testing.T) {
	edge := []byte{0x00, 0x09, 0x0a, 0x0d, 0x1f, ' ', '!', '<', '=', '>', 'a', '~', 0x7f, 0x80, 0xc3, 0xfe, 0xff}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		var b [8]byte
		for i := range b {
			b[i] = edge[r.IntN(len(edge))]
		}
		want := true
		for _, c := range b {
			want = want && c >= ' ' && c <= '~' && c != '='
		}
		if got := plain8(load64(string(b[:]), 0)); got != want {
			t.Fatalf("plain8(%q) = %v, want %v", b, got, want)
		}
	}
}
