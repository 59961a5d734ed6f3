package templates

import (
	"regexp"
	"strings"
	"testing"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/token"
	"github.com/google/go-cmp/cmp"
)

var trackedLink = regexp.MustCompile(`https://t\.example\.com/t/c/([A-Za-z0-9_-]+)`)

// clickTokens decodes every click URL in s, in order.
func clickTokens(tb testing.TB, s string) []token.Token {
	tb.Helper()
	var out []token.Token
	for _, m := range trackedLink.FindAllStringSubmatch(s, -1) {
		tok, err := testCodec(tb).Decode(m[1], token.Click)
		if err != nil {
			tb.Fatalf("click URL %s does not verify: %v", m[0], err)
		}
		out = append(out, tok)
	}
	return out
}

func TestRenderRewritesTrackableLinksOnly(t *testing.T) {
	c := mustCompile(t, campaign.Template{
		Subject: "Hi",
		Layout:  campaign.LayoutNone,
		HTML: `<html><body>
<a href="https://example.com/pricing" data-funnel-intent="Pricing" class="btn">Pricing</a>
<a href="http://example.com/blog?u={{ .Contact.Email }}&amp;x=1">Blog</a>
<A HREF='https://example.com/pricing'>Pricing again</A>
<a href="mailto:sales@example.com">mail</a>
<a href="tel:+123">call</a>
<a href="#top">top</a>
<a href="javascript:alert(1)">js</a>
<a href="https://example.com/private" data-funnel-notrack>private</a>
<a href="{{ .UnsubscribeURL }}">unsubscribe</a>
<a name="anchor">no href</a>
<abbr title="https://example.com/abbr">not a link</abbr>
</body></html>`,
		Text: "Pricing: https://example.com/pricing.\nDocs (https://example.com/docs) and https://example.com/a_(b)\nmailto:x@example.com",
	})
	in := SampleInput()
	in.Delivery = 4242
	m := mustRender(t, c, in)

	wantLinks := []Link{
		{Index: 1, URL: "https://example.com/pricing", Intent: "pricing"},
		{Index: 2, URL: "http://example.com/blog?u=ana.lopez%40example.com&x=1"},
		{Index: 3, URL: "https://example.com/docs"},
		{Index: 4, URL: "https://example.com/a_(b)"},
	}
	if diff := cmp.Diff(wantLinks, m.Links); diff != "" {
		t.Errorf("Links mismatch (-want +got):\n%s", diff)
	}
	for _, kept := range []string{`href="mailto:sales@example.com"`, `href="tel:+123"`, `href="#top"`, `href="javascript:alert(1)"`,
		`href="https://example.com/private"`, `href="` + m.UnsubscribeURL + `"`, `title="https://example.com/abbr"`} {
		if !strings.Contains(m.HTML, kept) {
			t.Errorf("HTML lost %s", kept)
		}
	}
	if strings.Contains(m.HTML, "data-funnel-") {
		t.Errorf("HTML still holds data-funnel-* attributes")
	}
	if !strings.Contains(m.HTML, `class="btn"`) {
		t.Errorf("other attributes of a rewritten tag were lost")
	}
	// HTML links in order, then the honeypot (link 0).
	var got []int
	for _, tok := range clickTokens(t, m.HTML) {
		if tok.Delivery != 4242 {
			t.Errorf("click token delivery = %d, want 4242", tok.Delivery)
		}
		got = append(got, tok.Link)
	}
	if diff := cmp.Diff([]int{1, 2, 1, token.HoneypotLink}, got); diff != "" {
		t.Errorf("HTML click link indexes (-want +got):\n%s", diff)
	}
	wantText := "Pricing: {1}.\nDocs ({3}) and {4}\nmailto:x@example.com"
	gotText := trackedLink.ReplaceAllStringFunc(m.Text, func(u string) string {
		tok := clickTokens(t, u)[0]
		return "{" + string(rune('0'+tok.Link)) + "}"
	})
	if gotText != wantText {
		t.Errorf("Text = %q, want %q", gotText, wantText)
	}
}

func TestRenderAddsHiddenHoneypotAndPixelBeforeBody(t *testing.T) {
	c := mustCompile(t, campaign.Template{Subject: "Hi", HTML: "<p>Hello</p>"})
	in := SampleInput()
	in.Delivery = 7
	m := mustRender(t, c, in)
	body := strings.LastIndex(m.HTML, "</body>")
	pixel := regexp.MustCompile(`<img src="https://t\.example\.com/t/o/([A-Za-z0-9_-]+)" width="1" height="1" alt="" aria-hidden="true"[^>]*>`).FindStringSubmatchIndex(m.HTML)
	if pixel == nil || pixel[1] > body {
		t.Fatalf("no 1x1 open pixel before </body>:\n%s", m.HTML)
	}
	if tok, err := testCodec(t).Decode(m.HTML[pixel[2]:pixel[3]], token.Open); err != nil || tok.Delivery != 7 {
		t.Errorf("pixel token = %+v, %v; want an open token for delivery 7", tok, err)
	}
	honeypot := regexp.MustCompile(`<a href="https://t\.example\.com/t/c/[A-Za-z0-9_-]+"([^>]*)></a>`).FindStringSubmatch(m.HTML)
	if honeypot == nil {
		t.Fatalf("no empty honeypot link:\n%s", m.HTML)
	}
	for _, attr := range []string{`aria-hidden="true"`, `tabindex="-1"`, `display:none`} {
		if !strings.Contains(honeypot[1], attr) {
			t.Errorf("honeypot lacks %s: %s", attr, honeypot[0])
		}
	}
	if strings.Contains(m.Text, "/t/o/") || len(clickTokens(t, m.Text)) != 0 {
		t.Errorf("text part holds the pixel or the honeypot:\n%s", m.Text)
	}
}

func TestPreviewTokensRecordNothing(t *testing.T) {
	c := mustCompile(t, campaign.Template{Subject: "Hi", HTML: `<a href="https://example.com/">x</a>`})
	m := mustRender(t, c, SampleInput()) // Delivery 0
	if !m.Preview {
		t.Error("Message.Preview = false for delivery 0")
	}
	codec := testCodec(t)
	for kind, re := range map[token.Kind]string{
		token.Click: `/t/c/([A-Za-z0-9_-]+)`, token.Open: `/t/o/([A-Za-z0-9_-]+)`,
		token.Unsubscribe: `/u/([A-Za-z0-9_-]+)`, token.View: `/v/([A-Za-z0-9_-]+)`,
	} {
		all := regexp.MustCompile(re).FindAllStringSubmatch(m.HTML+m.Text, -1)
		if len(all) == 0 {
			t.Errorf("no %s URL in the preview", kind)
		}
		for _, s := range all {
			tok, err := codec.Decode(s[1], kind)
			if err != nil || !tok.Preview() {
				t.Errorf("%s token %s = %+v, %v; want a preview token", kind, s[1], tok, err)
			}
		}
	}
}

func TestLinksWithPersonalizationGetPerMessageURLs(t *testing.T) {
	c := mustCompile(t, campaign.Template{Subject: "Hi", HTML: `<a href="https://example.com/p?e={{ .Contact.Email }}">me</a>`})
	for _, email := range []string{"a@example.com", "b@example.com"} {
		in := SampleInput()
		in.Contact.Email, in.Delivery = email, 1
		m := mustRender(t, c, in)
		want := []Link{{Index: 1, URL: "https://example.com/p?e=" + strings.Replace(email, "@", "%40", 1)}} // html/template query-escapes
		if diff := cmp.Diff(want, m.Links); diff != "" {
			t.Errorf("%s: Links (-want +got):\n%s", email, diff)
		}
	}
}

func TestHTMLToText(t *testing.T) {
	tests := []struct{ name, html, want string }{
		{"paragraphs and entities", "<p>Caf&eacute; &amp; more</p>\n\n<p>Second   line<br>third</p>", "Café & more\n\nSecond line\nthird\n"},
		{"links", `<p>See <a href="https://x.io/a?b=1&amp;c=2">our plans</a>, <a href="https://x.io">https://x.io</a> or <a href="mailto:hi@x.io">hi@x.io</a>.</p>`,
			"See our plans (https://x.io/a?b=1&c=2), https://x.io or hi@x.io.\n"},
		{"image link and anchors", `<a href="https://x.io"><img src="l.png" alt="Logo"></a> <a href="#top">top</a> <a href="https://y.io"></a>`,
			"Logo (https://x.io) top https://y.io\n"},
		{"lists and headings", "<h1>Title</h1><ul><li>one</li><li>two</li></ul><p>end</p>", "Title\n\n- one\n- two\n\nend\n"},
		{"hidden, head, style and comments", `<html><head><title>T</title><style>p{}</style></head><body><div style="display: none">pre <div>nested</div></div><!-- c --><p>shown</p><script>x()</script></body></html>`,
			"shown\n"},
		{"tables", "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc\n"},
		{"stray angle bracket", "<p>1 < 2 and 3 > 2</p>", "1 < 2 and 3 > 2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := htmlToText(tt.html); got != tt.want {
				t.Errorf("htmlToText = %q, want %q", got, tt.want)
			}
		})
	}
}
