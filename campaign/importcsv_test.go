package campaign

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// readResult is what a CSVReader returned for one row.
type readResult struct {
	Line    int64
	Email   string
	First   string
	Last    string
	Attrs   Attributes
	Tags    []string
	Status  ContactStatus
	Consent string
	Err     string // substring of the row error
}

func readAll(t *testing.T, input string) []readResult {
	t.Helper()
	r, err := NewCSVReader(strings.NewReader(input))
	if err != nil {
		t.Fatalf("NewCSVReader: %v", err)
	}
	var out []readResult
	for {
		c, line, err := r.Next()
		if err == io.EOF {
			break
		}
		var rowErr *RowError
		switch {
		case errors.As(err, &rowErr):
			if rowErr.Line != line {
				t.Errorf("RowError.Line %d != returned line %d", rowErr.Line, line)
			}
			out = append(out, readResult{Line: line, Err: rowErr.Message})
		case err != nil:
			t.Fatalf("Next: %v", err)
		default:
			out = append(out, readResult{Line: line, Email: c.Email, First: c.FirstName, Last: c.LastName,
				Attrs: c.Attributes, Tags: c.Tags, Status: c.Status, Consent: c.ConsentSource})
		}
	}
	if r.BytesRead() != int64(len(input)) {
		t.Errorf("BytesRead = %d, want %d", r.BytesRead(), len(input))
	}
	return out
}

func ok(line int64, email string) readResult {
	return readResult{Line: line, Email: email, Attrs: Attributes{}, Tags: []string{}, Status: ContactActive}
}

func TestCSVReaderHandlesFormatOddities(t *testing.T) {
	ana := func(line int64) readResult { r := ok(line, "ana@example.com"); r.First = "Ana"; return r }
	bo := func(line int64) readResult { r := ok(line, "bo@example.com"); r.First = "Bo"; return r }
	long := strings.Repeat("x", MaxCSVRecordBytes+10)
	tests := []struct {
		name  string
		input string
		want  []readResult
	}{
		{"plain LF", "email,first_name\nana@example.com,Ana\nbo@example.com,Bo\n", []readResult{ana(2), bo(3)}},
		{"CRLF and no final newline", "email,first_name\r\nana@example.com,Ana\r\nbo@example.com,Bo", []readResult{ana(2), bo(3)}},
		{"UTF-8 BOM", "\uFEFFEmail,First Name\nana@example.com,Ana\n", []readResult{ana(2)}},
		{"semicolon sniffed", "email;first_name;company\nana@example.com;Ana;\"A, B; C\"\n",
			[]readResult{{Line: 2, Email: "ana@example.com", First: "Ana", Attrs: Attributes{"company": "A, B; C"}, Tags: []string{}, Status: ContactActive}}},
		{"tab sniffed", "email\tfirst_name\nana@example.com\tAna\n", []readResult{ana(2)}},
		{"quoted newline keeps line numbers", "email,first_name,note\nana@example.com,Ana,\"one\r\ntwo\nthree\"\nbo@example.com,Bo,\n",
			[]readResult{{Line: 2, Email: "ana@example.com", First: "Ana", Attrs: Attributes{"note": "one\ntwo\nthree"}, Tags: []string{}, Status: ContactActive}, bo(5)}},
		{"doubled quotes", "email,first_name\n\"ana@example.com\",\"A\"\"na\"\n",
			[]readResult{{Line: 2, Email: "ana@example.com", First: `A"na`, Attrs: Attributes{}, Tags: []string{}, Status: ContactActive}}},
		{"bare quote kept as text", "email,first_name\nana@example.com,5'11\"\n",
			[]readResult{{Line: 2, Email: "ana@example.com", First: `5'11"`, Attrs: Attributes{}, Tags: []string{}, Status: ContactActive}}},
		{"blank and empty rows skipped", "email,first_name\n\n,\r\nana@example.com,Ana\n  \n\n", []readResult{ana(4)}},
		{"ragged rows", "email,first_name\nana@example.com\nana@example.com,Ana,x\nbo@example.com,Bo,,\n",
			[]readResult{{Line: 2, Err: "has 1 fields, the header has 2"}, {Line: 3, Err: "has 3 fields, the header has 2"}, bo(4)}},
		{"invalid UTF-8", "email,first_name\nana@example.com,An\xff\nbo@example.com,Bo\n",
			[]readResult{{Line: 2, Err: "not valid UTF-8"}, bo(3)}},
		{"NUL byte", "email,first_name\nana@example.com,A\x00\nbo@example.com,Bo\n",
			[]readResult{{Line: 2, Err: "NUL byte"}, bo(3)}},
		{"very long line", "email,first_name\nana@example.com," + long + "\nbo@example.com,Bo\n",
			[]readResult{{Line: 2, Err: "longer than 1048576 bytes"}, bo(3)}},
		{"very long quoted field over many lines", "email,first_name\nana@example.com,\"" + strings.Repeat("xx\n", MaxCSVRecordBytes/3+5) + "\"\nbo@example.com,Bo\n",
			[]readResult{{Line: 2, Err: "longer than"}, bo(MaxCSVRecordBytes/3 + 5 + 3)}},
		{"text after closing quote", "email,first_name\nana@example.com,\"An\"a\nbo@example.com,Bo\n",
			[]readResult{{Line: 2, Err: "text after the closing quote of field 2"}, bo(3)}},
		{"quote never closed", "email,first_name\nbo@example.com,Bo\nana@example.com,\"Ana\nx@example.com,X\n",
			[]readResult{bo(2), {Line: 3, Err: "never closed"}}},
		{"invalid email", "email,first_name\nnot-an-email,Ana\n\"ana@example.com\",Ana\n",
			[]readResult{{Line: 2, Err: `email "not-an-email" is not an address`}, ana(3)}},
		{"missing email", "email,first_name\n,Ana\n", []readResult{{Line: 2, Err: "email is empty"}}},
		{"email normalized", "E-Mail\n  Ana@Example.COM \n", []readResult{ok(2, "ana@example.com")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readAll(t, tt.input)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d rows, want %d:\n%+v", len(got), len(tt.want), got)
			}
			for i := range got {
				g, w := got[i], tt.want[i]
				if w.Err != "" {
					if g.Line != w.Line || !strings.Contains(g.Err, w.Err) {
						t.Errorf("row %d: got line %d error %q, want line %d error containing %q", i, g.Line, g.Err, w.Line, w.Err)
					}
					continue
				}
				if diff := cmp.Diff(w, g); diff != "" {
					t.Errorf("row %d (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}

func TestCSVReaderMapsColumns(t *testing.T) {
	input := "E-mail Address,FirstName,Surname,Tags,Status,Consent Source,Company Name,Seats,Zip,Trial,Score,Phone,\n" +
		"ana@example.com,Ana,Lima,VIP|Customer; beta ,Unsubscribed,fair 2026,Acme GmbH,12,01234,TRUE,-3.50,+49 30 1234,\n"
	got := readAll(t, input)
	want := []readResult{{
		Line: 2, Email: "ana@example.com", First: "Ana", Last: "Lima",
		Attrs: Attributes{"company_name": "Acme GmbH", "seats": 12.0, "zip": "01234", "trial": true,
			"score": -3.5, "phone": "+49 30 1234"},
		Tags: []string{"beta", "customer", "vip"}, Status: ContactUnsubscribed, Consent: "fair 2026",
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	r, _ := NewCSVReader(strings.NewReader(input))
	if diff := cmp.Diff([]string{"column 13 has no header and is skipped"}, r.Warnings()); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

func TestCSVReaderRejectsBadStatus(t *testing.T) {
	got := readAll(t, "email,status\nana@example.com,gone\n")
	if len(got) != 1 || !strings.Contains(got[0].Err, `status "gone" is not one of`) {
		t.Errorf("got %+v, want a status row error", got)
	}
}

func TestNewCSVReaderRejectsBadInput(t *testing.T) {
	tests := []struct{ name, input, want string }{
		{"empty", "", "the file is empty"},
		{"only BOM and blank lines", "\uFEFF\n\r\n", "the file is empty"},
		{"no email column", "name,phone\nAna,1\n", `no email column (looked for email, e-mail, email address; found "name", "phone")`},
		{"binary garbage", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8 text"},
		{"zip", "PK\x03\x04\x14\x00\x06\x00", "ZIP archive"},
		{"duplicate column", "email,E-Mail\n", `columns 1 ("email") and 2 ("E-Mail") of the header name the same field`},
		{"duplicate attribute", "email,Plan,plan\n", "name the same field"},
		{"non-ASCII header", "email,país\n", `column 2 of the header, "país", cannot name an attribute`},
		{"leading digit", "email,2fa\n", `"2fa", cannot name an attribute`},
		{"unclosed quote in header", "email,\"name\n", "the header (line 1) is not valid CSV"},
		{"too many attributes", "email" + strings.Repeat(",a", 1)[:0] + manyColumns(MaxAttributes+1) + "\n", "attribute columns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewCSVReader(strings.NewReader(tt.input))
			if ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v (%s), want EINVALID containing %q", err, ErrorCode(err), tt.want)
			}
		})
	}
}

func manyColumns(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(",attr_")
		b.WriteString(strings.Repeat("x", i%3+1))
		b.WriteString(string(rune('a' + i%26)))
		b.WriteString(string(rune('a' + i/26)))
	}
	return b.String()
}

func TestAttributeValueTyping(t *testing.T) {
	for in, want := range map[string]any{
		"42": 42.0, "-3.5": -3.5, "0": 0.0, "0.25": 0.25, "123456789012345": 123456789012345.0,
		"1234567890123456": "1234567890123456", "007": "007", "+1": "+1", "1e5": "1e5", "1.": "1.",
		".5": ".5", "1,5": "1,5", "true": true, "FALSE": false, "yes": "yes", "-": "-", "0.000": 0.0,
	} {
		if got := AttributeValue(in); got != want {
			t.Errorf("AttributeValue(%q) = %#v, want %#v", in, got, want)
		}
	}
}

func TestMergeImportNeverLiftsSuppression(t *testing.T) {
	existing := &Contact{Email: "a@example.com", FirstName: "Ana", Status: ContactBounced,
		Attributes: Attributes{"plan": "pro"}, Tags: []string{"vip"}}
	row := &Contact{Email: "a@example.com", Status: ContactActive, Attributes: Attributes{"plan": "pro"}, Tags: []string{"vip"}}
	if existing.MergeImport(row) || existing.Status != ContactBounced {
		t.Errorf("merge of an equal active row changed a bounced contact: %+v", existing)
	}
	row.Status = ContactUnsubscribed
	if existing.MergeImport(row) || existing.Status != ContactBounced {
		t.Errorf("a suppression replaced another: %+v", existing)
	}
	active := &Contact{Status: ContactActive, Tags: []string{}}
	if !active.MergeImport(row) || active.Status != ContactUnsubscribed {
		t.Errorf("an imported suppression did not apply to an active contact: %+v", active)
	}
}

// FuzzImport checks that the reader never panics and that every data
// record is either returned or reported with its line: encoding/csv is the
// independent parser where it accepts the input.
func FuzzImport(f *testing.F) {
	for _, s := range []string{
		"email,first_name\nana@example.com,Ana\n",
		"\uFEFFemail;tags\r\n\"a@b.co\";\"x|y\"\r\n",
		"email,note\na@b.co,\"l1\nl2\"\nb@b.co,\"\"\"q\"\"\"\n\n",
		"email,x\na@b.co,\"unclosed\nb@b.co,1\n",
		"email,x\na@b.co,1,2\n,\nb@b.co\n\xff,\x00\n",
		"email\tseats\nA@B.CO\t007\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewCSVReader(bytes.NewReader(data))
		if err != nil {
			if ErrorCode(err) != EINVALID {
				t.Fatalf("header error without EINVALID: %v", err)
			}
			return
		}
		var lines []int64
		for {
			c, line, err := r.Next()
			if err == io.EOF {
				break
			}
			var rowErr *RowError
			if err != nil && !errors.As(err, &rowErr) {
				t.Fatalf("Next: %v", err)
			}
			if err == nil {
				if verr := c.Validate(); verr != nil {
					t.Fatalf("returned an invalid contact: %v", verr)
				}
			}
			if len(lines) > 0 && line <= lines[len(lines)-1] || line < 2 {
				t.Fatalf("line %d after %v", line, lines)
			}
			lines = append(lines, line)
		}
		if r.BytesRead() != int64(len(data)) {
			t.Fatalf("BytesRead %d, input %d bytes", r.BytesRead(), len(data))
		}
		want, ok := csvRecordLines(data, r.s.comma)
		if ok && !cmp.Equal(lines, want) {
			t.Fatalf("rows at lines %v, encoding/csv finds data rows at %v", lines, want)
		}
	})
}

// csvRecordLines returns the start lines of the data records that
// encoding/csv finds (records with a non-empty field, after the header),
// and false when encoding/csv refuses the input.
func csvRecordLines(data []byte, comma byte) ([]int64, bool) {
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	cr := csv.NewReader(bytes.NewReader(data))
	cr.Comma = rune(comma)
	cr.FieldsPerRecord = -1
	var lines []int64
	header := true
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return lines, true
		}
		if err != nil {
			return nil, false
		}
		line, _ := cr.FieldPos(0)
		if header {
			header = false
			continue
		}
		if !allEmpty(rec) {
			lines = append(lines, int64(line))
		}
	}
}

// FuzzCSVScanner compares the scanner's records field by field with
// encoding/csv on inputs that encoding/csv accepts.
func FuzzCSVScanner(f *testing.F) {
	for _, s := range []string{"a,b\n\"c\r\nd\",e\r\n", "a;\"\"\"\";\n\n;", "x\r\r\n\"y\"\r"} {
		f.Add([]byte(s), byte(','))
	}
	f.Fuzz(func(t *testing.T, data []byte, comma byte) {
		if comma != ',' && comma != ';' && comma != '\t' {
			comma = ','
		}
		cr := csv.NewReader(bytes.NewReader(data))
		cr.Comma = rune(comma)
		cr.FieldsPerRecord = -1
		want, err := cr.ReadAll()
		if err != nil {
			return
		}
		s := &csvScanner{br: bufioReader(data), line: 1, comma: comma}
		var got [][]string
		for {
			rec, err := s.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if rec.problem != "" {
				if !strings.Contains(rec.problem, "UTF-8") && !strings.Contains(rec.problem, "NUL") {
					t.Fatalf("problem %q on input encoding/csv accepts", rec.problem)
				}
				return
			}
			got = append(got, rec.fields)
		}
		if len(want) == 0 {
			want = nil
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("(-encoding/csv +scanner):\n%s", diff)
		}
	})
}

func bufioReader(data []byte) *bufio.Reader { return bufio.NewReaderSize(bytes.NewReader(data), 16) }
