package mailer

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSMTPServersReadsEachURLWithItsPoolParameters(t *testing.T) {
	in := "smtp://a.example.com:587?weight=3&max_conns=10&rate=50.5, smtps://u:p%2Cw@b.example.com?rate=20," +
		"smtp://localhost:1025?tls=none&weight=1,smtp://other:pw@a.example.com:587"
	want := []ServerConfig{
		{Config: Config{Host: "a.example.com", Port: 587, TLS: TLSMandatory}, Weight: 3, MaxConns: 10, Rate: 50.5},
		{Config: Config{Host: "b.example.com", Port: 465, Username: "u", Password: "p,w", TLS: TLSImplicit}, Rate: 20},
		{Config: Config{Host: "localhost", Port: 1025, TLS: TLSNone}, Weight: 1},
		// Same host and port as the first: a distinct name keeps its rate
		// limit and metrics apart.
		{Name: "a.example.com:587#4", Config: Config{Host: "a.example.com", Port: 587, Username: "other", Password: "pw", TLS: TLSMandatory}},
	}
	got, err := ParseSMTPServers(in)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseSMTPServers (-want +got):\n%s", diff)
	}
	first, err := ParseSMTPURL(in)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want[0].Config, first); diff != "" {
		t.Errorf("ParseSMTPURL of a list is the first server (-want +got):\n%s", diff)
	}
}

func TestParseSMTPServersErrorsNameThePositionButNotThePassword(t *testing.T) {
	tests := map[string]string{
		"smtp://a:25,smtp://u:hunter2@b:25?weight=0":         `URL 2 of 2: SMTP URL smtp://u:xxxxx@b:25?weight=0: weight="0": want a whole number of at least 1`,
		"smtp://u:hunter2@a:25?max_conns=x,smtp://b:25":      `URL 1 of 2: SMTP URL smtp://u:xxxxx@a:25?max_conns=x: max_conns="x": want a whole number of at least 1`,
		"smtp://a:25,smtp://b:25,smtp://u:hunter2@c?rate=-1": `URL 3 of 3: SMTP URL smtp://u:xxxxx@c?rate=-1: rate="-1": want messages per second, a number of at least 0`,
		"smtp://a:25,,smtp://b:25":                           "URL 2 of 3: SMTP URL is empty",
		"smtp://a:25,":                                       "URL 2 of 2: SMTP URL is empty",
		// A raw comma in a password splits the URL: no part of it is echoed.
		"smtp://u:hun,ter2@a:25":                    "URL 1 of 2: SMTP URL is not a URL of the form smtp://user:password@host:port",
		"smtp://u:hunter2@a:25,x:ter2@b":            "URL 2 of 2: SMTP URL does not start with smtp:// or smtps:// (write a comma in a password as %2C)",
		"smtp://u:hunter2@a:25?weight=2&priority=1": `SMTP URL smtp://u:xxxxx@a:25?weight=2&priority=1: unknown parameter "priority" (known: tls, weight, max_conns, rate, pool)`,
	}
	for in, want := range tests {
		_, err := ParseSMTPServers(in)
		if err == nil || err.Error() != want {
			t.Errorf("ParseSMTPServers(%q) error = %v, want %q", in, err, want)
		}
		if err != nil && (strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "ter2")) {
			t.Errorf("ParseSMTPServers(%q) error %q repeats the password", in, err)
		}
	}
}
