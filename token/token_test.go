package token

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func mustCodec(tb testing.TB, current string, previous ...string) *Codec {
	tb.Helper()
	var prev [][]byte
	for _, p := range previous {
		prev = append(prev, []byte(p))
	}
	c, err := NewCodec([]byte(current), prev...)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

var samples = []Token{
	{Kind: Open, Delivery: 1},
	{Kind: Click, Delivery: 123456789, Link: 4},
	{Kind: Click, Delivery: 7, Link: HoneypotLink},
	{Kind: Unsubscribe, Delivery: PreviewDelivery},
	{Kind: Bounce, Delivery: math.MaxInt64},
	{Kind: Click, Delivery: math.MaxInt64, Link: math.MaxInt32},
	{Kind: View, Delivery: 99},
}

func TestCodecRoundTripsEveryKind(t *testing.T) {
	c := mustCodec(t, "0123456789abcdef0123")
	for _, want := range samples {
		s := c.Encode(want)
		if len(s) > 40 {
			t.Errorf("Encode(%+v) = %q: %d characters, want at most 40", want, s, len(s))
		}
		got, err := c.Decode(s, want.Kind)
		if err != nil {
			t.Fatalf("Decode(%q): %v", s, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Decode(Encode(%+v)) mismatch (-want +got):\n%s", want, diff)
		}
		a := c.EncodeAddress(want)
		if a != strings.ToLower(a) || len(a) > 64 {
			t.Errorf("EncodeAddress(%+v) = %q: want lower case, at most 64 characters", want, a)
		}
		got, err = c.DecodeAddress(strings.ToUpper(a), want.Kind)
		if err != nil || got != want {
			t.Errorf("DecodeAddress(upper(%q)) = %+v, %v; want %+v", a, got, err, want)
		}
	}
}

func TestTypicalTokenIsShort(t *testing.T) {
	c := mustCodec(t, "0123456789abcdef0123")
	if s := c.Encode(Token{Kind: Click, Delivery: 50_000_000, Link: 12}); len(s) > 24 {
		t.Errorf("click token for delivery 5e7 is %d characters (%q), want at most 24", len(s), s)
	}
}

func TestDecodeRejectsEveryChangedCharacter(t *testing.T) {
	c := mustCodec(t, "0123456789abcdef0123")
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for _, tok := range samples {
		s := c.Encode(tok)
		for i := range len(s) {
			for _, r := range alphabet {
				if byte(r) == s[i] {
					continue
				}
				changed := s[:i] + string(r) + s[i+1:]
				if got, err := c.Decode(changed, tok.Kind); !errors.Is(err, ErrInvalid) {
					t.Fatalf("Decode(%q) (char %d of %q changed) = %+v, %v; want ErrInvalid", changed, i, s, got, err)
				}
			}
		}
	}
}

func TestDecodeRejectsEveryFlippedBit(t *testing.T) {
	c := mustCodec(t, "0123456789abcdef0123")
	for _, tok := range samples {
		var buf []byte
		raw := c.seal(buf, tok)
		for i := range len(raw) * 8 {
			flipped := append([]byte(nil), raw...)
			flipped[i/8] ^= 1 << (i % 8)
			if _, err := c.Decode(b64.EncodeToString(flipped), tok.Kind); !errors.Is(err, ErrInvalid) {
				t.Fatalf("bit %d flipped in %+v: Decode err = %v, want ErrInvalid", i, tok, err)
			}
		}
	}
}

func TestDecodeRejectsOtherKindTruncationAndGarbage(t *testing.T) {
	c := mustCodec(t, "0123456789abcdef0123")
	click := c.Encode(Token{Kind: Click, Delivery: 5, Link: 1})
	for name, in := range map[string]string{
		"other kind": click, "truncated": click[:len(click)-1], "extended": click + "A",
		"empty": "", "padding": click + "=", "long": strings.Repeat("A", 200), "not base64": "!!!!!!!!!!!!!!!!!!!!",
	} {
		want := Click
		if name == "other kind" {
			want = Open
		}
		if _, err := c.Decode(in, want); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Decode(%q) err = %v, want ErrInvalid", name, in, err)
		}
	}
}

func TestRotationVerifiesPreviousSecretAndSignsWithCurrent(t *testing.T) {
	old := mustCodec(t, "old-secret-0123456789")
	rotated := mustCodec(t, "new-secret-0123456789", "old-secret-0123456789")
	fresh := mustCodec(t, "new-secret-0123456789")
	tok := Token{Kind: Click, Delivery: 42, Link: 3}

	if _, err := rotated.Decode(old.Encode(tok), Click); err != nil {
		t.Errorf("token signed with the previous secret: %v, want accepted", err)
	}
	if _, err := fresh.Decode(rotated.Encode(tok), Click); err != nil {
		t.Errorf("rotated codec must sign with the current secret: %v", err)
	}
	if _, err := fresh.Decode(old.Encode(tok), Click); !errors.Is(err, ErrInvalid) {
		t.Errorf("token signed with a dropped secret: err = %v, want ErrInvalid", err)
	}
}

func TestNewCodecRejectsShortSecrets(t *testing.T) {
	if _, err := NewCodec([]byte("short")); err == nil {
		t.Error("NewCodec(5-byte secret) = nil error, want error")
	}
	if _, err := NewCodec([]byte("0123456789abcdef"), []byte("x")); err == nil {
		t.Error("NewCodec with a short previous secret = nil error, want error")
	}
}

func TestPreviewTokensSayPreview(t *testing.T) {
	if !(Token{Kind: Open, Delivery: PreviewDelivery}).Preview() {
		t.Error("delivery 0 token: Preview() = false")
	}
	if (Token{Kind: Open, Delivery: 1}).Preview() {
		t.Error("delivery 1 token: Preview() = true")
	}
}

func FuzzDecode(f *testing.F) {
	c := mustCodec(f, "0123456789abcdef0123")
	for _, tok := range samples {
		f.Add(c.Encode(tok), byte(tok.Kind))
	}
	f.Fuzz(func(t *testing.T, s string, k byte) {
		tok, err := c.Decode(s, Kind(k))
		if err != nil {
			return
		}
		// Anything accepted must be exactly what Encode produces for it.
		if again := c.Encode(tok); again != s {
			t.Fatalf("Decode(%q) accepted %+v, which encodes as %q", s, tok, again)
		}
	})
}

func FuzzRoundTrip(f *testing.F) {
	c := mustCodec(f, "0123456789abcdef0123")
	f.Add(byte(2), int64(1), 3)
	f.Fuzz(func(t *testing.T, k byte, d int64, l int) {
		tok := Token{Kind: Kind(k%5 + 1), Delivery: d, Link: l}
		if d < 0 || l < 0 || l > math.MaxInt32 {
			return // outside the documented domain
		}
		got, err := c.Decode(c.Encode(tok), tok.Kind)
		if err != nil || got != tok {
			t.Fatalf("round trip %+v = %+v, %v", tok, got, err)
		}
	})
}
