package templates

import (
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	texttemplate "text/template"
	"text/template/parse"
	"time"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/token"
)

//go:embed layouts/*.html
var layouts embed.FS

// Defaults for Options.
const (
	DefaultMaxOutput = 2 << 20 // bytes per rendered HTML or text part
	DefaultTimeout   = time.Second
	maxSubjectOutput = 2000 // bytes of rendered subject or preheader
)

// URL paths under Options.PublicURL that rendered messages point at. The
// tracking endpoints serve them; each is followed by a token.
const (
	PathOpen        = "/t/o/" // token.Open
	PathClick       = "/t/c/" // token.Click
	PathUnsubscribe = "/u/"   // token.Unsubscribe
	PathView        = "/v/"   // token.View
)

// Options configure Compile.
type Options struct {
	// PublicURL is the absolute http(s) base URL of the tracking endpoints,
	// such as "https://t.example.com" (FUNNEL_PUBLIC_URL).
	PublicURL string
	// Codec signs the tokens in links; required.
	Codec *token.Codec
	// MaxOutput caps each rendered part in bytes; 0 means DefaultMaxOutput.
	MaxOutput int
	// Timeout caps one Render; 0 means DefaultTimeout.
	Timeout time.Duration
}

// Compiled is a parsed and checked template, ready to render many times.
// It is safe for concurrent use.
type Compiled struct {
	opts       Options
	subject    *texttemplate.Template
	preheader  *texttemplate.Template // nil when the template has none
	text       *texttemplate.Template // nil: the text part comes from the HTML
	html       *htmltemplate.Template // the entry: layout or content
	split      *splitLayout           // the layout cut at the content, or nil
	textFooter bool                   // add the footer to an authored text part
	zones      *zoneCache
	sources    map[string]string // field -> source, to place render errors
	constLines map[string]string // field -> rendering of a subject or preheader without actions
	urls       sync.Map          // URL -> redirectable (bool), see redirectable
	urlCount   atomic.Int32
	states     sync.Pool                 // of *renderState
	postal     atomic.Pointer[[2]string] // the last postal address and its one-line form
}

// Compile parses t and checks everything that can be checked before a
// contact is known: syntax, functions, fields, forbidden actions, the
// unsubscribe link, and errors that show when rendering sample data. A bad
// template yields an EINVALID *campaign.Error whose details name the field
// ("subject", "preheader", "html", "text"), line and column of each
// problem. Bad opts yield a plain error.
func Compile(t campaign.Template, opts Options) (*Compiled, error) {
	if err := checkOptions(&opts); err != nil {
		return nil, err
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	c := &Compiled{opts: opts, zones: &zoneCache{}, sources: map[string]string{
		"subject": t.Subject, "preheader": t.Preheader, "text": t.Text, "html": t.HTML,
	}}
	c.states.New = func() any { return new(renderState) }
	funcs := funcMap(c.zones)
	var errs []campaign.FieldError
	add := func(fe []campaign.FieldError) { errs = append(errs, fe...) }

	var fe []campaign.FieldError
	c.subject, _, fe = parseText("subject", t.Subject, funcs)
	add(fe)
	if strings.TrimSpace(t.Preheader) != "" {
		c.preheader, _, fe = parseText("preheader", t.Preheader, funcs)
		add(fe)
	}
	if strings.TrimSpace(t.Text) != "" {
		c.text, _, fe = parseText("text", t.Text, funcs)
		add(fe)
	}
	layout := t.LayoutName()
	c.textFooter = layout == campaign.LayoutDefault
	var unsubscribe bool
	c.html, unsubscribe, fe = parseHTML(t.HTML, layout, funcs)
	add(fe)
	if len(errs) == 0 && layout == campaign.LayoutNone && !unsubscribe {
		errs = append(errs, campaign.FieldError{Field: "html", Message: `no unsubscribe link: add <a href="{{ .UnsubscribeURL }}">Unsubscribe</a> or use the default layout`})
	}
	if len(errs) > 0 {
		return nil, campaign.Invalid("invalid template", errs...)
	}
	c.constLines = map[string]string{}
	for field, t := range map[string]*texttemplate.Template{"subject": c.subject, "preheader": c.preheader} {
		if text, ok := constantText(t); ok && len(text) <= maxSubjectOutput {
			c.constLines[field] = oneLineHeader([]byte(text))
		}
	}
	// Running the template once finds what parsing cannot: html/template's
	// context errors, wrong argument counts, bad date layouts or zones.
	sample, err := c.Render(SampleInput())
	if err != nil {
		return nil, err
	}
	if layout != campaign.LayoutNone {
		c.split = newSplitLayout(layoutSource(layout), t.HTML, funcs)
		c.keepSplit(sample.HTML)
	}
	return c, nil
}

func checkOptions(o *Options) error {
	u, err := url.Parse(o.PublicURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("templates: public URL %q must be an absolute http(s) URL", o.PublicURL)
	}
	o.PublicURL = strings.TrimRight(o.PublicURL, "/")
	if o.Codec == nil {
		return errors.New("templates: a token codec is required")
	}
	if o.MaxOutput <= 0 {
		o.MaxOutput = DefaultMaxOutput
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return nil
}

// constantText returns the output of t when it has no actions: a
// preheader usually has none, and executing it would cost as much as a
// subject that does.
func constantText(t *texttemplate.Template) (string, bool) {
	if t == nil || t.Tree == nil || t.Tree.Root == nil {
		return "", false
	}
	var b strings.Builder
	for _, n := range t.Tree.Root.Nodes {
		text, ok := n.(*parse.TextNode)
		if !ok {
			return "", false
		}
		b.Write(text.Text)
	}
	return b.String(), true
}

// layoutSource returns an embedded layout.
func layoutSource(name string) string {
	b, err := layouts.ReadFile("layouts/" + name + ".html")
	if err != nil {
		panic(fmt.Sprintf("templates: embedded layout %q: %v", name, err)) // Validate admits only embedded names
	}
	return string(b)
}

// parseText parses and checks one text/template source.
func parseText(field, src string, funcs map[string]any) (*texttemplate.Template, bool, []campaign.FieldError) {
	tt, err := texttemplate.New(field).Funcs(funcs).Parse(src)
	if err != nil {
		return nil, false, []campaign.FieldError{fieldError(field, src, err)}
	}
	if fe := checkDefines(field, src, len(tt.Templates())); fe != nil {
		return nil, false, fe
	}
	c := &checker{field: field, src: src}
	c.walk(tt.Tree.Root, dataType)
	return tt, c.usesUnsubscribe, c.errs
}

var defineAction = regexp.MustCompile(`\{\{-?\s*(define|block)\b`)

// checkDefines refuses sources that define templates: a definition could
// replace the layout, and template calls are how a render could be made to
// take exponential time.
func checkDefines(field, src string, templates int) []campaign.FieldError {
	if templates <= 1 && !defineAction.MatchString(src) {
		return nil
	}
	line, col := 1, 1
	if loc := defineAction.FindStringIndex(src); loc != nil {
		line, col = position(src, loc[0])
	}
	return []campaign.FieldError{{Field: field, Line: line, Column: col, Message: "{{define}} and {{block}} are not supported"}}
}

// parseHTML checks the content source as text (for field and action
// checks and exact positions), then builds the html/template set: the
// layout, if any, calls {{template "html" .}}.
func parseHTML(src, layout string, funcs map[string]any) (*htmltemplate.Template, bool, []campaign.FieldError) {
	_, unsubscribe, fe := parseText("html", src, funcs)
	if len(fe) > 0 {
		return nil, false, fe
	}
	var set *htmltemplate.Template
	if layout == campaign.LayoutNone {
		set = htmltemplate.New("html").Funcs(funcs)
	} else {
		set = htmltemplate.Must(htmltemplate.New("layout").Funcs(funcs).Parse(layoutSource(layout)))
		set = set.New("html")
	}
	if _, err := set.Parse(src); err != nil {
		return nil, false, []campaign.FieldError{fieldError("html", src, err)}
	}
	if layout != campaign.LayoutNone {
		set = set.Lookup("layout")
	}
	return set, unsubscribe, nil
}
