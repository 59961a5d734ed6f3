package mailer

import "mime"

// This file writes MIME by appending to a []byte. Campaign messages have
// one fixed shape (multipart/alternative with a quoted-printable text and
// HTML part), so a writer for that shape costs a fraction of a general
// library's, which copies each body several times and encodes it a byte
// at a time. Header layout, folding and encoding follow go-mail v0.8.1 so
// that its output and ours decode to the same message (TestWriterMatchesGoMail).

// maxHeaderLine is the line length headers are folded to, not counting
// CRLF (go-mail's MaxHeaderLength; RFC 5322 recommends at most 78).
const maxHeaderLine = 76

// appendHeader appends "key: value\r\n", folding the value at spaces so
// that lines stay within maxHeaderLine where the words allow: a fold
// replaces the space it happens at by CRLF and a space, which unfolding
// turns back into the space. value must hold no CR or LF.
func appendHeader[T string | []byte](dst []byte, key string, value T) []byte {
	dst = append(dst, key...)
	dst = append(dst, ": "...)
	room := maxHeaderLine - 4 - len(key)
	for i := 0; i < len(value); {
		j := i
		for j < len(value) && value[j] != ' ' {
			j++
		}
		if room-(j-i) <= 1 {
			// Fold: the space written after the previous word (or after the
			// colon) becomes the line break.
			if dst[len(dst)-1] == ' ' {
				dst = dst[:len(dst)-1]
			}
			dst = append(dst, "\r\n "...)
			room = maxHeaderLine - 3
		}
		dst = append(dst, value[i:j]...)
		room -= j - i
		if j < len(value) {
			dst = append(dst, ' ')
			room--
		}
		i = j + 1
	}
	return append(dst, "\r\n"...)
}

// needsEncoding reports whether s holds bytes that a header may not carry
// as they are: anything but printable ASCII, space and tab (as
// mime.WordEncoder decides).
func needsEncoding(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; (b < ' ' || b > '~') && b != '\t' {
			return true
		}
	}
	return false
}

// appendTextHeader appends an unstructured header (Subject, Feedback-ID):
// as it is when it is printable ASCII, else as RFC 2047 Q-encoded words.
// Encoded words hold no spaces or line breaks, so a CR or LF in s can
// never start a header; callers still pass text cleaned by headerText.
func appendTextHeader(dst []byte, key, s string) []byte {
	if needsEncoding(s) {
		s = mime.QEncoding.Encode("UTF-8", s)
	}
	return appendHeader(dst, key, s)
}

// appendAddressHeader appends an address header for one mailbox. addr
// must be a bare address that campaign.ValidateEmail accepts (a dot-atom
// local part, so it needs no quoting). The display name is written as
// net/mail.Address.String writes it: a quoted string when it is printable
// ASCII, else an encoded word.
func appendAddressHeader(dst, scratch []byte, key, name, addr string) ([]byte, []byte) {
	v := scratch[:0]
	if name != "" {
		v = appendDisplayName(v, name)
		v = append(v, ' ')
	}
	v = append(v, '<')
	v = append(v, addr...)
	v = append(v, '>')
	return appendHeader(dst, key, v), v
}

// appendDisplayName mirrors net/mail.Address.String for the name part.
func appendDisplayName(dst []byte, name string) []byte {
	printable := true
	for _, r := range name {
		if !(r >= ' ' && r <= '~' || r == '\t') {
			printable = false
			break
		}
	}
	if printable {
		dst = append(dst, '"')
		for i := 0; i < len(name); i++ {
			if c := name[i]; c == '"' || c == '\\' {
				dst = append(dst, '\\')
			}
			dst = append(dst, name[i])
		}
		return append(dst, '"')
	}
	// RFC 2047 5.3: an encoded word in a phrase may not carry these
	// characters Q-encoded, so such names are B-encoded.
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '"', '#', '$', '%', '&', '\'', '(', ')', ',', '.', ':', ';', '<', '>', '@', '[', ']', '^', '`', '{', '|', '}', '~':
			return append(dst, mime.BEncoding.Encode("utf-8", name)...)
		}
	}
	return append(dst, mime.QEncoding.Encode("utf-8", name)...)
}

// qpLine is the longest quoted-printable line without its CRLF, the soft
// line break's '=' included (RFC 2045 6.7).
const qpLine = 76

// qpLiteral marks the bytes that quoted-printable writes as they are:
// printable ASCII but '=', and space and tab (encoded only at the end of
// a line).
var qpLiteral = func() (t [256]bool) {
	for b := '!'; b <= '~'; b++ {
		t[b] = b != '='
	}
	t[' '], t['\t'] = true, true
	return t
}()

const upperhex = "0123456789ABCDEF"

// appendQP appends s encoded as quoted-printable (RFC 2045 6.7) in one
// pass. Every line break in s (CRLF, LF or a lone CR) becomes a CRLF hard
// break; other bytes outside printable ASCII, and '=', are encoded as =XX;
// a space or tab before a line break or at the end is encoded so that no
// transport can strip it; lines are broken with a soft break ("=" CRLF)
// to at most qpLine characters. The output is byte for byte what
// mime/quotedprintable.Writer writes, except that the standard writer
// drops a LF that follows a lone CR and an encoded byte ("\r\xff\n"); no
// trailing CRLF is added.
func appendQP(dst []byte, s string) []byte {
	n := 0 // characters on the current output line
	for i := 0; i < len(s); {
		// Copy the run of literal bytes that fits on the line, eight bytes
		// at a time while no byte in them needs care.
		j := literalRun(s, i, min(len(s), i+qpLine-1-n))
		dst = append(dst, s[i:j]...)
		n += j - i
		if i = j; i == len(s) {
			break
		}
		switch c := s[i]; {
		case qpLiteral[c]: // the line is full
			dst = append(dst, "=\r\n"...)
			n = 0
		case c == '\r' || c == '\n':
			dst = qpTrailingSpace(dst, n)
			dst = append(dst, "\r\n"...)
			n = 0
			if i++; c == '\r' && i < len(s) && s[i] == '\n' {
				i++
			}
		default:
			if n > qpLine-4 {
				dst = append(dst, "=\r\n"...)
				n = 0
			}
			dst = append(dst, '=', upperhex[c>>4], upperhex[c&0x0f])
			n += 3
			i++
		}
	}
	return qpTrailingSpace(dst, n)
}

// literalRun returns the end of the run of literal bytes in s[i:lim].
// It is a function of its own so that its loop keeps everything in
// registers.
func literalRun(s string, i, lim int) int {
	for i+8 <= lim && plain8(load64(s, i)) {
		i += 8
	}
	for i < lim && qpLiteral[s[i]] {
		i++
	}
	return i
}

// qpTrailingSpace encodes a space or tab that ends the current line of n
// characters: decoders drop trailing whitespace.
func qpTrailingSpace(dst []byte, n int) []byte {
	if n == 0 {
		return dst
	}
	c := dst[len(dst)-1]
	if c != ' ' && c != '\t' {
		return dst
	}
	dst = dst[:len(dst)-1]
	if n-1 > qpLine-4 {
		dst = append(dst, "=\r\n"...)
	}
	return append(dst, '=', upperhex[c>>4], upperhex[c&0x0f])
}

// plain8 reports whether the eight bytes packed in x are all printable
// ASCII or space, and none is '='. It may report false for bytes that are
// plain; never true for one that is not.
func plain8(x uint64) bool {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	// A byte below 0x20 wraps when 0x20 is taken from it, one above 0x7e
	// reaches the high bit when 1 is added (or has it already): either
	// way its high bit shows. Borrows and carries between bytes only come
	// from such bytes, so they cannot hide one.
	outside := (x - ones*0x20) | (x + ones) | x
	eq := x ^ (ones * '=') // '=' becomes 0
	return (outside|(eq-ones)&^eq)&high == 0
}

// load64 reads s[i:i+8] as a little-endian word; the compiler turns it
// into one load.
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}
