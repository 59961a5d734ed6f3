package mailer

import (
	"fmt"
	"strings"
	"testing"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/templates"
)

// benchTemplate is a 14 KB HTML template with 5 merge fields and 4 links,
// the size of a typical newsletter.
func benchTemplate(tb testing.TB) campaign.Template {
	tb.Helper()
	var b strings.Builder
	b.WriteString(`<h1>Hello {{ .Contact.FirstName | default "there" }},</h1>` + "\n")
	b.WriteString(`<p>This is the {{ .Campaign.Name }} issue for {{ .Attr "company" | default "your team" }}.</p>` + "\n")
	links := []string{
		`<p><a href="https://example.com/pricing" data-funnel-intent="pricing" style="color:#2563eb;">See pricing</a></p>`,
		`<p><a href="https://example.com/blog/spring-release?utm_source=funnel&amp;utm_medium=email">Read the release notes</a></p>`,
		`<p><a href="https://example.com/account?email={{ .Contact.Email }}">Your account</a></p>`,
		`<p><a href="https://docs.example.com/getting-started">Getting started</a></p>`,
	}
	para := `<p style="margin:0 0 16px;font-size:16px;line-height:1.5;">Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat.</p>` + "\n"
	for i := 0; b.Len() < 14<<10-400; i++ {
		b.WriteString(para)
		if i%12 == 5 && len(links) > 0 {
			b.WriteString(links[0] + "\n")
			links = links[1:]
		}
	}
	for _, l := range links {
		b.WriteString(l + "\n")
	}
	b.WriteString(`<p>Cheers,<br>The team at {{ .Sender.CompanyName }}</p>`)
	return campaign.Template{Name: "bench", Subject: "{{ .Contact.FirstName }}, spring news", Preheader: "What is new this spring", HTML: b.String()}
}

// benchmarkSend renders and composes one message per iteration, with
// Compose, or with ComposeTo into one reused buffer when reuse is set (as
// a sending worker does).
func benchmarkSend(b *testing.B, reuse bool, keys ...DKIMKey) {
	tmpl := benchTemplate(b)
	c, err := templates.Compile(tmpl, templates.Options{PublicURL: "https://t.example.com", Codec: testCodec(b)})
	if err != nil {
		b.Fatal(err)
	}
	comp, err := NewComposer(ComposerConfig{BounceDomain: "bounces.example.com", DKIM: keys}, testCodec(b))
	if err != nil {
		b.Fatal(err)
	}
	in := templates.Input{Contact: ana, Campaign: templates.CampaignData{ID: 12, Name: "Spring"}, Sender: testSender, Now: fixedNow}
	m, err := c.Render(in)
	if err != nil {
		b.Fatal(err)
	}
	if len(m.Links) != 4 {
		b.Fatalf("benchmark template has %d links, want 4", len(m.Links))
	}
	b.ReportAllocs()
	b.ResetTimer()
	size := 0
	var buf []byte
	for i := 0; b.Loop(); i++ {
		in.Delivery = int64(i + 1)
		m, err := c.Render(in)
		if err != nil {
			b.Fatal(err)
		}
		d := Draft{
			Sender: testSender, ToEmail: ana.Email, ToName: ana.FullName(), Subject: m.Subject,
			HTML: m.HTML, Text: m.Text, UnsubscribeURL: m.UnsubscribeURL, CampaignID: 12, DeliveryID: in.Delivery,
		}
		var raw []byte
		if reuse {
			msg, err := comp.ComposeTo(buf[:0], d)
			if err != nil {
				b.Fatal(err)
			}
			raw, buf = msg.Raw, msg.Raw
		} else {
			msg, err := comp.Compose(d)
			if err != nil {
				b.Fatal(err)
			}
			raw = msg.Raw
		}
		size = len(raw)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(size), "bytes/msg")
}

// BenchmarkRenderAndCompose renders a 14 KB template for one contact,
// rewrites its links and builds the MIME message: the per-message cost of
// sending without DKIM.
func BenchmarkRenderAndCompose(b *testing.B) {
	if n := len(benchTemplate(b).HTML); n < 14<<10-400 || n > 15<<10 {
		b.Fatal(fmt.Sprintf("template is %d bytes, want about 14 KB", n))
	}
	benchmarkSend(b, false)
}

// BenchmarkRenderAndComposeTo is BenchmarkRenderAndCompose the way a
// sending worker composes: ComposeTo into a buffer reused per message.
func BenchmarkRenderAndComposeTo(b *testing.B) {
	benchmarkSend(b, true)
}

// BenchmarkRenderComposeSignEd25519 adds an Ed25519 DKIM signature.
func BenchmarkRenderComposeSignEd25519(b *testing.B) {
	_, ed := testKeys(b)
	benchmarkSend(b, false, ed)
}

// BenchmarkRenderComposeSignRSA2048 adds an RSA-2048 DKIM signature, the
// common key type; RSA signing dominates its cost.
func BenchmarkRenderComposeSignRSA2048(b *testing.B) {
	r, _ := testKeys(b)
	benchmarkSend(b, false, r)
}

// BenchmarkCompose builds the MIME message of one rendered draft: the
// mailer's share of BenchmarkRenderAndCompose.
func BenchmarkCompose(b *testing.B) {
	c, err := templates.Compile(benchTemplate(b), templates.Options{PublicURL: "https://t.example.com", Codec: testCodec(b)})
	if err != nil {
		b.Fatal(err)
	}
	m, err := c.Render(templates.Input{Contact: ana, Campaign: templates.CampaignData{ID: 12, Name: "Spring"}, Sender: testSender, Delivery: 1, Now: fixedNow})
	if err != nil {
		b.Fatal(err)
	}
	comp, err := NewComposer(ComposerConfig{BounceDomain: "bounces.example.com"}, testCodec(b))
	if err != nil {
		b.Fatal(err)
	}
	d := Draft{Sender: testSender, ToEmail: ana.Email, ToName: ana.FullName(), Subject: m.Subject,
		HTML: m.HTML, Text: m.Text, UnsubscribeURL: m.UnsubscribeURL, CampaignID: 12, DeliveryID: 1}
	buf := make([]byte, 0, 64<<10)
	b.Run("Compose", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := comp.Compose(d); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ComposeTo", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m, err := comp.ComposeTo(buf[:0], d)
			if err != nil {
				b.Fatal(err)
			}
			buf = m.Raw
		}
	})
}
