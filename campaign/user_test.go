package campaign

import (
	"errors"
	"testing"
	"time"
)

// TestParseLocalTimeUsesTheOffsetOfThatDate: a wall-clock time is read
// with the zone's offset on its own date, daylight saving included; a
// time the clocks skip is refused naming the field, and a repeated time
// is its first occurrence.
func TestParseLocalTimeUsesTheOffsetOfThatDate(t *testing.T) {
	berlin, err := LoadTimeZone("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ in, want string }{
		{"2026-01-15T09:00", "2026-01-15T09:00:00+01:00"},
		{"2026-07-15T09:00", "2026-07-15T09:00:00+02:00"},
		{"2026-03-29T01:59:59", "2026-03-29T01:59:59+01:00"},
		{"2026-03-29T03:00", "2026-03-29T03:00:00+02:00"},
		{"2026-10-25T02:30", "2026-10-25T02:30:00+02:00"}, // happens twice: the first
		{"2026-10-25 03:30", "2026-10-25T03:30:00+01:00"},
	} {
		got, err := ParseLocalTime(tc.in, berlin, "send_at")
		if err != nil || got.Format(time.RFC3339) != tc.want {
			t.Errorf("ParseLocalTime(%q) = %s, %v; want %s", tc.in, got.Format(time.RFC3339), err, tc.want)
		}
	}
	for _, in := range []string{"2026-03-29T02:30", "tomorrow", "2026-02-30T10:00", ""} {
		_, err := ParseLocalTime(in, berlin, "send_at")
		var e *Error
		if !errors.As(err, &e) || e.Code != EINVALID || e.Details[0].Field != "send_at" {
			t.Errorf("ParseLocalTime(%q): %v, want EINVALID naming send_at", in, err)
		}
	}
}

// TestUserTimeZoneDefaultsToUTCAndIsChecked.
func TestUserTimeZoneDefaultsToUTCAndIsChecked(t *testing.T) {
	u := &User{Email: "a@example.com", Role: RoleSales}
	if err := u.Validate(); err != nil || u.TimeZone != "UTC" {
		t.Fatalf("no zone: %q %v, want UTC", u.TimeZone, err)
	}
	for _, bad := range []string{"Local", "Europe/Atlantis", "../../etc/passwd"} {
		u.TimeZone = bad
		var e *Error
		if err := u.Validate(); !errors.As(err, &e) || e.Details[0].Field != "time_zone" {
			t.Errorf("zone %q: %v, want EINVALID naming time_zone", bad, err)
		}
	}
}

// TestUserPatchKeepsTheFirstDisableTime: disabling a disabled user keeps
// when it happened; enabling clears it.
func TestUserPatchKeepsTheFirstDisableTime(t *testing.T) {
	first := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	yes, no := true, false
	u := &User{}
	UserPatch{Disabled: &yes}.Apply(u, first)
	UserPatch{Disabled: &yes}.Apply(u, first.Add(time.Hour))
	if u.DisabledAt == nil || !u.DisabledAt.Equal(first) {
		t.Fatalf("disabled at %v, want %v", u.DisabledAt, first)
	}
	UserPatch{Disabled: &no}.Apply(u, first)
	if u.DisabledAt != nil || !u.Active() {
		t.Errorf("enabled user has disabled_at %v", u.DisabledAt)
	}
}
