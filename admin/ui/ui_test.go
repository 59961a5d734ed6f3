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
