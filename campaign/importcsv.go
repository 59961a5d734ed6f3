package campaign

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxCSVRecordBytes bounds one CSV record (a row, with every line of its
// quoted fields). A longer record is a row error, never a larger buffer.
const MaxCSVRecordBytes = 1 << 20

// MaxImportErrors is how many row errors an import keeps; later ones are
// only counted.
const MaxImportErrors = 100

// ImportOptions say how an import treats the rows of a file.
type ImportOptions struct {
	// UpdateExisting lets rows update contacts that already exist, as
	// Contact.MergeImport describes. When false, existing contacts are left
	// exactly as they are and their rows count as unchanged.
	UpdateExisting bool `json:"update_existing"`
	// Tags are added to every imported row (new and, when UpdateExisting,
	// existing contacts).
	Tags []string `json:"tags"`
	// ConsentSource is recorded for rows whose file gives none.
	ConsentSource string `json:"consent_source"`
}

// Normalize trims and normalizes the options in place.
func (o *ImportOptions) Normalize() {
	o.Tags = NormalizeTags(o.Tags)
	o.ConsentSource = strings.TrimSpace(o.ConsentSource)
}

// Validate checks normalized options and returns an EINVALID *Error that
// names every invalid field.
func (o *ImportOptions) Validate() error {
	c := Contact{Email: "options@example.com", Tags: o.Tags, ConsentSource: o.ConsentSource, Status: ContactActive}
	var e *Error
	if err := c.Validate(); errors.As(err, &e) {
		return Invalid("invalid import options", e.Details...)
	}
	return nil
}

// ImportRowError is a row an import rejected: its physical line (where the
// record starts, 1-based) and why.
type ImportRowError struct {
	Line    int64  `json:"line"`
	Message string `json:"message"`
}

// ImportStats counts what an import did so far. RowsRead counts data rows
// (not the header, not blank lines); each of them ends up in exactly one
// of Inserted, Updated, Unchanged or Invalid once its batch is written.
type ImportStats struct {
	BytesRead int64 `json:"bytes_read"`
	RowsRead  int64 `json:"rows_read"`
	Inserted  int64 `json:"inserted"`
	Updated   int64 `json:"updated"`
	Unchanged int64 `json:"unchanged"`
	Invalid   int64 `json:"invalid"`
	// Errors are the first MaxImportErrors row errors, in file order.
	Errors []ImportRowError `json:"errors"`
}

// AddRowError counts an invalid row and keeps its error while fewer than
// MaxImportErrors are kept.
func (s *ImportStats) AddRowError(line int64, message string) {
	s.Invalid++
	if len(s.Errors) < MaxImportErrors {
		s.Errors = append(s.Errors, ImportRowError{Line: line, Message: message})
	}
}

// RowError is a CSV row that cannot become a contact. The reader goes on
// with the next row.
type RowError struct {
	Line    int64 // physical line where the record starts, 1-based
	Message string
}

func (e *RowError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Message) }

// column roles other than attributes.
const (
	colAttribute = iota
	colEmail
	colFirstName
	colLastName
	colTags
	colStatus
	colConsentSource
	colSkip
)

// headerAliases maps canonical header names (see canonicalHeader) to roles.
var headerAliases = map[string]int{
	"email": colEmail, "e mail": colEmail, "email address": colEmail, "e mail address": colEmail, "mail": colEmail,
	"first name": colFirstName, "firstname": colFirstName, "first": colFirstName, "given name": colFirstName,
	"givenname": colFirstName, "forename": colFirstName,
	"last name": colLastName, "lastname": colLastName, "last": colLastName, "surname": colLastName,
	"family name": colLastName, "familyname": colLastName,
	"tags": colTags, "tag": colTags,
	"status":         colStatus,
	"consent source": colConsentSource,
}

type column struct {
	role int
	key  string // attribute key, for colAttribute
}

// CSVReader reads contacts from a CSV file. It is not safe for concurrent
// use.
//
// The reader streams: it holds one record at a time, bounded by
// MaxCSVRecordBytes, so memory stays flat whatever the file size. It parses
// CSV itself instead of using encoding/csv because encoding/csv buffers a
// whole line (or a whole quoted field that never closes) without limit and
// stops at the first malformed quote; an import must bound every record and
// carry on with the next row.
//
// Decisions, for users and for the store that applies the rows:
//
//   - Format: UTF-8 with or without a byte order mark; records end in LF or
//     CRLF; fields may be quoted with '"' (a quote inside is doubled) and may
//     then hold delimiters and line breaks. The delimiter is ',', ';' or tab,
//     whichever occurs most often (outside quotes) in the header line. Blank
//     lines are skipped. A '"' inside an unquoted field is kept as text.
//   - Header: names are matched case-insensitively, ignoring surrounding
//     spaces and treating '_', '-' and spaces alike. Known columns and their
//     aliases: email (e-mail, email address, mail), first_name (firstname,
//     first, given name, forename), last_name (lastname, last, surname,
//     family name), tags (tag), status, consent_source. Every other column is
//     an attribute named by its header lower-cased with each run of spaces
//     and punctuation replaced by '_'. A header that cannot make a valid
//     attribute name (non-ASCII letters, a leading digit, over 64
//     characters), two columns with the same meaning, more than
//     MaxAttributes attribute columns, or no email column are EINVALID
//     errors before any row is read. A column with an empty header is
//     skipped and reported by Warnings.
//   - Cells are trimmed. An empty cell sets nothing: no attribute, and no
//     change to an existing contact's name.
//   - Attribute values: a canonical decimal number ("42", "-3.5", "0.25";
//     no leading zeros, no '+', no exponent, at most 15 significant digits
//     so that it survives float64) becomes a number; "true" and "false" (any
//     case) become booleans; everything else, such as "007", "+49 30 1234"
//     or "1e5", stays a string.
//   - Tags are split on '|' and ';', trimmed, lower-cased and deduplicated.
//   - Status: empty means active; otherwise one of active, unsubscribed,
//     bounced, complained (any case). See Contact.MergeImport for why an
//     import can add a suppression but never lift one.
//   - A row with a different number of fields than the header is a row
//     error, except that extra fields which are all empty (trailing
//     delimiters) are ignored. Rows whose fields are all empty are skipped
//     like blank lines and not counted. Invalid UTF-8, a NUL byte, a record longer
//     than MaxCSVRecordBytes, a quote that never closes and text after a
//     closing quote are row errors too; the reader then goes on with the
//     next record. Row errors name the physical line where the record
//     starts.
//   - A file may list an email more than once. The reader returns every
//     row; the store applies them in file order, each as if imported after
//     the one before: with UpdateExisting later non-empty values win
//     (Contact.MergeImport), without it the first row wins and later ones
//     count as unchanged. This holds whatever the batch size.
type CSVReader struct {
	s        *csvScanner
	cols     []column
	warnings []string
}

// NewCSVReader reads and checks the header of r. It returns an EINVALID
// *Error that says what is wrong when the input is empty, is not CSV text,
// or its header is unusable (no email column, a duplicate column, an
// invalid attribute name).
func NewCSVReader(r io.Reader) (*CSVReader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	s := &csvScanner{br: br, line: 1}
	if err := s.skipBOM(); err != nil {
		return nil, err
	}
	if err := s.sniff(); err != nil {
		return nil, err
	}
	rec, err := s.next()
	if err == io.EOF {
		return nil, Errorf(EINVALID, "the file is empty: a CSV file with a header line such as \"email,first_name\" is expected")
	}
	if err != nil {
		return nil, fmt.Errorf("read CSV header: %w", err)
	}
	if rec.problem != "" {
		return nil, Errorf(EINVALID, "the header (line %d) is not valid CSV: %s", rec.line, rec.problem)
	}
	cr := &CSVReader{s: s}
	if err := cr.parseHeader(rec.fields); err != nil {
		return nil, err
	}
	return cr, nil
}

func (r *CSVReader) parseHeader(names []string) error {
	seen := map[string]int{} // role or attribute key -> 1-based column
	nattr := 0
	for i, name := range names {
		col, err := headerColumn(i+1, name)
		if err != nil {
			return err
		}
		if col.role == colSkip {
			r.warnings = append(r.warnings, fmt.Sprintf("column %d has no header and is skipped", i+1))
			r.cols = append(r.cols, col)
			continue
		}
		id := col.key
		if col.role != colAttribute {
			id = "\x00" + strconv.Itoa(col.role)
		}
		if prev, ok := seen[id]; ok {
			return Errorf(EINVALID, "columns %d (%q) and %d (%q) of the header name the same field", prev, names[prev-1], i+1, name)
		}
		seen[id] = i + 1
		if col.role == colAttribute {
			nattr++
		}
		r.cols = append(r.cols, col)
	}
	if _, ok := seen["\x00"+strconv.Itoa(colEmail)]; !ok {
		return Errorf(EINVALID, "the header has no email column (looked for email, e-mail, email address; found %s)", quoteList(names, 10))
	}
	if nattr > MaxAttributes {
		return Errorf(EINVALID, "the header has %d attribute columns; at most %d are allowed", nattr, MaxAttributes)
	}
	return nil
}

// headerColumn gives the role of the header cell of column n (1-based).
func headerColumn(n int, name string) (column, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return column{role: colSkip}, nil
	}
	if role, ok := headerAliases[canonicalHeader(name)]; ok {
		return column{role: role}, nil
	}
	key := attributeKeyFromHeader(name)
	if msg := validAttributeKey(key); msg != "" {
		return column{}, Invalid(fmt.Sprintf("column %d of the header, %q, cannot name an attribute", n, name),
			FieldError{Field: "header", Line: 1, Column: n, Message: msg})
	}
	return column{role: colAttribute, key: key}, nil
}

// canonicalHeader lower-cases a header name and turns each run of spaces,
// '_' and '-' into one space, so that "E-Mail", "e_mail" and "e mail" match.
func canonicalHeader(name string) string {
	return strings.Join(strings.FieldsFunc(strings.ToLower(name), func(r rune) bool {
		return r == ' ' || r == '_' || r == '-' || r == '\t'
	}), " ")
}

// attributeKeyFromHeader lower-cases name and replaces each run of ASCII
// spaces and punctuation other than '_' and '-' with one '_'. Non-ASCII
// characters are kept so that validation refuses them with a clear message
// instead of silently mangling "país" into "pa_s".
func attributeKeyFromHeader(name string) string {
	var b strings.Builder
	pendingSep := false
	for _, r := range strings.ToLower(name) {
		if r < utf8.RuneSelf && !(r == '_' || r == '-' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9')) {
			pendingSep = true
			continue
		}
		if pendingSep && b.Len() > 0 {
			b.WriteByte('_')
		}
		pendingSep = false
		b.WriteRune(r)
	}
	return b.String()
}

func quoteList(names []string, max int) string {
	if len(names) == 0 {
		return "no columns"
	}
	q := make([]string, 0, max)
	for i, n := range names {
		if i == max {
			q = append(q, "...")
			break
		}
		q = append(q, strconv.Quote(n))
	}
	return strings.Join(q, ", ")
}

// Warnings returns remarks about the header that did not stop the import,
// such as skipped columns.
func (r *CSVReader) Warnings() []string { return r.warnings }

// BytesRead returns how many bytes of the input the reader has consumed,
// for progress against the file size.
func (r *CSVReader) BytesRead() int64 { return r.s.n }

// Next returns the next row's contact, normalized and validated, with the
// physical line (1-based) where its record starts. A row that cannot
// become a contact comes back as a *RowError and the reader goes on; at the
// end Next returns io.EOF. Any other error comes from the underlying
// reader.
func (r *CSVReader) Next() (*Contact, int64, error) {
	rec, err := r.s.next()
	for err == nil && rec.problem == "" && allEmpty(rec.fields) {
		// Spreadsheets export their empty rows as ",,,"; they are blank.
		rec, err = r.s.next()
	}
	if err != nil {
		return nil, 0, err
	}
	if rec.problem != "" {
		return nil, rec.line, &RowError{Line: rec.line, Message: rec.problem}
	}
	c, msg := r.contact(rec.fields)
	if msg != "" {
		return nil, rec.line, &RowError{Line: rec.line, Message: msg}
	}
	return c, rec.line, nil
}

func allEmpty(fields []string) bool {
	for _, f := range fields {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// contact builds a contact from a record, or says why it cannot.
func (r *CSVReader) contact(fields []string) (*Contact, string) {
	if len(fields) < len(r.cols) {
		return nil, fmt.Sprintf("has %d fields, the header has %d", len(fields), len(r.cols))
	}
	for _, f := range fields[len(r.cols):] {
		if strings.TrimSpace(f) != "" {
			return nil, fmt.Sprintf("has %d fields, the header has %d", len(fields), len(r.cols))
		}
	}
	c := &Contact{Attributes: Attributes{}}
	for i, col := range r.cols {
		v := strings.TrimSpace(fields[i])
		if v == "" {
			continue
		}
		switch col.role {
		case colEmail:
			c.Email = v
		case colFirstName:
			c.FirstName = v
		case colLastName:
			c.LastName = v
		case colTags:
			c.Tags = splitTags(v)
		case colStatus:
			c.Status = ContactStatus(strings.ToLower(v))
		case colConsentSource:
			c.ConsentSource = v
		case colAttribute:
			c.Attributes[col.key] = AttributeValue(v)
		}
	}
	c.Normalize()
	if err := c.Validate(); err != nil {
		return nil, validationMessage(err)
	}
	return c, ""
}

// validationMessage lists the field problems of a Validate error.
func validationMessage(err error) string {
	var e *Error
	if !errors.As(err, &e) || len(e.Details) == 0 {
		return err.Error()
	}
	parts := make([]string, len(e.Details))
	for i, d := range e.Details {
		parts[i] = d.Field + " " + d.Message
	}
	return strings.Join(parts, "; ")
}

func splitTags(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == '|' || r == ';' })
}

// AttributeValue types a trimmed CSV cell: a canonical decimal number of at
// most 15 significant digits becomes a float64, "true" and "false" (any
// case) a bool, anything else stays a string. Leading zeros, '+', exponents
// and thousands separators keep a value a string, so that postal codes,
// phone numbers and IDs are not altered.
func AttributeValue(v string) any {
	if isCanonicalNumber(v) {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return f
		}
	}
	switch {
	case strings.EqualFold(v, "true"):
		return true
	case strings.EqualFold(v, "false"):
		return false
	}
	return v
}

// isCanonicalNumber matches -?(0|[1-9][0-9]*)(\.[0-9]+)? with at most 15
// significant digits, the numbers float64 holds exactly as written.
func isCanonicalNumber(v string) bool {
	if strings.HasPrefix(v, "-") {
		v = v[1:]
	}
	intPart, frac, hasDot := strings.Cut(v, ".")
	if intPart == "" || (intPart[0] == '0' && len(intPart) > 1) || (hasDot && frac == "") {
		return false
	}
	digits := strings.TrimLeft(intPart+frac, "0")
	if len(digits) > 15 {
		return false
	}
	for _, s := range [2]string{intPart, frac} {
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		}
	}
	return true
}

// MergeImport applies an imported row to the existing contact c (when the
// import updates existing contacts) and reports whether c changed. The
// rules, which the store applies in SQL where it merges in the database:
//
//   - names: a non-empty imported name replaces the stored one; an empty
//     cell never erases it;
//   - attributes: merged key by key, the file's values win;
//   - tags: the union of the stored and the imported tags;
//   - status: an active contact takes the imported status, so a file can
//     suppress; a suppressed contact (unsubscribed, bounced, complained)
//     keeps its status, so an import never re-activates anyone;
//   - consent: kept when the contact has a consent source; otherwise taken
//     from the row.
//
// Email, ID and creation time never change; UpdatedAt is the caller's.
func (c *Contact) MergeImport(row *Contact) bool {
	changed := false
	set := func(dst *string, v string) {
		if v != "" && v != *dst {
			*dst, changed = v, true
		}
	}
	set(&c.FirstName, row.FirstName)
	set(&c.LastName, row.LastName)
	if c.Attributes == nil {
		c.Attributes = Attributes{}
	}
	for k, v := range row.Attributes {
		if old, ok := c.Attributes[k]; !ok || old != v {
			c.Attributes[k], changed = v, true
		}
	}
	if tags := NormalizeTags(append(append([]string{}, c.Tags...), row.Tags...)); len(tags) != len(c.Tags) {
		c.Tags, changed = tags, true
	}
	if c.Status == ContactActive && row.Status != ContactActive && row.Status != "" {
		c.Status, changed = row.Status, true
	}
	if c.ConsentSource == "" && row.ConsentSource != "" {
		c.ConsentSource, c.ConsentAt, changed = row.ConsentSource, row.ConsentAt, true
	}
	return changed
}

// ApplyImportOptions adds the options' tags to a contact read from a file
// and gives it the options' consent source when the row has none, with
// consent time now. It returns an error when the added tags break the
// MaxTags limit; the row is then invalid.
func (c *Contact) ApplyImportOptions(opts ImportOptions, now time.Time) error {
	if len(opts.Tags) > 0 {
		c.Tags = NormalizeTags(append(c.Tags, opts.Tags...))
		if len(c.Tags) > MaxTags {
			return fmt.Errorf("more than %d tags with the import's tags", MaxTags)
		}
	}
	if c.ConsentSource == "" {
		c.ConsentSource = opts.ConsentSource
	}
	if c.ConsentSource != "" && c.ConsentAt == nil {
		t := now
		c.ConsentAt = &t
	}
	return nil
}

// csvRecord is one record of a CSV file.
type csvRecord struct {
	fields  []string
	line    int64  // physical line where the record starts
	problem string // why the record is malformed, or ""
}

// csvScanner splits a byte stream into CSV records, bounding each one.
type csvScanner struct {
	br    *bufio.Reader
	comma byte
	line  int64 // physical line of the next byte
	n     int64 // bytes consumed
	buf   []byte
	ends  []int
}

// utf8BOM is the UTF-8 byte order mark.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

func (s *csvScanner) skipBOM() error {
	b, err := s.br.Peek(3)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return fmt.Errorf("read CSV: %w", err)
	}
	if bytes.Equal(b, utf8BOM) {
		s.br.Discard(3)
		s.n += 3
	}
	return nil
}

// sniff picks the delimiter that occurs most often outside quotes in the
// first line (',' on a tie), and refuses input that is plainly not text.
func (s *csvScanner) sniff() error {
	b, err := s.br.Peek(s.br.Size())
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return fmt.Errorf("read CSV: %w", err)
	}
	if bytes.HasPrefix(b, []byte("PK\x03\x04")) {
		return Errorf(EINVALID, "the file is a ZIP archive (an Excel .xlsx workbook?), not CSV: export it as CSV (UTF-8)")
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	if bytes.IndexByte(b, 0) >= 0 || !utf8.Valid(trimPartialRune(b)) {
		return Errorf(EINVALID, "the header line is not UTF-8 text: the file is not CSV, or not encoded as UTF-8")
	}
	counts := map[byte]int{}
	inQuote := false
	for _, c := range b {
		switch {
		case c == '"':
			inQuote = !inQuote
		case !inQuote && (c == ',' || c == ';' || c == '\t'):
			counts[c]++
		}
	}
	s.comma = ','
	for _, c := range []byte{';', '\t'} {
		if counts[c] > counts[s.comma] {
			s.comma = c
		}
	}
	return nil
}

// trimPartialRune drops an incomplete UTF-8 sequence cut off at the end of
// a peeked buffer.
func trimPartialRune(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			break
		}
	}
	return b
}

// Parser states.
const (
	stFieldStart = iota // before the first byte of a field
	stUnquoted          // inside an unquoted field
	stQuoted            // inside a quoted field
	stQuoteSeen         // a '"' inside a quoted field: a doubled quote or the end
)

// next returns the next non-blank record, or io.EOF.
func (s *csvScanner) next() (csvRecord, error) {
	for {
		rec, blank, err := s.record()
		if err != nil || !blank {
			return rec, err
		}
	}
}

// record reads one record. blank reports a line with nothing on it.
//
// It is one loop over the state machine of RFC 4180 rather than a function
// per state because it runs for every byte of the file; runs of ordinary
// bytes are copied a slice at a time.
func (s *csvScanner) record() (rec csvRecord, blank bool, err error) {
	s.buf, s.ends = s.buf[:0], s.ends[:0]
	rec.line = s.line
	st, quoted, tooLong := stFieldStart, false, false
	for {
		chunk, rerr := s.br.ReadSlice('\n')
		s.n += int64(len(chunk))
		if rerr != nil && rerr != bufio.ErrBufferFull && rerr != io.EOF {
			return rec, false, fmt.Errorf("read CSV: %w", rerr)
		}
		if rerr == io.EOF && len(chunk) == 0 && st == stFieldStart && len(s.ends) == 0 {
			return rec, false, io.EOF
		}
		for i := 0; i < len(chunk); i++ {
			b := chunk[i]
			switch st {
			case stFieldStart, stUnquoted:
				if st == stFieldStart && b == '"' {
					st, quoted = stQuoted, true
					continue
				}
				st = stUnquoted
				j := i
				for j < len(chunk) && chunk[j] != s.comma && chunk[j] != '\n' {
					j++
				}
				tooLong = s.add(chunk[i:j]) || tooLong
				if j == len(chunk) {
					i = j
					continue
				}
				i = j
				if chunk[j] == s.comma {
					s.endField()
					st = stFieldStart
					continue
				}
				s.line++
				s.dropCR()
				s.endField()
				return s.finish(rec, quoted, tooLong, "")
			case stQuoted:
				j := i
				for j < len(chunk) && chunk[j] != '"' {
					if chunk[j] == '\n' {
						s.line++
					}
					j++
				}
				tooLong = s.add(chunk[i:j]) || tooLong
				if j > i && chunk[j-1] == '\n' {
					s.crlfInQuotes()
				}
				i = j
				if j < len(chunk) {
					st = stQuoteSeen
				}
			case stQuoteSeen:
				switch b {
				case '"':
					tooLong = s.add([]byte{'"'}) || tooLong
					st = stQuoted
				case s.comma:
					s.endField()
					st = stFieldStart
				case '\r':
					// Part of a CRLF line end; a stray CR after a quote is
					// dropped.
				case '\n':
					s.line++
					s.endField()
					return s.finish(rec, quoted, tooLong, "")
				default:
					rec.problem = fmt.Sprintf("text after the closing quote of field %d", len(s.ends)+1)
					tooLong = s.add(chunk[i:i+1]) || tooLong
					st = stUnquoted
				}
			}
		}
		if rerr == io.EOF {
			problem := rec.problem
			switch st {
			case stQuoted:
				problem = fmt.Sprintf("the quote that opens field %d is never closed", len(s.ends)+1)
			case stUnquoted:
				s.dropCR()
			}
			s.endField()
			return s.finish(rec, quoted, tooLong, problem)
		}
	}
}

// add appends field bytes unless the record would exceed
// MaxCSVRecordBytes, and reports whether it did.
func (s *csvScanner) add(b []byte) bool {
	if len(s.buf)+len(b) > MaxCSVRecordBytes {
		return true
	}
	s.buf = append(s.buf, b...)
	return false
}

// fieldStart is the offset in buf of the field being read.
func (s *csvScanner) fieldStart() int {
	if len(s.ends) == 0 {
		return 0
	}
	return s.ends[len(s.ends)-1]
}

func (s *csvScanner) endField() { s.ends = append(s.ends, len(s.buf)) }

// dropCR removes the CR of a CRLF line end from an unquoted field.
func (s *csvScanner) dropCR() {
	if n := len(s.buf); n > s.fieldStart() && s.buf[n-1] == '\r' {
		s.buf = s.buf[:n-1]
	}
}

// crlfInQuotes turns CRLF line breaks inside quoted fields into LF, as
// encoding/csv does, so a file means the same on every platform.
func (s *csvScanner) crlfInQuotes() {
	if n := len(s.buf); n-2 >= s.fieldStart() && s.buf[n-1] == '\n' && s.buf[n-2] == '\r' {
		s.buf[n-2] = '\n'
		s.buf = s.buf[:n-1]
	}
}

// finish turns the buffered fields into a record and checks them.
func (s *csvScanner) finish(rec csvRecord, quoted, tooLong bool, problem string) (csvRecord, bool, error) {
	if !quoted && len(s.ends) == 1 && len(s.buf) == 0 && !tooLong {
		return rec, true, nil
	}
	switch {
	case tooLong:
		problem = fmt.Sprintf("the record is longer than %d bytes", MaxCSVRecordBytes)
	case problem != "":
	case bytes.IndexByte(s.buf, 0) >= 0:
		problem = "contains a NUL byte"
	case !utf8.Valid(s.buf):
		problem = "is not valid UTF-8 text (save the file as UTF-8)"
	}
	if problem == "" && rec.problem != "" {
		problem = rec.problem
	}
	rec.problem = problem
	if problem != "" {
		return rec, false, nil
	}
	all := string(s.buf)
	rec.fields = make([]string, len(s.ends))
	start := 0
	for i, end := range s.ends {
		rec.fields[i] = all[start:end]
		start = end
	}
	return rec, false, nil
}
