package templates

import (
	"strings"
	"testing"
	"time"

	"github.com/funnel-email/funnel/campaign"
)

// FuzzRender compiles random sources and renders them for random contact
// data: nothing may panic, every render must end within its bound, and a
// successful render must keep the message invariants.
func FuzzRender(f *testing.F) {
	for _, s := range []string{
		`<p>Hi {{ .Contact.FirstName }}</p>`,
		`<a href="https://x.io/?q={{ .Attr "q" }}">x</a>{{ if .Contact.Email }}{{ .Attr "company" | default "team" | upper }}{{ end }}`,
		`{{ range .Contact.Email }}{{ end }}`,
		`{{ printf "%0999999999d" 1 }}`,
		`{{ with .Contact }}{{ .Emial }}{{ end }}`,
		`<a href="{{ .Attr "u" }}" data-funnel-intent="{{ .Contact.LastName }}">{{ date "2006" "Europe/Paris" .Now }}</a>`,
		`<script>var x = {{ .Contact.FirstName }};</script><style>{{ .Attr "c" }}</style>`,
		`{{ define "x" }}{{ template "x" . }}{{ end }}{{ template "x" . }}`,
	} {
		f.Add(s, "Ana\r\nBcc: x", "https://evil.example/<script>")
	}
	codec := testCodec(f)
	f.Fuzz(func(t *testing.T, src, name, attr string) {
		c, err := Compile(campaign.Template{Name: "f", Subject: "Hi {{ .Contact.FirstName }}", HTML: src},
			Options{PublicURL: publicURL, Codec: codec, MaxOutput: 64 << 10, Timeout: 200 * time.Millisecond})
		if err != nil {
			return
		}
		in := SampleInput()
		in.Delivery = 1
		in.Contact.FirstName = name
		in.Contact.Attributes = campaign.Attributes{"q": attr, "company": attr, "u": attr, "c": attr}
		done := make(chan *Message, 1)
		go func() {
			m, _ := c.Render(in)
			done <- m
		}()
		select {
		case m := <-done:
			if m == nil {
				return
			}
			if strings.ContainsAny(m.Subject, "\r\n") {
				t.Fatalf("subject %q holds a line break", m.Subject)
			}
			if !strings.Contains(m.HTML, "/t/o/") {
				t.Fatal("rendered HTML lacks the open pixel")
			}
			for _, l := range m.Links {
				if !hasHTTPScheme(l.URL) {
					t.Fatalf("link %q is not http(s) but would become a redirect", l.URL)
				}
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Render of %q did not finish within 10s", src)
		}
	})
}
