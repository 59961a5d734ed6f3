package campaign

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on template sources. They bound the work of parsing and rendering
// one template for every recipient of a campaign.
const (
	MaxTemplateName      = 200
	MaxTemplateSubject   = 1000      // source; the rendered subject is one header line
	MaxTemplatePreheader = 1000      // source
	MaxTemplateHTML      = 512 << 10 // 512 KiB of source
	MaxTemplateText      = 256 << 10 // 256 KiB of source
	MaxSenderField       = 500       // company name, postal address, from name
)

// Built-in layouts. Layout names any other value is refused.
const (
	// LayoutDefault wraps the HTML in Funnel's layout: a hidden preheader and
	// a footer with the sender's company, postal address (CAN-SPAM), the
	// unsubscribe link and a view-in-browser link.
	LayoutDefault = "default"
	// LayoutNone uses the HTML as the whole document. The HTML itself must
	// then contain the unsubscribe link.
	LayoutNone = "none"
)

// Template is a reusable email: a subject, an HTML body and an optional
// text body, each a Go template source rendered once per contact.
//
// Subject, Preheader and Text are text/template sources; HTML is an
// html/template source. An empty Text means the text part is generated from
// the rendered HTML. Layout names a built-in layout (LayoutDefault,
// LayoutNone); empty means LayoutDefault. Layouts are names rather than
// sources so that the footer the law requires cannot be edited away by
// mistake; custom layouts would be their own resource.
type Template struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Subject   string    `json:"subject"`
	HTML      string    `json:"html"`
	Text      string    `json:"text"`
	Layout    string    `json:"layout"`
	Preheader string    `json:"preheader"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// LayoutName returns the layout to use: Layout, or LayoutDefault when empty.
func (t *Template) LayoutName() string {
	if t.Layout == "" {
		return LayoutDefault
	}
	return t.Layout
}

// Validate checks the fields that do not need a template parser: a name, a
// subject and an HTML body within their size limits, and a known layout.
// It returns an EINVALID *Error naming every invalid field. Parsing the
// sources is the templates package's job.
func (t *Template) Validate() error {
	var details []FieldError
	add := func(field, format string, args ...any) {
		details = append(details, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	switch n := strings.TrimSpace(t.Name); {
	case n == "":
		add("name", "is required")
	case utf8.RuneCountInString(n) > MaxTemplateName:
		add("name", "longer than %d characters", MaxTemplateName)
	}
	switch {
	case strings.TrimSpace(t.Subject) == "":
		add("subject", "is required")
	case len(t.Subject) > MaxTemplateSubject:
		add("subject", "longer than %d bytes", MaxTemplateSubject)
	}
	switch {
	case strings.TrimSpace(t.HTML) == "":
		add("html", "is required")
	case len(t.HTML) > MaxTemplateHTML:
		add("html", "longer than %d bytes", MaxTemplateHTML)
	}
	if len(t.Text) > MaxTemplateText {
		add("text", "longer than %d bytes", MaxTemplateText)
	}
	if len(t.Preheader) > MaxTemplatePreheader {
		add("preheader", "longer than %d bytes", MaxTemplatePreheader)
	}
	if l := t.LayoutName(); l != LayoutDefault && l != LayoutNone {
		add("layout", "%q is not one of %s, %s", l, LayoutDefault, LayoutNone)
	}
	for _, f := range []struct{ name, v string }{{"name", t.Name}, {"subject", t.Subject}, {"html", t.HTML}, {"text", t.Text}, {"preheader", t.Preheader}} {
		if !utf8.ValidString(f.v) {
			add(f.name, "is not valid UTF-8")
		}
	}
	if len(details) > 0 {
		return Invalid("invalid template", details...)
	}
	return nil
}

// Sender is who a campaign is from: the From and Reply-To of its messages
// and the company and postal address that the default layout prints in
// every footer, as CAN-SPAM requires.
type Sender struct {
	CompanyName   string `json:"company_name"`
	PostalAddress string `json:"postal_address"`
	FromName      string `json:"from_name"`
	FromEmail     string `json:"from_email"`
	ReplyTo       string `json:"reply_to"`
}

// Validate checks that the sender can appear in a message: a valid From
// address, an optional valid Reply-To, a company name and a postal address,
// and no line breaks in any field (they would end a header). It returns an
// EINVALID *Error naming every invalid field.
func (s *Sender) Validate() error {
	var details []FieldError
	add := func(field, msg string) { details = append(details, FieldError{Field: field, Message: msg}) }
	if err := ValidateEmail(s.FromEmail); err != nil {
		add("from_email", err.Error())
	}
	if s.ReplyTo != "" {
		if err := ValidateEmail(s.ReplyTo); err != nil {
			add("reply_to", err.Error())
		}
	}
	if strings.TrimSpace(s.CompanyName) == "" {
		add("company_name", "is required")
	}
	if strings.TrimSpace(s.PostalAddress) == "" {
		add("postal_address", "is required: the law requires it in every campaign message")
	}
	for _, f := range []struct{ name, v string }{{"company_name", s.CompanyName}, {"from_name", s.FromName}, {"postal_address", s.PostalAddress}} {
		if utf8.RuneCountInString(f.v) > MaxSenderField {
			add(f.name, fmt.Sprintf("longer than %d characters", MaxSenderField))
		}
		if f.name != "postal_address" && strings.ContainsAny(f.v, "\r\n") {
			add(f.name, "must not contain line breaks")
		}
	}
	if len(details) > 0 {
		return Invalid("invalid sender", details...)
	}
	return nil
}
