// Package mailer builds campaign messages as MIME, signs them with DKIM
// (go-msgauth), and sends test messages over SMTP (go-mail).
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
	"net"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/token"
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
	cfg         ComposerConfig
	codec       *token.Codec
	keys        map[string]*DKIMKey
	bufs        sync.Pool // of *[]byte: message and scratch buffers
	lastFrom    lastValid // the sender's addresses, the same for a whole campaign
	lastReplyTo lastValid
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
// text and HTML parts in UTF-8 and quoted-printable, From with name,
// Reply-To, an encoded subject, Date, a Message-ID on the From domain that
// names the delivery, List-Unsubscribe with List-Unsubscribe-Post (RFC
// 8058), Feedback-ID, Precedence: bulk, the X-Funnel headers, and a DKIM
// signature when a key covers the From domain. Names and the subject may
// hold any text: line breaks never start a header. Invalid addresses and
// an unsubscribe URL that is not https are an EINVALID error.
func (c *Composer) Compose(d Draft) (*Message, error) {
	// Writing into a new buffer of the expected size, rather than into a
	// pooled one and copying, saves a copy of the message.
	m, err := c.ComposeTo(make([]byte, 0, sizeHint(&d)), d)
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// sizeHint is the expected size of d's message: quoted-printable adds a
// few percent to mostly-ASCII bodies (soft line breaks, =3D in HTML
// attributes), the headers about 1 KB, a DKIM signature 0.5 KB. Bodies in
// other scripts grow more and make the buffer grow once.
func sizeHint(d *Draft) int {
	n := len(d.HTML) + len(d.Text)
	return n + n/12 + 2048
}

// ComposeTo is Compose for callers that reuse memory: it appends the
// message to dst, and the returned m.Raw is the extended slice (pass
// buf[:0] to have m.Raw hold just the message). m.Raw shares memory with
// dst, so dst may be reused only once m.Raw has been sent. Errors are
// those of Compose.
func (c *Composer) ComposeTo(dst []byte, d Draft) (Message, error) {
	if err := c.validFrom(d.Sender.FromEmail); err != nil {
		return Message{}, campaign.Invalid("cannot build message", campaign.FieldError{Field: "from_email", Message: err.Error()})
	}
	if err := campaign.ValidateEmail(d.ToEmail); err != nil {
		return Message{}, campaign.Invalid("cannot build message", campaign.FieldError{Field: "to", Message: err.Error()})
	}
	unsubscribe, err := unsubscribeURL(d.UnsubscribeURL)
	if err != nil {
		return Message{}, err
	}
	replyTo, err := c.replyToValue(d.Sender.ReplyTo)
	if err != nil {
		return Message{}, err
	}
	domain := d.Sender.FromEmail[strings.LastIndexByte(d.Sender.FromEmail, '@')+1:]
	var r randoms
	if _, err := io.ReadFull(c.cfg.Rand, r.raw[:]); err != nil {
		return Message{}, fmt.Errorf("read random bytes: %w", err)
	}
	r.encode()
	m := Message{
		From: "bounces+" + c.codec.EncodeAddress(token.Token{Kind: token.Bounce, Delivery: d.DeliveryID}) + "@" + c.cfg.BounceDomain,
		To:   []string{d.ToEmail},
	}
	key := c.keyFor(domain)
	if key == nil {
		start := len(dst)
		m.Raw = c.write(dst, &d, &r, domain, unsubscribe, replyTo)
		m.MessageID = messageID(m.Raw[start:])
		return m, nil
	}
	// The signature goes in front of the message it covers, so the
	// message is written aside first.
	buf := c.getBuf()
	defer c.putBuf(buf)
	*buf = c.write((*buf)[:0], &d, &r, domain, unsubscribe, replyTo)
	sig, err := key.sign(*buf)
	if err != nil {
		return Message{}, fmt.Errorf("dkim sign message to %s: %w", d.ToEmail, err)
	}
	dst = slices.Grow(dst, len(sig)+len(*buf))
	dst = append(dst, sig...)
	m.Raw = append(dst, *buf...)
	m.MessageID = messageID(*buf)
	return m, nil
}

// validFrom is campaign.ValidateEmail for From addresses: a campaign
// sends every message from one, which is checked once.
func (c *Composer) validFrom(addr string) error {
	return c.lastFrom.validate(addr)
}

// lastValid remembers the last address campaign.ValidateEmail accepted.
type lastValid struct{ p atomic.Pointer[string] }

func (v *lastValid) validate(addr string) error {
	if last := v.p.Load(); last != nil && *last == addr {
		return nil
	}
	if err := campaign.ValidateEmail(addr); err != nil {
		return err
	}
	v.p.Store(&addr)
	return nil
}

// write appends the headers and both parts. Everything that can fail has
// been checked by ComposeTo.
func (c *Composer) write(dst []byte, d *Draft, r *randoms, domain, unsubscribe, replyTo string) []byte {
	// One growth up front: quoted-printable adds a few percent to mostly
	// ASCII bodies, the headers about 1 KB.
	dst = slices.Grow(dst, sizeHint(d))
	scratch := c.getBuf()
	defer c.putBuf(scratch)
	v := (*scratch)[:0]

	dst = append(dst, "Date: "...)
	dst = c.cfg.Now().AppendFormat(dst, time.RFC1123Z)
	dst = append(dst, "\r\n"...)
	dst, v = appendAddressHeader(dst, v, "From", headerText(d.Sender.FromName), d.Sender.FromEmail)
	dst, v = appendAddressHeader(dst, v, "To", headerText(d.ToName), d.ToEmail)
	if replyTo != "" {
		dst = appendHeader(dst, "Reply-To", replyTo)
	}
	subject, kind := headerText(d.Subject), "campaign"
	if d.Test {
		subject, kind = "[Test] "+subject, "test"
	}
	dst = appendTextHeader(dst, "Subject", subject)

	dst = append(dst, "Message-ID: <d"...)
	dst = strconv.AppendInt(dst, d.DeliveryID, 10)
	dst = append(dst, ".c"...)
	dst = strconv.AppendInt(dst, d.CampaignID, 10)
	dst = append(dst, '.')
	dst = append(dst, r.nonce[:]...)
	dst = append(dst, '@')
	dst = append(dst, domain...)
	dst = append(dst, ">\r\n"...)

	// List-Unsubscribe is written unfolded, as go-mail writes it: receivers
	// parse it, and 998 characters is the hard limit.
	dst = append(dst, "List-Unsubscribe: <"...)
	dst = append(dst, unsubscribe...)
	dst = append(dst, ">, <mailto:unsubscribe+"...)
	dst = append(dst, c.codec.EncodeAddress(token.Token{Kind: token.Unsubscribe, Delivery: d.DeliveryID})...)
	dst = append(dst, '@')
	dst = append(dst, c.cfg.BounceDomain...)
	dst = append(dst, "?subject=unsubscribe>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"...)

	v = strconv.AppendInt(v[:0], d.CampaignID, 10)
	v = append(v, ':')
	v = append(v, kind...)
	v = append(v, ':')
	v = append(v, c.cfg.FeedbackSender...)
	dst = appendTextHeader(dst, "Feedback-ID", string(v))
	dst = append(dst, "Precedence: bulk\r\nX-Auto-Response-Suppress: All\r\n"...)
	dst = append(dst, HeaderCampaign+": "...)
	dst = strconv.AppendInt(dst, d.CampaignID, 10)
	dst = append(dst, "\r\n"+HeaderDelivery+": "...)
	dst = strconv.AppendInt(dst, d.DeliveryID, 10)
	dst = append(dst, "\r\n"...)
	if d.Test {
		dst = append(dst, HeaderTest+": yes\r\n"...)
	}
	*scratch = v

	dst = append(dst, "MIME-Version: 1.0\r\nContent-Type: multipart/alternative;\r\n boundary="...)
	dst = append(dst, r.boundary[:]...)
	dst = append(dst, "\r\n\r\n--"...)
	dst = append(dst, r.boundary[:]...)
	dst = append(dst, "\r\nContent-Transfer-Encoding: quoted-printable\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n"...)
	dst = appendQP(dst, d.Text)
	dst = append(dst, "\r\n--"...)
	dst = append(dst, r.boundary[:]...)
	dst = append(dst, "\r\nContent-Transfer-Encoding: quoted-printable\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n"...)
	dst = appendQP(dst, d.HTML)
	dst = append(dst, "\r\n--"...)
	dst = append(dst, r.boundary[:]...)
	return append(dst, "--\r\n"...)
}

// unsubscribeURL checks the one-click URL as go-mail's
// SetListUnsubscribeOneClick did (an https URL with a host), and that it
// holds nothing that could end the <...> it is written in or split the
// list (RFC 2369 wants commas in URLs escaped).
func unsubscribeURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	u, err := url.Parse(s)
	// RFC 8058 wants https; plain http is allowed only for a loopback host,
	// which is what funnel dev serves on and where nothing leaves the machine.
	secure := err == nil && (u.Scheme == "https" || (u.Scheme == "http" && isLoopback(u.Hostname())))
	if !secure || u.Host == "" || strings.ContainsAny(s, "<> \t,") {
		return "", campaign.Invalid("cannot build message", campaign.FieldError{Field: "unsubscribe_url", Message: "must be an https URL (http only for localhost)"})
	}
	return s, nil
}

// replyToValue returns the Reply-To header value: "<addr>" for a bare
// address, or a named address as net/mail formats it.
func (c *Composer) replyToValue(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	if c.lastReplyTo.validate(s) == nil {
		return "<" + s + ">", nil
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", campaign.Invalid("cannot build message", campaign.FieldError{Field: "reply_to", Message: err.Error()})
	}
	return a.String(), nil
}

// messageID returns the Message-ID, without angle brackets, of a message
// that write wrote.
func messageID(raw []byte) string {
	const key = "\r\nMessage-ID: <"
	i := bytes.Index(raw, []byte(key)) + len(key)
	return string(raw[i : i+bytes.IndexByte(raw[i:], '>')])
}

var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// randoms are the per-message random parts: the MIME boundary (128 bits)
// and the Message-ID nonce (80 bits).
type randoms struct {
	raw      [26]byte
	boundary [7 + 26]byte // "funnel-" and 16 bytes in base32
	nonce    [16]byte     // 10 bytes in base32
}

func (r *randoms) encode() {
	copy(r.boundary[:], "funnel-")
	lowerBase32.Encode(r.boundary[7:], r.raw[:16])
	lowerBase32.Encode(r.nonce[:], r.raw[16:])
}

// maxPooled is the largest buffer kept for reuse; a rare huge message
// should not pin its memory.
const maxPooled = 1 << 20

func (c *Composer) getBuf() *[]byte {
	if b, ok := c.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 32<<10)
	return &b
}

func (c *Composer) putBuf(b *[]byte) {
	if cap(*b) <= maxPooled {
		c.bufs.Put(b)
	}
}

// headerText makes text safe for a header: control characters (CR, LF,
// NUL, ...) become spaces and runs of spaces collapse. The header writer
// encodes what remains.
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

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
