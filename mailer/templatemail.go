package mailer

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/templates"
)

// TemplateMail checks, previews and test-sends templates: what the admin
// service needs of the template engine and the mailer together.
type TemplateMail struct {
	// Options are the template engine's options (public URL, token codec).
	Options templates.Options
	// Composer builds the MIME message.
	Composer *Composer
	// Sender carries test sends; nil refuses them.
	Sender *Sender
}

// Check compiles t and returns the EINVALID error, with line and column,
// that saving it must refuse.
func (m *TemplateMail) Check(t campaign.Template) error {
	_, err := templates.Compile(t, m.Options)
	return err
}

// Preview renders t for contact c (sample data when c is nil) from sender
// s, exactly as a campaign would send it but with links that record
// nothing. A template that fails for this contact is an EINVALID error
// with the reason, as the delivery would fail at send time.
func (m *TemplateMail) Preview(t campaign.Template, s campaign.Sender, c *campaign.Contact) (*campaign.Preview, error) {
	msg, err := m.build(t, s, c, "", false)
	if err != nil {
		return nil, err
	}
	return previewOf(msg.Raw)
}

// SendTest mails the preview of t for c to each address in to, marked as a
// test. It stops at the first failure and says which address failed.
func (m *TemplateMail) SendTest(ctx context.Context, t campaign.Template, s campaign.Sender, c *campaign.Contact, to []string) error {
	if m.Sender == nil {
		return campaign.Errorf(campaign.ECONFLICT, "no SMTP server is configured for test sends: set FUNNEL_SMTP_URL")
	}
	if err := s.Validate(); err != nil {
		return campaign.Errorf(campaign.ECONFLICT, "set the sender (PUT /api/v1/settings/sender) before a test send: %v", err)
	}
	for _, addr := range to {
		msg, err := m.build(t, s, c, campaign.NormalizeEmail(addr), true)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = m.Sender.Send(ctx, msg)
		cancel()
		if err != nil {
			var se *SendError
			if errors.As(err, &se) && se.Class() == Permanent {
				return campaign.Errorf(campaign.EINVALID, "the SMTP server refused the test message to %s: %v", addr, se)
			}
			return fmt.Errorf("send test message to %s: %w", addr, err)
		}
	}
	return nil
}

func (m *TemplateMail) build(t campaign.Template, s campaign.Sender, c *campaign.Contact, to string, test bool) (*Message, error) {
	compiled, err := templates.Compile(t, m.Options)
	if err != nil {
		return nil, err
	}
	in := templates.SampleInput()
	if s.FromEmail != "" || test {
		in.Sender = s // a preview before the sender is set shows the sample sender
	}
	s = in.Sender
	in.Campaign = templates.CampaignData{Name: t.Name}
	in.Now = time.Now()
	if c != nil {
		in.Contact = *c
	}
	rendered, err := compiled.Render(in)
	if err != nil {
		return nil, renderFailed(t.Name, in.Contact.Email, err)
	}
	if to == "" {
		to = in.Contact.Email
	}
	return m.Composer.Compose(Draft{
		Sender: s, ToEmail: to, ToName: in.Contact.FullName(), Subject: rendered.Subject,
		HTML: rendered.HTML, Text: rendered.Text, UnsubscribeURL: rendered.UnsubscribeURL, Test: test,
	})
}

// renderFailed is the EINVALID error of a template that cannot be
// rendered for the contact with address email. Its message says why, as
// the preview form shows only the message; its details keep the field,
// line and column the template engine found, for the API.
func renderFailed(name, email string, err error) error {
	e := campaign.Errorf(campaign.EINVALID, "template %q cannot be rendered for %s: %v", name, email, err)
	var te *campaign.Error
	if errors.As(err, &te) {
		e.Details = te.Details
	}
	return e
}

// previewOf splits a raw message into its decoded headers and parts.
func previewOf(raw []byte) (*campaign.Preview, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parse composed message: %w", err)
	}
	p := &campaign.Preview{Size: len(raw)}
	dec := new(mime.WordDecoder)
	for _, h := range headerOrder(raw) {
		for _, v := range msg.Header[h] {
			if d, err := dec.DecodeHeader(v); err == nil {
				v = d
			}
			p.Headers = append(p.Headers, campaign.Header{Name: h, Value: v})
		}
	}
	p.Subject, _ = dec.DecodeHeader(msg.Header.Get("Subject"))
	parts, err := decodeParts(msg)
	if err != nil {
		return nil, err
	}
	p.Text, p.HTML = parts["text/plain"], parts["text/html"]
	return p, nil
}

// headerOrder lists the header names of raw in the order they appear,
// each once, so that a preview shows them as a mail client's "show
// original" would.
func headerOrder(raw []byte) []string {
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(raw)
	}
	var names []string
	seen := map[string]bool{}
	for _, line := range bytes.Split(raw[:end], []byte("\r\n")) {
		if len(line) == 0 || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		if i := bytes.IndexByte(line, ':'); i > 0 {
			name := textproto.CanonicalMIMEHeaderKey(string(line[:i]))
			if !seen[name] {
				seen[name] = true
				names = append(names, name)
			}
		}
	}
	return names
}

// decodeParts returns the decoded text parts of a message by media type,
// walking nested multiparts.
func decodeParts(msg *mail.Message) (map[string]string, error) {
	parts := map[string]string{}
	var walk func(h textproto.MIMEHeader, body io.Reader) error
	walk = func(h textproto.MIMEHeader, body io.Reader) error {
		mediaType, params, err := mime.ParseMediaType(h.Get("Content-Type"))
		if err != nil {
			return fmt.Errorf("parse Content-Type: %w", err)
		}
		if strings.HasPrefix(mediaType, "multipart/") {
			mr := multipart.NewReader(body, params["boundary"])
			for {
				p, err := mr.NextRawPart()
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return err
				}
				if err := walk(p.Header, p); err != nil {
					return err
				}
			}
		}
		var r io.Reader = body
		switch strings.ToLower(h.Get("Content-Transfer-Encoding")) {
		case "quoted-printable":
			r = quotedprintable.NewReader(body)
		case "base64":
			r = base64.NewDecoder(base64.StdEncoding, body)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return fmt.Errorf("decode %s part: %w", mediaType, err)
		}
		parts[mediaType] = string(b)
		return nil
	}
	return parts, walk(textproto.MIMEHeader(msg.Header), msg.Body)
}
