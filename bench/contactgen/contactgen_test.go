package contactgen_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"fmt"
	"testing"

	"github.com/funnel-email/funnel/bench/contactgen"
)

func TestWriteCSVIsDeterministicAndValidCSV(t *testing.T) {
	var a, b bytes.Buffer
	if err := contactgen.New(3).WriteCSV(&a, 2000); err != nil {
		t.Fatal(err)
	}
	if err := contactgen.New(3).WriteCSV(&b, 2000); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("the same seed gave different files")
	}
	records, err := csv.NewReader(bytes.NewReader(a.Bytes())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 2001 || fmt.Sprint(records[0]) != fmt.Sprint(contactgen.Header) {
		t.Fatalf("got %d records, header %v", len(records), records[0])
	}
	seen := map[string]bool{}
	for _, r := range records[1:] {
		if seen[r[0]] {
			t.Fatalf("email %s repeats", r[0])
		}
		seen[r[0]] = true
	}
	var c bytes.Buffer
	_ = contactgen.New(4).WriteCSV(&c, 2000)
	if sha256.Sum256(a.Bytes()) == sha256.Sum256(c.Bytes()) {
		t.Error("different seeds gave the same file")
	}
}

func TestContactIsRandomAccess(t *testing.T) {
	g := contactgen.New(9)
	var buf bytes.Buffer
	_ = g.WriteCSV(&buf, 50)
	records, _ := csv.NewReader(&buf).ReadAll()
	if got, want := fmt.Sprint(g.Contact(42).Record()), fmt.Sprint(records[43]); got != want {
		t.Errorf("Contact(42) = %s, row 42 of the file = %s", got, want)
	}
}
