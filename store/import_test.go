package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/funnel-email/funnel/bench/contactgen"
	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

// stored is the part of a contact an import decides.
type stored struct {
	First, Last string
	Attrs       campaign.Attributes
	Tags        []string
	Status      campaign.ContactStatus
	Consent     string
}

func importCSV(t *testing.T, db *store.DB, input string, opts campaign.ImportOptions, batch int) campaign.ImportStats {
	t.Helper()
	r, err := campaign.NewCSVReader(strings.NewReader(input))
	if err != nil {
		t.Fatalf("NewCSVReader: %v", err)
	}
	var last campaign.ImportStats
	calls := 0
	stats, err := db.ImportContactsBatched(context.Background(), r, opts, batch, func(s campaign.ImportStats) {
		calls++
		if s.RowsRead < last.RowsRead || s.Inserted < last.Inserted {
			t.Errorf("progress went backwards: %+v after %+v", s, last)
		}
		last = s
	})
	if err != nil {
		t.Fatalf("ImportContacts: %v", err)
	}
	if calls == 0 || !cmp.Equal(last, stats) {
		t.Errorf("last progress %+v (of %d calls) differs from the result %+v", last, calls, stats)
	}
	if stats.BytesRead != int64(len(input)) {
		t.Errorf("BytesRead = %d, want %d", stats.BytesRead, len(input))
	}
	if n := stats.Inserted + stats.Updated + stats.Unchanged + stats.Invalid; n != stats.RowsRead {
		t.Errorf("counts %+v add up to %d, not RowsRead %d", stats, n, stats.RowsRead)
	}
	return stats
}

func findStored(t *testing.T, db *store.DB, email string) stored {
	t.Helper()
	c, err := db.FindContactByEmail(context.Background(), email)
	if err != nil {
		t.Fatalf("find %s: %v", email, err)
	}
	return stored{First: c.FirstName, Last: c.LastName, Attrs: c.Attributes, Tags: c.Tags, Status: c.Status, Consent: c.ConsentSource}
}

type counts struct{ Rows, Inserted, Updated, Unchanged, Invalid int64 }

func countsOf(s campaign.ImportStats) counts {
	return counts{s.RowsRead, s.Inserted, s.Updated, s.Unchanged, s.Invalid}
}

func TestImportContactsStoresEveryCSVOddity(t *testing.T) {
	long := strings.Repeat("x", campaign.MaxCSVRecordBytes+1)
	tests := []struct {
		name       string
		input      string
		want       counts
		errorLines []int64
		contacts   map[string]stored
	}{
		{
			name:  "BOM, CRLF, aliases, typed attributes, tags",
			input: "\uFEFFE-Mail,FirstName,Surname,Company,Seats,Zip,Trial,Tags\r\nAna@Example.com,Ana,Lima,\"Globex, Inc.\",12,01234,true,VIP|beta;Beta\r\n",
			want:  counts{Rows: 1, Inserted: 1},
			contacts: map[string]stored{"ana@example.com": {First: "Ana", Last: "Lima", Status: campaign.ContactActive,
				Attrs: campaign.Attributes{"company": "Globex, Inc.", "seats": 12.0, "zip": "01234", "trial": true},
				Tags:  []string{"beta", "vip"}}},
		},
		{
			name:  "semicolons and a quoted field with line breaks",
			input: "email;first_name;note\nana@example.com;Ana;\"line one\r\nline two; \"\"quoted\"\"\"\nbo@example.com;Bo;\n",
			want:  counts{Rows: 2, Inserted: 2},
			contacts: map[string]stored{
				"ana@example.com": {First: "Ana", Status: campaign.ContactActive, Tags: []string{},
					Attrs: campaign.Attributes{"note": "line one\nline two; \"quoted\""}},
				"bo@example.com": {First: "Bo", Status: campaign.ContactActive, Tags: []string{}, Attrs: campaign.Attributes{}},
			},
		},
		{
			name: "bad rows are reported with their physical lines and the good ones kept",
			input: "email,first_name\n" +
				"ana@example.com,\"Ana\nMaria\"\n" + // lines 2-3
				"not-an-email,X\n" + // 4
				"bo@example.com,Bo,extra\n" + // 5
				"cy@example.com,C\xffy\n" + // 6
				"di@example.com," + long + "\n" + // 7
				"ed@example.com,\"Ed\"x\n" + // 8
				"fe@example.com,Fe\x00\n" + // 9
				"\n" + // 10, blank
				"gi@example.com,Gi\n", // 11
			want:       counts{Rows: 8, Inserted: 2, Invalid: 6},
			errorLines: []int64{4, 5, 6, 7, 8, 9},
			contacts: map[string]stored{
				"ana@example.com": {First: "Ana\nMaria", Status: campaign.ContactActive, Tags: []string{}, Attrs: campaign.Attributes{}},
				"gi@example.com":  {First: "Gi", Status: campaign.ContactActive, Tags: []string{}, Attrs: campaign.Attributes{}},
			},
		},
		{
			name:       "a quote that never closes swallows the rest of the file into one bad row",
			input:      "email,first_name\nana@example.com,Ana\nbo@example.com,\"Bo\ncy@example.com,Cy\n",
			want:       counts{Rows: 2, Inserted: 1, Invalid: 1},
			errorLines: []int64{3},
			contacts:   map[string]stored{"ana@example.com": {First: "Ana", Status: campaign.ContactActive, Tags: []string{}, Attrs: campaign.Attributes{}}},
		},
		{
			name:  "status column adds suppression to new contacts",
			input: "email,status\nana@example.com,Unsubscribed\nbo@example.com,\n",
			want:  counts{Rows: 2, Inserted: 2},
			contacts: map[string]stored{
				"ana@example.com": {Status: campaign.ContactUnsubscribed, Tags: []string{}, Attrs: campaign.Attributes{}},
				"bo@example.com":  {Status: campaign.ContactActive, Tags: []string{}, Attrs: campaign.Attributes{}},
			},
		},
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx := context.Background()
				if _, err := db.ExecContext(ctx, "DELETE FROM contacts"); err != nil {
					t.Fatal(err)
				}
				stats := importCSV(t, db, tt.input, campaign.ImportOptions{}, 0)
				if diff := cmp.Diff(tt.want, countsOf(stats)); diff != "" {
					t.Errorf("counts (-want +got):\n%s", diff)
				}
				var lines []int64
				for _, e := range stats.Errors {
					lines = append(lines, e.Line)
				}
				if diff := cmp.Diff(tt.errorLines, lines); diff != "" {
					t.Errorf("error lines (-want +got):\n%s\nerrors: %+v", diff, stats.Errors)
				}
				if n, _ := db.CountContacts(ctx); n != int64(len(tt.contacts)) {
					t.Errorf("%d contacts stored, want %d", n, len(tt.contacts))
				}
				for email, want := range tt.contacts {
					if diff := cmp.Diff(want, findStored(t, db, email)); diff != "" {
						t.Errorf("%s (-want +got):\n%s", email, diff)
					}
				}
			})
		}
	})
}

func TestImportNeverReactivatesSuppressedContacts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for email, status := range map[string]campaign.ContactStatus{
			"un@example.com": campaign.ContactUnsubscribed, "bo@example.com": campaign.ContactBounced,
			"co@example.com": campaign.ContactComplained, "ac@example.com": campaign.ContactActive,
		} {
			if err := db.CreateContact(ctx, &campaign.Contact{Email: email, Status: status}); err != nil {
				t.Fatal(err)
			}
		}
		input := "email,first_name,status\nun@example.com,Una,active\nbo@example.com,Bob,\nco@example.com,Col,unsubscribed\nac@example.com,,bounced\n"
		stats := importCSV(t, db, input, campaign.ImportOptions{UpdateExisting: true}, 0)
		if diff := cmp.Diff(counts{Rows: 4, Updated: 4}, countsOf(stats)); diff != "" {
			t.Errorf("counts (-want +got):\n%s", diff)
		}
		for email, want := range map[string]campaign.ContactStatus{
			"un@example.com": campaign.ContactUnsubscribed, "bo@example.com": campaign.ContactBounced,
			"co@example.com": campaign.ContactComplained, "ac@example.com": campaign.ContactBounced,
		} {
			if got := findStored(t, db, email); got.Status != want {
				t.Errorf("%s: status %s, want %s", email, got.Status, want)
			}
		}
		if got := findStored(t, db, "un@example.com"); got.First != "Una" {
			t.Errorf("the name of a suppressed contact was not updated: %+v", got)
		}
	})
}

func TestImportMergesIntoExistingContacts(t *testing.T) {
	input := "email,first_name,last_name,plan,seats,tags,consent_source\n" +
		"ana@example.com,,Lima,pro,5,new|VIP|a-c,form\n" + // merged
		"bo@example.com,Bo,Berg,free,,old,\n" // equal to what is stored
	seed := func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for _, c := range []*campaign.Contact{
			{Email: "ana@example.com", FirstName: "Ana", LastName: "Old", Tags: []string{"vip", "old", "ab"},
				Attributes: campaign.Attributes{"plan": "free", "country": "DE"}, ConsentSource: "fair"},
			{Email: "bo@example.com", FirstName: "Bo", LastName: "Berg", Tags: []string{"old"},
				Attributes: campaign.Attributes{"plan": "free"}},
		} {
			if err := db.CreateContact(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		seed(t, db)
		stats := importCSV(t, db, input, campaign.ImportOptions{Tags: []string{"Imported"}}, 0)
		if diff := cmp.Diff(counts{Rows: 2, Unchanged: 2}, countsOf(stats)); diff != "" {
			t.Errorf("without UpdateExisting, counts (-want +got):\n%s", diff)
		}
		if got := findStored(t, db, "ana@example.com"); got.Last != "Old" || len(got.Tags) != 3 {
			t.Errorf("without UpdateExisting a contact changed: %+v", got)
		}

		stats = importCSV(t, db, input, campaign.ImportOptions{UpdateExisting: true}, 0)
		if diff := cmp.Diff(counts{Rows: 2, Updated: 1, Unchanged: 1}, countsOf(stats)); diff != "" {
			t.Errorf("with UpdateExisting, counts (-want +got):\n%s", diff)
		}
		want := stored{First: "Ana", Last: "Lima", Status: campaign.ContactActive, Consent: "fair",
			Attrs: campaign.Attributes{"plan": "pro", "country": "DE", "seats": 5.0},
			Tags:  []string{"a-c", "ab", "new", "old", "vip"}} // byte order, whatever the database collation
		if diff := cmp.Diff(want, findStored(t, db, "ana@example.com")); diff != "" {
			t.Errorf("merged contact (-want +got):\n%s", diff)
		}

		stats = importCSV(t, db, input, campaign.ImportOptions{UpdateExisting: true, Tags: []string{"Imported"}}, 0)
		if diff := cmp.Diff(counts{Rows: 2, Updated: 2}, countsOf(stats)); diff != "" {
			t.Errorf("with an added tag, counts (-want +got):\n%s", diff)
		}
		if got := findStored(t, db, "bo@example.com"); !cmp.Equal(got.Tags, []string{"imported", "old"}) {
			t.Errorf("option tag not added: %v", got.Tags)
		}
	})
}

func TestImportAppliesRepeatedEmailsInFileOrder(t *testing.T) {
	input := "email,first_name,plan\n" +
		"ana@example.com,Ana,free\n" +
		"bo@example.com,Bo,free\n" +
		"ANA@example.com,Anna,\n" + // changes the name
		"ana@example.com,Anna,\n" // changes nothing
	for _, tt := range []struct {
		update bool
		want   counts
		first  string
	}{
		{false, counts{Rows: 4, Inserted: 2, Unchanged: 2}, "Ana"},
		{true, counts{Rows: 4, Inserted: 2, Updated: 1, Unchanged: 1}, "Anna"},
	} {
		t.Run(fmt.Sprintf("update=%v", tt.update), func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, db *store.DB) {
				for _, batch := range []int{1, 2, 3, 0} {
					if _, err := db.ExecContext(context.Background(), "DELETE FROM contacts"); err != nil {
						t.Fatal(err)
					}
					stats := importCSV(t, db, input, campaign.ImportOptions{UpdateExisting: tt.update}, batch)
					if diff := cmp.Diff(tt.want, countsOf(stats)); diff != "" {
						t.Errorf("update=%v batch=%d: counts (-want +got):\n%s", tt.update, batch, diff)
					}
					got := findStored(t, db, "ana@example.com")
					if got.First != tt.first || got.Attrs["plan"] != "free" {
						t.Errorf("update=%v batch=%d: stored %+v, want first name %s and plan free", tt.update, batch, got, tt.first)
					}
				}
			})
		})
	}
}

func TestImportGeneratedRowsAndReimport(t *testing.T) {
	if testing.Short() {
		t.Skip("imports 100,000 rows")
	}
	const n = 100000
	var csv bytes.Buffer
	gen := contactgen.New(7)
	if err := gen.WriteCSV(&csv, n); err != nil {
		t.Fatal(err)
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		stats := importCSV(t, db, csv.String(), campaign.ImportOptions{}, 0)
		if diff := cmp.Diff(counts{Rows: n, Inserted: n}, countsOf(stats)); diff != "" {
			t.Fatalf("first import (-want +got):\n%s\nerrors: %v", diff, stats.Errors)
		}
		if got, _ := db.CountContacts(ctx); got != n {
			t.Errorf("%d contacts stored, want %d", got, n)
		}
		for _, i := range []int{0, 4242, n - 1} {
			g := gen.Contact(i)
			got, err := db.FindContactByEmail(ctx, g.Email)
			if err != nil {
				t.Fatal(err)
			}
			want := &campaign.Contact{Email: g.Email, FirstName: g.FirstName, LastName: g.LastName,
				Attributes: campaign.Attributes{"company": g.Company, "country": g.Country, "plan": g.Plan,
					"seats": float64(g.Seats), "signup_date": g.SignupDate},
				Tags: campaign.NormalizeTags(g.Tags), Status: campaign.ContactActive}
			opt := cmpopts.IgnoreFields(campaign.Contact{}, "ID", "CreatedAt", "UpdatedAt")
			if diff := cmp.Diff(want, got, opt); diff != "" {
				t.Errorf("row %d (-generated +stored):\n%s", i, diff)
			}
		}
		for _, update := range []bool{false, true} {
			stats = importCSV(t, db, csv.String(), campaign.ImportOptions{UpdateExisting: update}, 0)
			if diff := cmp.Diff(counts{Rows: n, Unchanged: n}, countsOf(stats)); diff != "" {
				t.Errorf("re-import with UpdateExisting=%v (-want +got):\n%s", update, diff)
			}
		}
	})
}

func TestImportStopsOnDatabaseErrorAndKeepsCommittedBatches(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var csv bytes.Buffer
		if err := contactgen.New(1).WriteCSV(&csv, 50); err != nil {
			t.Fatal(err)
		}
		r, err := campaign.NewCSVReader(&csv)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		stats, err := db.ImportContactsBatched(ctx, r, campaign.ImportOptions{}, 10, func(s campaign.ImportStats) {
			if s.Inserted == 20 {
				cancel()
			}
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		// Writers run concurrently on Postgres: a batch that committed while
		// the context was cancelled counts too. What matters is that the
		// stats tell exactly what was kept and that the import stopped.
		n, _ := db.CountContacts(context.Background())
		if stats.Inserted != n || n < 20 || n >= 50 || n%10 != 0 {
			t.Errorf("stats.Inserted = %d, %d contacts kept; want equal whole batches, at least 20 and fewer than 50", stats.Inserted, n)
		}
	})
}

func TestImportRejectsInvalidOptions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r, _ := campaign.NewCSVReader(strings.NewReader("email\na@example.com\n"))
		_, err := db.ImportContacts(context.Background(), r, campaign.ImportOptions{Tags: []string{strings.Repeat("t", 101)}}, nil)
		if campaign.ErrorCode(err) != campaign.EINVALID {
			t.Errorf("got %v, want EINVALID", err)
		}
	})
}

func TestImportJobLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		opts := campaign.ImportOptions{UpdateExisting: true, Tags: []string{" Fair "}, ConsentSource: "fair"}
		im, err := db.CreateImport(ctx, "contacts.csv", 1234, opts)
		if err != nil {
			t.Fatal(err)
		}
		if im.Status != store.ImportRunning || im.Filename != "contacts.csv" || im.BytesTotal != 1234 ||
			!cmp.Equal(im.Options.Tags, []string{"fair"}) || im.FinishedAt != nil {
			t.Errorf("created %+v", im)
		}
		progress := campaign.ImportStats{BytesRead: 600, RowsRead: 10, Inserted: 8, Invalid: 2,
			Errors: []campaign.ImportRowError{{Line: 3, Message: "email is empty"}, {Line: 7, Message: "bad"}}}
		if err := db.UpdateImportProgress(ctx, im.ID, progress); err != nil {
			t.Fatal(err)
		}
		got, err := db.FindImport(ctx, im.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(progress, got.Stats); diff != "" || got.Status != store.ImportRunning {
			t.Errorf("progress (-want +got):\n%s", diff)
		}
		final := progress
		final.BytesRead, final.RowsRead, final.Inserted = 1234, 20, 18
		if err := db.FinishImport(ctx, im.ID, final, nil); err != nil {
			t.Fatal(err)
		}
		got, _ = db.FindImport(ctx, im.ID)
		if got.Status != store.ImportDone || got.FinishedAt == nil || !cmp.Equal(final, got.Stats) {
			t.Errorf("finished %+v", got)
		}
		if err := db.FinishImport(ctx, im.ID, final, errors.New("late")); campaign.ErrorCode(err) != campaign.ECONFLICT {
			t.Errorf("finishing twice: got %v, want ECONFLICT", err)
		}
		if err := db.UpdateImportProgress(ctx, 999, final); campaign.ErrorCode(err) != campaign.ENOTFOUND {
			t.Errorf("unknown import: got %v, want ENOTFOUND", err)
		}

		failed, _ := db.CreateImport(ctx, "b.csv", 0, campaign.ImportOptions{})
		err = db.FinishImport(ctx, failed.ID, campaign.ImportStats{}, campaign.Errorf(campaign.EINVALID, "the file is empty"))
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := db.FindImport(ctx, failed.ID); got.Status != store.ImportFailed || got.Failure != "the file is empty" {
			t.Errorf("failed import %+v", got)
		}

		stale, _ := db.CreateImport(ctx, "c.csv", 0, campaign.ImportOptions{})
		if n, err := db.FailStaleImports(ctx, time.Hour); err != nil || n != 0 {
			t.Errorf("FailStaleImports(1h) = %d, %v; want 0 for a fresh import", n, err)
		}
		later := time.Now().UTC().Add(2 * time.Hour).Truncate(time.Microsecond)
		store.SetImportTestClock(db, func() time.Time { return later })
		if n, err := db.FailStaleImports(ctx, time.Hour); err != nil || n != 1 {
			t.Errorf("FailStaleImports(1h) two hours later = %d, %v; want 1", n, err)
		}
		if got, _ := db.FindImport(ctx, stale.ID); got.Status != store.ImportFailed || !strings.HasPrefix(got.Failure, "interrupted") {
			t.Errorf("stale import %+v", got)
		}
		if _, err := db.FindImport(ctx, 999); campaign.ErrorCode(err) != campaign.ENOTFOUND {
			t.Errorf("FindImport(999): got %v, want ENOTFOUND", err)
		}
	})
}
