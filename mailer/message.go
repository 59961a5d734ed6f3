// Package mailer builds campaign messages as MIME with go-mail, signs them
// with DKIM, and sends test messages over SMTP.
//
// Compose returns the final bytes of a message (DKIM-Signature included)
// and its envelope, so any SMTP connection can carry them unchanged.
package mailer

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/token"
	"github.com/wneessen/go-mail"
)

// Headers Funnel adds so that bounces, complaints and replies can be
// matched to a campaign and a delivery.
const (
	HeaderCampaign = "X-Funnel-Campaign"
	HeaderDelivery = "X-Funnel-Delivery"
	HeaderTest     = "X-Funnel-Test"
)

// ComposerConfig configures a Composer.
type ComposerConfig struct {
	// BounceDomain receives bounces at bounces+{token}@BounceDomain (the
	// VERP envelope sender) and unsubscribe mails at
	// unsubscribe+{token}@BounceDomain. Required.
	BounceDomain string
	// FeedbackSender is the sender part of Feedback-ID
	// ("{campaign}:{type}:{FeedbackSender}"); empty means "funnel".
	FeedbackSender string
	// DKIM holds one key per signing domain. A message is signed with the
	// key of its From domain or of the closest parent domain, and sent
	// unsigned when there is none.
	DKIM []DKIMKey
	// Now and Rand replace the clock and the random source, for tests.
	Now  func() time.Time
	Rand io.Reader
}

// Composer builds messages. It is safe for concurrent use.
type Composer struct {
	cfg   ComposerConfig
	codec *token.Codec
	keys  map[string]*DKIMKey
}

// NewComposer returns a Composer that signs bounce and unsubscribe tokens
// with codec.
func NewComposer(cfg ComposerConfig, codec *token.Codec) (*Composer, error) {
	if codec == nil {
		return nil, errors.New("mailer: a token codec is required")
	}
	if err := campaign.ValidateEmail("bounces@" + cfg.BounceDomain); err != nil {
		return nil, fmt.Errorf("mailer: bounce domain %q is not a domain", cfg.BounceDomain)
	}
	if cfg.FeedbackSender == "" {
		cfg.FeedbackSender = "funnel"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	c := &Composer{cfg: cfg, codec: codec, keys: map[string]*DKIMKey{}}
	for i := range cfg.DKIM {
		k := &cfg.DKIM[i]
		if k.Domain == "" || k.Selector == "" || k.Signer == nil {
			return nil, fmt.Errorf("mailer: DKIM key %d needs a domain, a selector and a signer", i)
		}
		c.keys[strings.ToLower(k.Domain)] = k
	}
	return c, nil
}

// Draft is the content and addressing of one message.
type Draft struct {
	Sender  campaign.Sender
	ToEmail string
	ToName  string
	Subject string
	HTML    string
	Text    string
	// UnsubscribeURL is the https one-click unsubscribe URL
	// (templates.Message.UnsubscribeURL); required.
	UnsubscribeURL string
	CampaignID     int64
	// DeliveryID is 0 for previews and test sends.
	DeliveryID int64
	// Test marks a test send: "[Test] " before the subject and an
	// X-Funnel-Test header.
	Test bool
}

// Message is a message ready for SMTP: the bytes for DATA and the
// envelope.
type Message struct {
	Raw       []byte   // the whole message, CRLF line ends, DKIM-Signature first when signed
	From      string   // MAIL FROM: the VERP bounce address
	To        []string // RCPT TO
	MessageID string   // without angle brackets
}

// Compose builds the MIME message for d: multipart/alternative with the
// text and HTML parts in UTF-8, From with name, Reply-To, an encoded
// subject, Date, a Message-ID on the From domain that names the delivery,
// List-Unsubscribe with List-Unsubscribe-Post (RFC 8058), Feedback-ID,
// Precedence: bulk, the X-Funnel headers, and a DKIM signature when a key
// covers the From domain. Names and the subject may hold any text: line
// breaks never start a header. Invalid addresses are an EINVALID error.
func (c *Composer) Compose(d Draft) (*Message, error) {
	if err := campaign.ValidateEmail(d.Sender.FromEmail); err != nil {
		return nil, campaign.Invalid("cannot build message", campaign.FieldError{Field: "from_email", Message: err.Error()})
	}
	if err := campaign.ValidateEmail(d.ToEmail); err != nil {
		return nil, campaign.Invalid("cannot build message", campaign.FieldError{Field: "to", Message: err.Error()})
	}
	domain := d.Sender.FromEmail[strings.LastIndexByte(d.Sender.FromEmail, '@')+1:]
	m, id, err := c.newMsg(d, domain)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Grow(len(d.HTML)*11/10 + len(d.Text)*11/10 + 2048)
	if _, err := m.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("write message %s: %w", id, err)
	}
	raw := buf.Bytes()
	if key := c.keyFor(domain); key != nil {
		if raw, err = key.sign(raw); err != nil {
			return nil, fmt.Errorf("dkim sign message %s: %w", id, err)
		}
	}
	bounce := "bounces+" + c.codec.EncodeAddress(token.Token{Kind: token.Bounce, Delivery: d.DeliveryID}) + "@" + c.cfg.BounceDomain
	return &Message{Raw: raw, From: bounce, To: []string{d.ToEmail}, MessageID: id}, nil
}

// newMsg sets every header and part on a go-mail message.
func (c *Composer) newMsg(d Draft, domain string) (*mail.Msg, string, error) {
	boundary, nonce, err := c.randoms()
	if err != nil {
		return nil, "", err
	}
	m := mail.NewMsg(mail.WithNoDefaultUserAgent(), mail.WithBoundary(boundary))
	if err := m.FromFormat(headerText(d.Sender.FromName), d.Sender.FromEmail); err != nil {
		return nil, "", fmt.Errorf("from: %w", err)
	}
	if err := m.AddToFormat(headerText(d.ToName), d.ToEmail); err != nil {
		return nil, "", fmt.Errorf("to: %w", err)
	}
	if d.Sender.ReplyTo != "" {
		if err := m.ReplyTo(d.Sender.ReplyTo); err != nil {
			return nil, "", fmt.Errorf("reply-to: %w", err)
		}
	}
	subject, kind := headerText(d.Subject), "campaign"
	if d.Test {
		subject, kind = "[Test] "+subject, "test"
		m.SetGenHeader(HeaderTest, "yes")
	}
	m.Subject(subject)
	m.SetDateWithValue(c.cfg.Now())
	id := fmt.Sprintf("d%d.c%d.%s@%s", d.DeliveryID, d.CampaignID, nonce, domain)
	m.SetMessageIDWithValue(id)
	mailto := "mailto:unsubscribe+" + c.codec.EncodeAddress(token.Token{Kind: token.Unsubscribe, Delivery: d.DeliveryID}) + "@" + c.cfg.BounceDomain + "?subject=unsubscribe"
	if err := m.SetListUnsubscribeOneClick(d.UnsubscribeURL, mailto); err != nil {
		return nil, "", campaign.Invalid("cannot build message", campaign.FieldError{Field: "unsubscribe_url", Message: "must be an https URL"})
	}
	m.SetGenHeader("Feedback-ID", strconv.FormatInt(d.CampaignID, 10)+":"+kind+":"+c.cfg.FeedbackSender)
	m.SetBulk()
	m.SetGenHeader(HeaderCampaign, strconv.FormatInt(d.CampaignID, 10))
	m.SetGenHeader(HeaderDelivery, strconv.FormatInt(d.DeliveryID, 10))
	m.SetBodyString(mail.TypeTextPlain, d.Text)
	m.AddAlternativeString(mail.TypeTextHTML, d.HTML)
	return m, id, nil
}

var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// randoms returns a MIME boundary and a Message-ID nonce.
func (c *Composer) randoms() (boundary, nonce string, err error) {
	var b [26]byte
	if _, err := io.ReadFull(c.cfg.Rand, b[:]); err != nil {
		return "", "", fmt.Errorf("read random bytes: %w", err)
	}
	return "funnel-" + lowerBase32.EncodeToString(b[:16]), lowerBase32.EncodeToString(b[16:]), nil
}

// headerText makes text safe for a header: control characters (CR, LF,
// NUL, ...) become spaces and runs of spaces collapse. go-mail encodes
// what remains.
func headerText(s string) string {
	clean := true
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			clean = false
			break
		}
	}
	if clean && !strings.Contains(s, "  ") {
		return strings.TrimSpace(s)
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}
