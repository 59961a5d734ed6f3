package campaign

import "strings"

// Sort orders a listing by one of the keys that listing accepts (each
// documents its own), ascending, or descending when Desc is set. Rows with
// equal keys are ordered by ID, and a descending sort is the exact reverse
// of the ascending one, so that keyset pages in either direction neither
// skip nor repeat a row. The zero Sort is the listing's default order.
type Sort struct {
	Key  string
	Desc bool
}

// ParseSort reads the API's form of a sort: "key", or "-key" for
// descending. The empty string is the zero Sort. It does not check the
// key; the listing does.
func ParseSort(s string) Sort {
	if k, ok := strings.CutPrefix(s, "-"); ok {
		return Sort{Key: k, Desc: true}
	}
	return Sort{Key: s}
}

// String is the API's form of s ("email", "-email"); "" for the zero Sort.
func (s Sort) String() string {
	if s.Desc {
		return "-" + s.Key
	}
	return s.Key
}
