package templates

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/token"
	"github.com/google/go-cmp/cmp"
)

const publicURL = "https://t.example.com"

func testCodec(tb testing.TB) *token.Codec {
	tb.Helper()
	c, err := token.NewCodec([]byte("test-secret-0123456789"))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func mustCompile(tb testing.TB, t campaign.Template) *Compiled {
	tb.Helper()
	if t.Name == "" {
		t.Name = "test"
	}
	c, err := Compile(t, Options{PublicURL: publicURL, Codec: testCodec(tb)})
	if err != nil {
		tb.Fatalf("Compile: %v", err)
	}
	return c
}

func mustRender(tb testing.TB, c *Compiled, in Input) *Message {
	tb.Helper()
	m, err := c.Render(in)
	if err != nil {
		tb.Fatalf("Render: %v", err)
	}
	return m
}

func fieldErrors(tb testing.TB, err error) []campaign.FieldError {
	tb.Helper()
	var e *campaign.Error
	if !errors.As(err, &e) || e.Code != campaign.EINVALID {
		tb.Fatalf("error = %v, want an EINVALID *campaign.Error", err)
	}
	return e.Details
}

func TestCompileReportsFieldLineAndColumn(t *testing.T) {
	const unsub = `<a href="{{ .UnsubscribeURL }}">u</a>`
	tests := []struct {
		name string
		tmpl campaign.Template
		want []campaign.FieldError
	}{
		{"unknown function", campaign.Template{Subject: "Hi", HTML: "<p>x</p>\n  <p>{{ shout .Contact.FirstName }}</p>"},
			[]campaign.FieldError{{Field: "html", Line: 2, Column: 9, Message: `function "shout" not defined`}}},
		{"unknown contact field in subject", campaign.Template{Subject: "Hi {{ .Contact.Emial }}", HTML: "<p>x</p>"},
			[]campaign.FieldError{{Field: "subject", Line: 1, Column: 15, Message: `unknown field "Emial" in .Contact (known: Email, FirstName, FullName, LastName)`}}},
		{"unknown root field via $ inside with", campaign.Template{Subject: "Hi", HTML: "<p>\n{{ with .Contact }}{{ .FirstName }} {{ $.Campain.Name }}{{ end }}</p>"},
			[]campaign.FieldError{{Field: "html", Line: 2, Column: 41, Message: `unknown field "Campain" in the template data (known: Attr, Campaign, Contact, Now, Preheader, Sender, Subject, UnsubscribeURL, ViewInBrowserURL)`}}},
		{"unknown field inside with", campaign.Template{Subject: "Hi", HTML: "<p>{{ with .Sender }}{{ .Adress }}{{ end }}</p>"},
			[]campaign.FieldError{{Field: "html", Line: 1, Column: 25, Message: `unknown field "Adress" in .Sender (known: CompanyName, PostalAddress)`}}},
		{"unclosed action in text", campaign.Template{Subject: "Hi", HTML: "<p>x</p>", Text: "Hello\nDear {{ .Contact.FirstName"},
			[]campaign.FieldError{{Field: "text", Line: 2, Column: 6, Message: "unclosed action"}}},
		{"unexpected token", campaign.Template{Subject: "Hi {{ .Contact.FirstName } }}", HTML: "<p>x</p>"},
			[]campaign.FieldError{{Field: "subject", Line: 1, Column: 26, Message: `unexpected "}" in operand`}}},
		{"range refused", campaign.Template{Subject: "Hi", HTML: "<p>x</p>\n{{ range .Contact.Email }}x{{ end }}"},
			[]campaign.FieldError{{Field: "html", Line: 2, Column: 4, Message: "{{range}} is not supported: template data holds no lists"}}},
		{"define refused", campaign.Template{Subject: "Hi", HTML: `<p>x</p>{{ define "layout" }}mine{{ end }}`},
			[]campaign.FieldError{{Field: "html", Line: 1, Column: 9, Message: "{{define}} and {{block}} are not supported"}}},
		{"no unsubscribe link without layout", campaign.Template{Subject: "Hi", HTML: "<p>x</p>", Layout: campaign.LayoutNone},
			[]campaign.FieldError{{Field: "html", Message: `no unsubscribe link: add <a href="{{ .UnsubscribeURL }}">Unsubscribe</a> or use the default layout`}}},
		{"unknown time zone found by the sample render", campaign.Template{Subject: "Hi", Layout: campaign.LayoutNone, HTML: unsub + "\n<p>{{ date \"2 Jan\" \"Mars/Olympus\" .Now }}</p>"},
			[]campaign.FieldError{{Field: "html", Line: 2, Column: 7, Message: `<date "2 Jan" "Mars/Olympus" .Now>: error calling date: unknown time zone "Mars/Olympus"`}}},
		{"several problems at once", campaign.Template{Subject: "{{ .Nope }}", HTML: "<p>{{ .Contact.Phone }}</p>"},
			[]campaign.FieldError{
				{Field: "subject", Line: 1, Column: 4, Message: `unknown field "Nope" in the template data (known: Attr, Campaign, Contact, Now, Preheader, Sender, Subject, UnsubscribeURL, ViewInBrowserURL)`},
				{Field: "html", Line: 1, Column: 15, Message: `unknown field "Phone" in .Contact (known: Email, FirstName, FullName, LastName)`},
			}},
		{"unicode before the error counts as one column each", campaign.Template{Subject: "Grüße {{ nope }}", HTML: "<p>x</p>"},
			[]campaign.FieldError{{Field: "subject", Line: 1, Column: 10, Message: `function "nope" not defined`}}},
		{"missing name and subject", campaign.Template{Name: " ", HTML: "<p>x</p>"},
			[]campaign.FieldError{{Field: "name", Message: "is required"}, {Field: "subject", Message: "is required"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.tmpl.Name == "" {
				tt.tmpl.Name = "t"
			}
			_, err := Compile(tt.tmpl, Options{PublicURL: publicURL, Codec: testCodec(t)})
			if diff := cmp.Diff(tt.want, fieldErrors(t, err)); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCompileAcceptsEveryDocumentedFeature(t *testing.T) {
	mustCompile(t, campaign.Template{
		Subject:   `{{ .Contact.FirstName | default "there" | title }}, news from {{ .Sender.CompanyName }}`,
		Preheader: `{{ .Campaign.Name }}`,
		HTML: `<p>{{ if .Contact.FirstName }}Hi {{ .Contact.FullName }}{{ else }}Hello{{ end }}</p>
<p>{{ with .Contact }}{{ .Email | lower }}{{ end }} {{ .Attr "company" | default "your team" | upper }}</p>
<p>{{ date "Mon 2 Jan 2006 15:04 MST" "Europe/Paris" .Now }} {{ .Now.Year }} {{ printf "%05.1f" 3.14159 }} {{ trim "  x  " }}</p>`,
		Text: "{{ $c := .Contact }}Hi {{ $c.FirstName }} {{ $.Campaign.ID }} {{ .ViewInBrowserURL }}",
	})
}

func TestRenderPersonalizes(t *testing.T) {
	c := mustCompile(t, campaign.Template{
		Subject: `{{ .Contact.FirstName | default "there" | title }} at {{ .Attr "company" | default "your team" }}`,
		HTML:    "<p>x</p>",
		Text:    `{{ upper .Contact.LastName }}|{{ lower "ABC" }}|{{ trim "  t  " }}|{{ date "2006-01-02 15:04 MST" "America/New_York" .Now }}|{{ .Attr "seats" }}|{{ .Attr "missing" | default "none" }}|{{ date "2 Jan 2006" "" (.Attr "since") }}|{{ .Contact.FullName }}`,
	})
	tests := []struct {
		name        string
		contact     campaign.Contact
		wantSubject string
		wantText    string
	}{
		{"all data", campaign.Contact{Email: "a@example.com", FirstName: "ana maría", LastName: "lópez", Attributes: campaign.Attributes{"company": "Acme", "seats": float64(0), "since": "2024-03-05"}},
			"Ana María at Acme", "LÓPEZ|abc|t|2026-01-02 10:04 EST|0|none|5 Mar 2024|ana maría lópez"},
		{"fallbacks", campaign.Contact{Email: "b@example.com"},
			"There at your team", "|abc|t|2026-01-02 10:04 EST||none||"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := SampleInput()
			in.Contact, in.Delivery = tt.contact, 9
			m := mustRender(t, c, in)
			if m.Subject != tt.wantSubject {
				t.Errorf("Subject = %q, want %q", m.Subject, tt.wantSubject)
			}
			gotText, _, _ := strings.Cut(m.Text, "\n\n--\n")
			if gotText != tt.wantText {
				t.Errorf("Text = %q, want %q", gotText, tt.wantText)
			}
		})
	}
}

func TestRenderErrorForOneContactIsInvalidNotPanic(t *testing.T) {
	c := mustCompile(t, campaign.Template{Subject: "Hi", HTML: `<p>{{ date "2006" "" (.Attr "since") }}</p>`})
	in := SampleInput()
	in.Contact.Attributes = campaign.Attributes{"since": "last tuesday"}
	_, err := c.Render(in)
	want := []campaign.FieldError{{Field: "html", Line: 1, Column: 7, Message: `<date "2006" "" (.Attr "since")>: error calling date: "last tuesday" is not a date (2006-01-02 or RFC 3339)`}}
	if diff := cmp.Diff(want, fieldErrors(t, err)); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestSubjectNeverHoldsLineBreaks(t *testing.T) {
	c := mustCompile(t, campaign.Template{Subject: "Hi {{ .Contact.FirstName }}!", HTML: "<p>x</p>"})
	in := SampleInput()
	in.Contact.FirstName = "Ana\r\nBcc: evil@example.com\x00"
	if got, want := mustRender(t, c, in).Subject, "Hi Ana Bcc: evil@example.com !"; got != want {
		t.Errorf("Subject = %q, want %q", got, want)
	}
}

func TestHTMLEscapesContactData(t *testing.T) {
	c := mustCompile(t, campaign.Template{Subject: "Hi", HTML: `<p title="{{ .Contact.FirstName }}">{{ .Contact.LastName }}</p><a href="{{ .Attr "site" }}">site</a>`})
	in := SampleInput()
	in.Contact.FirstName = `"><script>alert(1)</script>`
	in.Contact.LastName = `<script>alert(2)</script>`
	in.Contact.Attributes = campaign.Attributes{"site": "javascript:alert(3)"}
	m := mustRender(t, c, in)
	for _, bad := range []string{"<script>", `"><script`, "javascript:"} {
		if strings.Contains(m.HTML, bad) {
			t.Errorf("HTML contains %q:\n%s", bad, m.HTML)
		}
	}
	for _, want := range []string{`title="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"`, `&lt;script&gt;alert(2)&lt;/script&gt;`, `href="#ZgotmplZ"`} {
		if !strings.Contains(m.HTML, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
}

func TestRenderRefusesOutputPastTheLimit(t *testing.T) {
	c, err := Compile(campaign.Template{Name: "t", Subject: "Hi", HTML: `<p>{{ .Attr "bio" }}{{ .Attr "bio" }}</p>`},
		Options{PublicURL: publicURL, Codec: testCodec(t), MaxOutput: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	in := SampleInput()
	in.Contact.Attributes = campaign.Attributes{"bio": strings.Repeat("x", 2000)}
	if _, err := c.Render(in); err != nil {
		t.Fatalf("4 KB of output under an 8 KB limit: %v", err)
	}
	in.Contact.Attributes["bio"] = strings.Repeat("x", 6000)
	fe := fieldErrors(t, mustFail(t, c, in))
	if len(fe) != 1 || fe[0].Field != "html" || fe[0].Message != ErrTooLarge.Error() {
		t.Errorf("details = %+v, want one html error %q", fe, ErrTooLarge)
	}
}

func mustFail(tb testing.TB, c *Compiled, in Input) error {
	tb.Helper()
	_, err := c.Render(in)
	if err == nil {
		tb.Fatal("Render succeeded, want an error")
	}
	return err
}

func TestBoundedWriterStopsPastTheDeadline(t *testing.T) {
	w := &boundedWriter{deadline: time.Now().Add(-time.Second)}
	w.reset(1<<20, 1<<10)
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = w.Write([]byte("x"))
	}
	if !errors.Is(err, ErrTimeout) {
		t.Errorf("writes after the deadline: err = %v, want ErrTimeout", err)
	}
}

func TestPrintfRefusesHugeWidths(t *testing.T) {
	for _, f := range []string{"%0999999999d", "%.1000f", "%*d", "%[1]*d"} {
		if _, err := boundedPrintf(f, 1, 2); err == nil {
			t.Errorf("printf %q accepted", f)
		}
	}
	if got, err := boundedPrintf("%05.1f|%-3s|%%", 3.14159, "a"); err != nil || got != "003.1|a  |%" {
		t.Errorf("printf of small widths = %q, %v", got, err)
	}
}

func TestSplitLayoutRendersLikeTheWholeLayout(t *testing.T) {
	c := mustCompile(t, campaign.Template{
		Subject: "Hi {{ .Contact.FirstName }}", Preheader: "{{ .Campaign.Name }}",
		HTML: `<p>Hi {{ .Contact.FirstName }}, <a href="https://example.com/p?e={{ .Contact.Email }}">see</a> {{ .UnsubscribeURL }}</p>`,
	})
	if c.split == nil {
		t.Fatal("the default layout is not split: every render executes the whole footer")
	}
	split := c.split
	senders := []campaign.Sender{
		SampleInput().Sender,
		{CompanyName: `<script>alert("x")</script> & Co +1`, PostalAddress: "Rue de l'Église 3\n\x00 1000 Bruxelles", FromEmail: "a@example.com"},
		{CompanyName: "Funnel " + split.sentinelU, PostalAddress: "", FromEmail: "a@example.com"},
		SampleInput().Sender, // back to the first: the cache must follow
	}
	for i, s := range senders {
		in := SampleInput()
		in.Sender, in.Delivery = s, int64(1000+i)
		c.split = nil
		whole := mustRender(t, c, in)
		c.split = split
		parts := mustRender(t, c, in)
		if diff := cmp.Diff(whole, parts); diff != "" {
			t.Errorf("sender %d: split layout renders differently (-whole +split):\n%s", i, diff)
		}
	}
}

func TestConcurrentRendersMatchSequentialOnes(t *testing.T) {
	c := mustCompile(t, campaign.Template{Subject: "Hi {{ .Contact.FirstName }}", HTML: benchHTML()})
	inputs := make([]Input, 40)
	want := make([]*Message, len(inputs))
	for i := range inputs {
		inputs[i] = SampleInput()
		inputs[i].Delivery = int64(i + 1)
		inputs[i].Contact.FirstName = strings.Repeat("é", i%3) + "Ana"
		inputs[i].Sender.CompanyName = []string{"Example Co", "Other & Co"}[i%2]
		want[i] = mustRender(t, c, inputs[i])
	}
	errs := make(chan string, 8*len(inputs))
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for k := range inputs {
				i := (k + g*5) % len(inputs)
				got, err := c.Render(inputs[i])
				if err != nil {
					errs <- err.Error()
				} else if diff := cmp.Diff(want[i], got); diff != "" {
					errs <- diff
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
	close(errs)
	for e := range errs {
		t.Fatalf("a concurrent render differs from the sequential one: %s", e)
	}
}
