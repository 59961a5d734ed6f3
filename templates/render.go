package templates

import (
	"errors"
	"slices"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode"
	"unsafe"

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
	s := c.states.Get().(*renderState)
	defer c.putState(s)
	l := &s.l
	l.reset(c, in.Delivery)
	d := &s.d
	c.fillData(d, &in, l.unsubscribe, l.view)
	w := &s.w
	w.deadline, w.writes = time.Now().Add(c.opts.Timeout), 0
	var err error
	if d.Subject, err = c.execLine("subject", c.subject, d, w); err != nil {
		return nil, err
	}
	if d.Preheader, err = c.execLine("preheader", c.preheader, d, w); err != nil {
		return nil, err
	}
	w.reset(c.opts.MaxOutput, c.opts.MaxOutput+8<<10)
	if err := c.execHTML(w, d); err != nil {
		return nil, c.renderError("html", err)
	}
	// html is a view of w.buf, not a copy: nothing below writes to w.buf,
	// the authored text renders into its own buffer, and every string
	// that outlives the render (Links) is copied out of it.
	html := unsafe.String(unsafe.SliceData(w.buf), len(w.buf))
	text, err := c.renderText(d, html, s)
	if err != nil {
		return nil, err
	}
	m := &Message{Subject: d.Subject, UnsubscribeURL: l.unsubscribe, ViewInBrowserURL: l.view, Preview: in.Delivery == token.PreviewDelivery}
	// The HTML goes first: its links take the low indexes. Each part is
	// written into new memory that becomes the string without a copy;
	// nothing writes to it afterwards.
	out := l.appendHTML(make([]byte, 0, len(html)+len(html)/16+1024), html)
	m.HTML = unsafe.String(unsafe.SliceData(out), len(out))
	out = l.appendText(make([]byte, 0, len(text)+len(text)/16+512), text)
	m.Text = unsafe.String(unsafe.SliceData(out), len(out))
	if len(l.links) > 0 {
		m.Links = slices.Clone(l.links)
	}
	return m, nil
}

// execHTML renders the HTML part into w: the whole layout, or its head
// and content and then the footer kept for the sender.
func (c *Compiled) execHTML(w *boundedWriter, d *Data) error {
	if c.split == nil {
		return c.html.Execute(w, d)
	}
	if err := c.split.head.Execute(w, d); err != nil {
		return err
	}
	b, err := c.split.appendFooter(w.buf, d, c.opts.PublicURL)
	if err != nil {
		return err
	}
	if w.buf = b; len(b) > w.max {
		return ErrTooLarge // as the whole layout would have failed
	}
	return nil
}

// renderState is the memory one Render works in. It is pooled per
// Compiled, so that a render allocates little more than the strings it
// returns.
type renderState struct {
	w    boundedWriter // subject, preheader and HTML output
	tw   boundedWriter // authored text output
	text textWriter    // the text part generated from the HTML
	l    linker
	d    Data
}

// maxPooledState is the largest buffer a pooled renderState keeps: a rare
// huge message should not pin its memory.
const maxPooledState = 1 << 20

func (c *Compiled) putState(s *renderState) {
	s.d = Data{} // drop the contact
	if cap(s.w.buf) > maxPooledState || cap(s.tw.buf) > maxPooledState || cap(s.text.b) > maxPooledState {
		return
	}
	c.states.Put(s)
}

// renderText renders the authored text part, or converts the rendered
// HTML. The result lives in s until the next render.
func (c *Compiled) renderText(d *Data, html string, s *renderState) ([]byte, error) {
	if c.text == nil {
		return s.text.convert(html), nil
	}
	w := &s.tw
	w.deadline, w.writes = s.w.deadline, s.w.writes
	w.reset(c.opts.MaxOutput, c.opts.MaxOutput)
	if err := c.text.Execute(w, d); err != nil {
		return nil, c.renderError("text", err)
	}
	if !c.textFooter {
		return w.buf, nil
	}
	b := append(w.buf, "\n\n--\n"...)
	b = append(b, d.Sender.CompanyName...)
	b = append(b, '\n')
	b = append(b, d.Sender.PostalAddress...)
	b = append(b, "\n\nUnsubscribe: "...)
	b = append(b, d.UnsubscribeURL...)
	b = append(b, "\nView in browser: "...)
	b = append(b, d.ViewInBrowserURL...)
	w.buf = append(b, '\n')
	return w.buf, nil
}

// execLine renders a one-line part (subject, preheader). Control
// characters become spaces: a subject is a header, and a line break in it
// must never start another header.
func (c *Compiled) execLine(field string, t *texttemplate.Template, d *Data, w *boundedWriter) (string, error) {
	if t == nil {
		return "", nil
	}
	if text, ok := c.constLines[field]; ok {
		return text, nil
	}
	w.reset(maxSubjectOutput, maxSubjectOutput)
	if err := t.Execute(w, d); err != nil {
		return "", c.renderError(field, err)
	}
	return oneLineHeader(w.buf), nil
}

func oneLineHeader(b []byte) string {
	if plainLine(b) {
		return string(b)
	}
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

// plainLine reports whether b is printable ASCII with single spaces
// between words, which oneLineHeader would return unchanged.
func plainLine(b []byte) bool {
	if len(b) > 0 && (b[0] == ' ' || b[len(b)-1] == ' ') {
		return false
	}
	for i, c := range b {
		if c < ' ' || c > '~' || c == ' ' && b[i-1] == ' ' {
			return false
		}
	}
	return true
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
