package templates

import (
	"strings"
	"testing"

	"github.com/funnel-email/funnel/campaign"
)

// benchHTML is a 14 KB newsletter body with 5 merge fields and 4 links, as
// in the mailer's send benchmark.
func benchHTML() string {
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
	return b.String()
}

func BenchmarkRender(b *testing.B) {
	c := mustCompile(b, campaign.Template{Subject: "{{ .Contact.FirstName }}, spring news", Preheader: "What is new this spring", HTML: benchHTML()})
	in := SampleInput()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		in.Delivery = int64(i + 1)
		if _, err := c.Render(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHTMLToText(b *testing.B) {
	c := mustCompile(b, campaign.Template{Subject: "x", HTML: benchHTML()})
	html := mustRender(b, c, SampleInput()).HTML
	var w textWriter
	b.SetBytes(int64(len(html)))
	b.ReportAllocs()
	for b.Loop() {
		w.convert(html)
	}
}
