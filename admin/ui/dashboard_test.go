package ui

import "testing"

// TestDashboardNumberFormats: counts are grouped by thousands, and an
// estimate is rounded to three significant digits before it is shown.
func TestDashboardNumberFormats(t *testing.T) {
	for _, tt := range []struct {
		n              int64
		grouped, round string
	}{
		{0, "0", "0"},
		{999, "999", "999"},
		{1000, "1,000", "1,000"},
		{12345, "12,345", "12,300"},
		{999812, "999,812", "1,000,000"},
		{1234567, "1,234,567", "1,230,000"},
	} {
		if got := groupDigits(tt.n); got != tt.grouped {
			t.Errorf("groupDigits(%d) = %q, want %q", tt.n, got, tt.grouped)
		}
		if got := groupDigits(roundSignificant(tt.n, 3)); got != tt.round {
			t.Errorf("rounded %d = %q, want %q", tt.n, got, tt.round)
		}
	}
}
