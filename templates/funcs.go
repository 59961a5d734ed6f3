package templates

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// funcMap returns the functions templates may call. zones caches time
// zones for one Compiled.
func funcMap(zones *zoneCache) map[string]any {
	return map[string]any{
		"default": defaultValue,
		"upper":   func(v any) string { return strings.ToUpper(str(v)) },
		"lower":   func(v any) string { return strings.ToLower(str(v)) },
		"title":   func(v any) string { return title(str(v)) },
		"trim":    func(v any) string { return strings.TrimSpace(str(v)) },
		"date":    zones.date,
		// printf replaces the built-in: a width such as %999999999d would
		// make one render allocate gigabytes.
		"printf": boundedPrintf,
	}
}

// str turns a template value into text without reflection for strings.
func str(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// defaultValue returns v unless it is empty (nil, or a string of only
// spaces), in which case it returns def. Zero and false are values, not
// empty: an attribute "seats" of 0 prints 0.
func defaultValue(def, v any) any {
	switch x := v.(type) {
	case nil:
		return def
	case string:
		if strings.TrimSpace(x) == "" {
			return def
		}
	}
	return v
}

// title upper-cases the first letter of every word.
func title(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	start := true
	for _, r := range s {
		if start && unicode.IsLetter(r) {
			r = unicode.ToTitle(r)
		}
		start = unicode.IsSpace(r) || r == '-'
		b.WriteRune(r)
	}
	return b.String()
}

const maxPrintfWidth = 100

var errPrintfWidth = fmt.Errorf("widths and precisions above %d and * are not allowed", maxPrintfWidth)

// boundedPrintf is fmt.Sprintf refusing widths or precisions above
// maxPrintfWidth and '*' arguments.
func boundedPrintf(format string, args ...any) (string, error) {
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		n := 0
		for i++; i < len(format) && strings.IndexByte("+-# 0123456789.*[]", format[i]) >= 0; i++ {
			switch c := format[i]; {
			case c == '*':
				return "", errPrintfWidth
			case c >= '0' && c <= '9':
				if n = n*10 + int(c-'0'); n > maxPrintfWidth {
					return "", errPrintfWidth
				}
			default:
				n = 0
			}
		}
	}
	return fmt.Sprintf(format, args...), nil
}

// zoneCache loads time zones by name once per Compiled.
type zoneCache struct {
	mu    sync.Mutex
	zones map[string]*time.Location
}

const maxZones = 64

var zoneName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}$`)

func (z *zoneCache) load(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if loc, ok := z.zones[name]; ok {
		return loc, nil
	}
	if !zoneName.MatchString(name) || name == "Local" {
		return nil, fmt.Errorf("%q is not a time zone name such as Europe/Paris", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	if z.zones == nil {
		z.zones = map[string]*time.Location{}
	}
	if len(z.zones) < maxZones {
		z.zones[name] = loc
	}
	return loc, nil
}

// date formats t with a Go layout ("2 Jan 2006 15:04") in the named time
// zone ("" is UTC). t is a time.Time or a string in RFC 3339 or
// "2006-01-02" form, so date attributes work too.
func (z *zoneCache) date(layout, zone string, t any) (string, error) {
	if utf8.RuneCountInString(layout) > 100 {
		return "", errors.New("layout longer than 100 characters")
	}
	var tm time.Time
	switch v := t.(type) {
	case time.Time:
		tm = v
	case *time.Time:
		if v == nil {
			return "", nil
		}
		tm = *v
	case string:
		if v == "" {
			return "", nil
		}
		var err error
		if tm, err = time.Parse(time.RFC3339, v); err != nil {
			if tm, err = time.Parse(time.DateOnly, v); err != nil {
				return "", fmt.Errorf("%q is not a date (2006-01-02 or RFC 3339)", v)
			}
		}
	default:
		return "", fmt.Errorf("cannot format a %T", t)
	}
	loc, err := z.load(zone)
	if err != nil {
		return "", err
	}
	return tm.In(loc).Format(layout), nil
}
