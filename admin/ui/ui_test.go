package ui

import (
	"strings"
	"testing"
)

// TestParseMessageDecodesParts: the outbox shows the decoded HTML and
// text parts of a multipart/alternative message and its decoded headers.
func TestParseMessageDecodesParts(t *testing.T) {
	raw := strings.ReplaceAll(`From: "News" <news@example.com>
To: ada@example.com
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Hallo Ada, sch=C3=B6n
--b1
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

PHA+SGk8L3A+
--b1--
`, "\n", "\r\n")
	got := parseMessage([]byte(raw))
	if got.HTML != "<p>Hi</p>" {
		t.Errorf("HTML = %q", got.HTML)
	}
	if strings.TrimSpace(got.Text) != "Hallo Ada, schön" {
		t.Errorf("Text = %q", got.Text)
	}
	var subject string
	for _, h := range got.Headers {
		if h.Name == "Subject" {
			subject = h.Value
		}
	}
	if subject != "Grüße" {
		t.Errorf("Subject = %q, want it decoded", subject)
	}
}

// TestParseMessageKeepsUnparseableText: a message that is not RFC 5322
// is shown as text rather than lost.
func TestParseMessageKeepsUnparseableText(t *testing.T) {
	if got := parseMessage([]byte("no headers here")); got.Text == "" {
		t.Error("lost the raw text")
	}
}

// TestRateTextKeepsSlowRatesVisible: a rate below one message a second
// keeps two significant digits rather than reading 0.0; app.js writes
// rates the same way.
func TestRateTextKeepsSlowRatesVisible(t *testing.T) {
	for r, want := range map[float64]string{0: "0.0 messages/s", 1.0 / 60: "0.017 messages/s", 0.5: "0.5 messages/s", 12.345: "12.3 messages/s"} {
		if got := rateText(r); got != want {
			t.Errorf("rateText(%v) = %q, want %q", r, got, want)
		}
	}
}
