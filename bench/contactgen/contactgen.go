// Package contactgen generates realistic, deterministic contacts for
// benchmarks and large tests: the same seed and row number always give the
// same contact, on every machine and Go version, and row i can be made
// without making the rows before it.
//
// Emails are unique within one seed (they carry the row number). Values
// include what real files hold: accented names, company names with commas
// and quotes (so CSV quoting is exercised), numbers and dates.
package contactgen

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Header is the CSV header that WriteCSV writes.
var Header = []string{"email", "first_name", "last_name", "company", "country", "plan", "seats", "signup_date", "tags"}

// Contact is one generated contact.
type Contact struct {
	Email      string
	FirstName  string
	LastName   string
	Company    string
	Country    string
	Plan       string
	Seats      int
	SignupDate string // YYYY-MM-DD
	Tags       []string
}

// Record returns the contact as a CSV record in Header order; tags are
// joined with '|'.
func (c Contact) Record() []string {
	return []string{c.Email, c.FirstName, c.LastName, c.Company, c.Country, c.Plan,
		strconv.Itoa(c.Seats), c.SignupDate, strings.Join(c.Tags, "|")}
}

// Generator makes contacts for one seed.
type Generator struct{ seed uint64 }

// New returns a generator for seed.
func New(seed int64) *Generator { return &Generator{seed: uint64(seed)} }

type name struct{ display, ascii string }

var (
	firstNames = []name{{"Ana", "ana"}, {"José", "jose"}, {"Zoë", "zoe"}, {"Björn", "bjorn"}, {"Liam", "liam"},
		{"Olivia", "olivia"}, {"Noah", "noah"}, {"Emma", "emma"}, {"Mateo", "mateo"}, {"Sofia", "sofia"},
		{"Yuki", "yuki"}, {"Amara", "amara"}, {"Chen", "chen"}, {"Priya", "priya"}, {"Lukas", "lukas"},
		{"Fatima", "fatima"}, {"Mia", "mia"}, {"Ethan", "ethan"}, {"Léa", "lea"}, {"Omar", "omar"},
		{"Hannah", "hannah"}, {"Ivan", "ivan"}, {"Chloé", "chloe"}, {"Kofi", "kofi"}}
	lastNames = []name{{"Lima", "lima"}, {"Müller", "mueller"}, {"García", "garcia"}, {"Smith", "smith"},
		{"Nguyen", "nguyen"}, {"Kowalski", "kowalski"}, {"Rossi", "rossi"}, {"Tanaka", "tanaka"},
		{"O'Brien", "obrien"}, {"Johnson", "johnson"}, {"Dubois", "dubois"}, {"Andersson", "andersson"},
		{"Patel", "patel"}, {"Okafor", "okafor"}, {"Silva", "silva"}, {"Novák", "novak"}, {"Kim", "kim"},
		{"Schneider", "schneider"}, {"López", "lopez"}, {"Brown", "brown"}}
	companies = []string{"Acme GmbH", "Globex, Inc.", "Initech", "Umbrella Corp", "Hooli", "Vandelay Industries",
		"Stark \"Labs\" Ltd", "Wayne Enterprises", "Soylent S.A.", "Pied Piper", "Aperture Science",
		"Tyrell Corporation", "Cyberdyne Systems", "Wonka & Sons", "Nakatomi Trading", "Oceanic Airlines"}
	domains   = []string{"gmail.com", "outlook.com", "yahoo.com", "proton.me", "example.com", "example.org", "mail.de", "web.de"}
	countries = []string{"DE", "US", "FR", "GB", "BR", "JP", "IN", "ES", "IT", "NL", "SE", "PL", "NG", "CA", "AU"}
	plans     = []string{"free", "free", "free", "starter", "starter", "pro", "enterprise"}
	tagNames  = []string{"newsletter", "customer", "trial", "vip", "webinar-2026", "churn-risk", "beta", "partner"}
	epoch     = time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)
)

// rng is splitmix64: tiny, fast, and fully specified, so the output never
// changes with the standard library.
type rng uint64

func (r *rng) next() uint64 {
	*r += 0x9E3779B97F4A7C15
	z := uint64(*r)
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

// Contact returns the contact of row i (0-based).
func (g *Generator) Contact(i int) Contact {
	r := rng(g.seed*0x2545F4914F6CDD1D + uint64(i))
	r.next()
	first, last := firstNames[r.intn(len(firstNames))], lastNames[r.intn(len(lastNames))]
	c := Contact{
		FirstName:  first.display,
		LastName:   last.display,
		Company:    companies[r.intn(len(companies))],
		Country:    countries[r.intn(len(countries))],
		Plan:       plans[r.intn(len(plans))],
		Seats:      1 + r.intn(500),
		SignupDate: epoch.AddDate(0, 0, r.intn(2900)).Format("2006-01-02"),
	}
	c.Email = fmt.Sprintf("%s.%s.%d@%s", first.ascii, last.ascii, i, domains[r.intn(len(domains))])
	c.Tags = []string{}
	for n := r.intn(4); n > 0; n-- {
		c.Tags = append(c.Tags, tagNames[r.intn(len(tagNames))])
	}
	return c
}

// WriteCSV writes Header and rows 0 to n-1 to w as comma-separated CSV
// with LF line ends.
func (g *Generator) WriteCSV(w io.Writer, n int) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(Header); err != nil {
		return err
	}
	for i := range n {
		if err := cw.Write(g.Contact(i).Record()); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// Reader returns the CSV of WriteCSV as a stream, generated as it is read.
func (g *Generator) Reader(n int) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(g.WriteCSV(pw, n)) }()
	return pr
}
