package templates

import (
	"errors"
	"fmt"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/token"
)

// Input is one contact to render a template for.
type Input struct {
	Contact  campaign.Contact
	Campaign CampaignData
	Sender   campaign.Sender
	// Delivery is the delivery the tokens name. 0 renders a preview whose
	// links, pixel and unsubscribe URL record nothing.
	Delivery int64
	// Now is the time of rendering (.Now); zero means time.Now().
	Now time.Time
}

// Message is a rendered template: what a mailer needs to build MIME.
type Message struct {
	Subject          string // one line, no control characters
	HTML             string // with tracked links, honeypot link and open pixel
	Text             string // with tracked links
	UnsubscribeURL   string // the https one-click URL (List-Unsubscribe)
	ViewInBrowserURL string
	Links            []Link // the tracked links, by Index
	Preview          bool   // rendered with preview tokens
}

// Link is one distinct tracked URL of a message.
type Link struct {
	Index  int    // the link index in its click token, from 1
	URL    string // the URL as rendered, HTML entities decoded
	Intent string // the data-funnel-intent of its first tagged <a>, or ""
}

// Errors of a render that ran out of room or time. They come wrapped in an
// EINVALID *campaign.Error that names the part.
var (
	ErrTooLarge = errors.New("rendered output exceeds the size limit")
	ErrTimeout  = errors.New("rendering took longer than the time limit")
)

// Render renders the template for one contact. An error means this
// contact's message cannot be built (for example a date attribute that is
// not a date); it is an EINVALID *campaign.Error naming the field, line
// and column, and other contacts may still render.
func (c *Compiled) Render(in Input) (*Message, error) {
	if in.Now.IsZero() {
		in.Now = time.Now()
	}
	l := c.newLinker(in.Delivery)
	d := newData(&in, l.unsubscribe, l.view)
	w := c.writers.Get().(*boundedWriter)
	defer c.writers.Put(w)
	w.deadline, w.writes = time.Now().Add(c.opts.Timeout), 0
	var err error
	if d.Subject, err = c.execLine("subject", c.subject, d, w); err != nil {
		return nil, err
	}
	if d.Preheader, err = c.execLine("preheader", c.preheader, d, w); err != nil {
		return nil, err
	}
	w.reset(c.opts.MaxOutput, c.opts.MaxOutput+8<<10)
	if err := c.html.Execute(w, d); err != nil {
		return nil, c.renderError("html", err)
	}
	html := string(w.buf)
	text, err := c.renderText(d, html, w)
	if err != nil {
		return nil, err
	}
	m := &Message{Subject: d.Subject, UnsubscribeURL: l.unsubscribe, ViewInBrowserURL: l.view, Preview: in.Delivery == token.PreviewDelivery}
	m.HTML = l.finishHTML(l.rewriteHTML(html))
	m.Text = l.rewriteText(text)
	m.Links = l.links
	return m, nil
}

// renderText renders the authored text part, or converts the rendered HTML.
func (c *Compiled) renderText(d *Data, html string, w *boundedWriter) (string, error) {
	if c.text == nil {
		return htmlToText(html), nil
	}
	w.reset(c.opts.MaxOutput, c.opts.MaxOutput)
	if err := c.text.Execute(w, d); err != nil {
		return "", c.renderError("text", err)
	}
	if !c.textFooter {
		return string(w.buf), nil
	}
	var b strings.Builder
	b.Grow(len(w.buf) + 256)
	b.Write(w.buf)
	fmt.Fprintf(&b, "\n\n--\n%s\n%s\n\nUnsubscribe: %s\nView in browser: %s\n",
		d.Sender.CompanyName, d.Sender.PostalAddress, d.UnsubscribeURL, d.ViewInBrowserURL)
	return b.String(), nil
}

// execLine renders a one-line part (subject, preheader). Control
// characters become spaces: a subject is a header, and a line break in it
// must never start another header.
func (c *Compiled) execLine(field string, t *texttemplate.Template, d *Data, w *boundedWriter) (string, error) {
	if t == nil {
		return "", nil
	}
	w.reset(maxSubjectOutput, maxSubjectOutput)
	if err := t.Execute(w, d); err != nil {
		return "", c.renderError(field, err)
	}
	return oneLineHeader(w.buf), nil
}

func oneLineHeader(b []byte) string {
	s := string(b)
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		s = strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return ' '
			}
			return r
		}, s)
	}
	return strings.Join(strings.Fields(s), " ")
}

func (c *Compiled) renderError(field string, err error) error {
	switch {
	case errors.Is(err, ErrTooLarge), errors.Is(err, ErrTimeout):
		return campaign.Invalid("template cannot be rendered", campaign.FieldError{Field: field, Message: err.Error()})
	}
	return campaign.Invalid("template cannot be rendered", fieldError(field, c.sources[field], err))
}

// boundedWriter collects output up to a size limit and fails once the
// render deadline has passed. html/template offers no context, so a
// failing writer is the one way to stop an execution from outside.
type boundedWriter struct {
	buf      []byte
	max      int
	deadline time.Time
	writes   int
}

// reset empties the buffer and sets its limit. Buffers are pooled per
// Compiled, so a render allocates only the strings it returns.
func (w *boundedWriter) reset(limit, capacity int) {
	w.max = limit
	if cap(w.buf) < min(capacity, 32<<10) {
		w.buf = make([]byte, 0, min(capacity, 32<<10))
	}
	w.buf = w.buf[:0]
}

func (w *boundedWriter) Write(p []byte) (int, error) {
	if len(w.buf)+len(p) > w.max {
		return 0, ErrTooLarge
	}
	// Reading the clock on every write would cost more than most writes.
	if w.writes++; w.writes%32 == 0 && time.Now().After(w.deadline) {
		return 0, ErrTimeout
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}
