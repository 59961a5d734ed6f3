// Package token makes and checks the signed tokens that Funnel puts in
// tracking links, unsubscribe links and VERP bounce addresses.
//
// A token names what happened (its Kind), to which delivery, and for clicks
// which link of the message. It is signed with HMAC-SHA256 under the
// current secret and the MAC is truncated to 12 bytes (96 bits: an online
// forger needs about 2^95 requests). The payload is varint-encoded, so a
// typical token is 24 characters and none is longer than 36.
//
// A token with delivery ID 0 is a preview token: it belongs to a preview or
// test send, which is not a delivery, so the tracking side must verify it
// and record nothing.
package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Kind says what a token is for. A token of one kind is never accepted as
// another: the kind is signed.
type Kind byte

// Token kinds. The values are part of every token ever sent: never renumber.
const (
	Open        Kind = 1 // the open pixel
	Click       Kind = 2 // a tracked link; Link says which
	Unsubscribe Kind = 3 // the unsubscribe page and RFC 8058 one-click POST
	Bounce      Kind = 4 // the VERP envelope sender
	View        Kind = 5 // the view-in-browser page
)

func (k Kind) valid() bool { return k >= Open && k <= View }

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case Open:
		return "open"
	case Click:
		return "click"
	case Unsubscribe:
		return "unsubscribe"
	case Bounce:
		return "bounce"
	case View:
		return "view"
	}
	return fmt.Sprintf("kind(%d)", byte(k))
}

// HoneypotLink is the link index reserved for the hidden honeypot link that
// only machines follow. Real links are numbered from 1.
const HoneypotLink = 0

// PreviewDelivery is the delivery ID of preview tokens.
const PreviewDelivery = 0

// Token is the signed content of a token.
type Token struct {
	Kind     Kind
	Delivery int64 // the delivery ID; PreviewDelivery for previews and test sends
	Link     int   // the link index of a Click token; 0 for other kinds
}

// Preview reports whether t belongs to a preview or test send, whose events
// must not be recorded.
func (t Token) Preview() bool { return t.Delivery == PreviewDelivery }

const (
	macSize    = 12
	minSecret  = 16
	maxPayload = 1 + binary.MaxVarintLen64 + binary.MaxVarintLen32
)

// ErrInvalid is returned for any token that is malformed, altered, signed
// with an unknown secret or of another kind than expected.
var ErrInvalid = errors.New("invalid token")

var (
	b64 = base64.RawURLEncoding
	b32 = base32.HexEncoding.WithPadding(base32.NoPadding)
)

// Codec signs tokens with the current secret and verifies them against the
// current and previous secrets, so secrets can be rotated without breaking
// links in messages already sent. A Codec is safe for concurrent use.
type Codec struct {
	keys [][]byte // keys[0] signs; all verify
}

// NewCodec returns a Codec that signs with current and also accepts tokens
// signed with any of previous. Each secret must be at least 16 bytes.
func NewCodec(current []byte, previous ...[]byte) (*Codec, error) {
	c := &Codec{}
	for i, s := range append([][]byte{current}, previous...) {
		if len(s) < minSecret {
			return nil, fmt.Errorf("token secret %d: shorter than %d bytes", i, minSecret)
		}
		c.keys = append(c.keys, append([]byte(nil), s...))
	}
	return c, nil
}

// Encode returns t as a URL-safe string (base64url, no padding).
func (c *Codec) Encode(t Token) string {
	var buf [maxPayload + macSize]byte
	return b64.EncodeToString(c.seal(buf[:0], t))
}

// AppendEncode appends the encoded token to dst, for callers that build
// URLs without intermediate strings.
func (c *Codec) AppendEncode(dst []byte, t Token) []byte {
	var buf [maxPayload + macSize]byte
	return b64.AppendEncode(dst, c.seal(buf[:0], t))
}

// EncodeAddress returns t as lower-case base32 for use in an address local
// part (VERP bounces, mailto unsubscribe), where case may not survive.
func (c *Codec) EncodeAddress(t Token) string {
	var buf [maxPayload + macSize]byte
	return strings.ToLower(b32.EncodeToString(c.seal(buf[:0], t)))
}

// Decode verifies s (made by Encode) and returns its token if it is of kind
// want. Any other input returns ErrInvalid.
func (c *Codec) Decode(s string, want Kind) (Token, error) {
	if len(s) > b64.EncodedLen(maxPayload+macSize) {
		return Token{}, ErrInvalid
	}
	raw, err := b64.DecodeString(s)
	// Re-encoding rejects inputs whose unused trailing bits differ: every
	// token has exactly one spelling, so any changed character fails.
	if err != nil || b64.EncodeToString(raw) != s {
		return Token{}, ErrInvalid
	}
	return c.open(raw, want)
}

// DecodeAddress verifies s (made by EncodeAddress, in any case) and returns
// its token if it is of kind want. Any other input returns ErrInvalid.
func (c *Codec) DecodeAddress(s string, want Kind) (Token, error) {
	if len(s) > b32.EncodedLen(maxPayload+macSize) {
		return Token{}, ErrInvalid
	}
	up := strings.ToUpper(s)
	raw, err := b32.DecodeString(up)
	if err != nil || b32.EncodeToString(raw) != up {
		return Token{}, ErrInvalid
	}
	return c.open(raw, want)
}

// seal appends payload and MAC for t to dst.
func (c *Codec) seal(dst []byte, t Token) []byte {
	dst = append(dst, byte(t.Kind))
	dst = binary.AppendUvarint(dst, uint64(t.Delivery))
	dst = binary.AppendUvarint(dst, uint64(uint32(t.Link)))
	return append(dst, c.mac(c.keys[0], dst)...)
}

func (c *Codec) open(raw []byte, want Kind) (Token, error) {
	if len(raw) < 3+macSize {
		return Token{}, ErrInvalid
	}
	payload, sum := raw[:len(raw)-macSize], raw[len(raw)-macSize:]
	ok := false
	for _, k := range c.keys {
		if hmac.Equal(c.mac(k, payload), sum) {
			ok = true
			break
		}
	}
	if !ok {
		return Token{}, ErrInvalid
	}
	t, err := parsePayload(payload)
	if err != nil || t.Kind != want {
		return Token{}, ErrInvalid
	}
	return t, nil
}

func (c *Codec) mac(key, payload []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(payload)
	return m.Sum(nil)[:macSize]
}

// parsePayload reads a signed payload. It is strict even though the MAC
// already vouches for it, so that a bug in seal cannot go unnoticed.
func parsePayload(p []byte) (Token, error) {
	t := Token{Kind: Kind(p[0])}
	d, n := binary.Uvarint(p[1:])
	if n <= 0 || d > 1<<63-1 || !t.Kind.valid() {
		return Token{}, ErrInvalid
	}
	l, m := binary.Uvarint(p[1+n:])
	if m <= 0 || 1+n+m != len(p) || l > 1<<31-1 {
		return Token{}, ErrInvalid
	}
	t.Delivery, t.Link = int64(d), int(l)
	return t, nil
}
