package templates

import (
	"html"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// textWordByWord is textWriter.text as it was before runs of words were
// copied at once: a word at a time, with flush writing each space. The
// fuzz test below holds the faster version to it.
func (w *textWriter) textWordByWord(s string) {
	if w.skip != "" || s == "" {
		return
	}
	if strings.IndexByte(s, '&') >= 0 {
		s = html.UnescapeString(s)
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' {
			w.space = true
			i++
			continue
		}
		j := i + 1
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if j = i + n; r == '\u00a0' {
				w.space = true
				i = j
				continue
			}
		} else {
			for j < len(s) && s[j] > ' ' && s[j] < utf8.RuneSelf {
				j++
			}
		}
		if w.space || w.newlines > 0 {
			w.flush()
		}
		w.b = append(w.b, s[i:j]...)
		i = j
	}
}

func FuzzTextCopiesRunsLikeWordByWord(f *testing.F) {
	for _, s := range []string{
		"Lorem ipsum dolor sit amet, consectetur adipiscing elit", "a  b", "abcdefg  hijklmn opq", "x\ty z\u00a0w",
		"12345678 1234567  123456 \x7f\x01 é ü", " lead and trail ", "a&amp;b &lt;c&gt;  d", strings.Repeat("ab cd ", 20),
	} {
		f.Add(s, "pending")
	}
	f.Fuzz(func(t *testing.T, s, before string) {
		var fast, slow textWriter
		for _, w := range []*textWriter{&fast, &slow} {
			w.b = append(w.b, before...)
			w.space = len(before)%2 == 0
		}
		fast.text(s)
		slow.textWordByWord(s)
		if string(fast.b) != string(slow.b) || fast.space != slow.space || fast.newlines != slow.newlines {
			t.Fatalf("text(%q) after %q = %q (space %v), word by word %q (space %v)", s, before, fast.b, fast.space, slow.b, slow.space)
		}
	})
}

func TestPlainWords8MatchesBytewiseCheck(t *testing.T) {
	edge := []byte{0x00, 0x09, 0x0a, 0x1f, ' ', ' ', ' ', '!', 'a', '~', 0x7f, 0x80, 0xc2, 0xa0, 0xff}
	r := rand.New(rand.NewPCG(3, 4))
	for range 200000 {
		var b [8]byte
		for i := range b {
			b[i] = edge[r.IntN(len(edge))]
		}
		want := true
		for i, c := range b {
			want = want && c >= ' ' && c <= '~' && !(c == ' ' && i > 0 && b[i-1] == ' ')
		}
		if got := plainWords8(load64(string(b[:]), 0)); got != want {
			t.Fatalf("plainWords8(%q) = %v, want %v", b, got, want)
		}
	}
}
