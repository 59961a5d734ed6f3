package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDomainRatesParseLowerCasedDomains(t *testing.T) {
	c := Config{DomainRates: "gmail.com:50, Outlook.com:30,yahoo.com:0.5"}
	got, err := c.domainRates()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"gmail.com": 50, "outlook.com": 30, "yahoo.com": 0.5}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("domainRates (-want +got):\n%s", diff)
	}
}

func TestSendingConfigErrorsNameTheVariableAndPosition(t *testing.T) {
	base := map[string]string{"FUNNEL_DATABASE_URL": "sqlite:x.db", "FUNNEL_REDIS_URL": "redis://h:6379",
		"FUNNEL_SMTP_URL": "smtp://h:25", "FUNNEL_PUBLIC_URL": "https://x.example", "FUNNEL_SECRET": strings.Repeat("s", 32)}
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"FUNNEL_DOMAIN_RATES": "gmail.com:50,outlook.com"}, `FUNNEL_DOMAIN_RATES: entry 2 "outlook.com" is not domain:messages-per-second`},
		{map[string]string{"FUNNEL_DOMAIN_RATES": "gmail.com:0"}, `FUNNEL_DOMAIN_RATES: entry 1 "gmail.com:0" is not`},
		{map[string]string{"FUNNEL_DOMAIN_RATES": "gmail.com:5,GMAIL.com:6"}, "FUNNEL_DOMAIN_RATES: entry 2: gmail.com is listed twice"},
		{map[string]string{"FUNNEL_SMTP_URL": "smtp://a:25,smtp://u:hunter2@b:25?rate=x"}, `FUNNEL_SMTP_URL: URL 2 of 2: SMTP URL smtp://u:xxxxx@b:25?rate=x: rate="x"`},
	}
	for _, tt := range tests {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range tt.env {
			env[k] = v
		}
		err := run(context.Background(), []string{"work"}, envOf(env), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%v: error %v, want it to contain %q (and no password)", tt.env, err, tt.want)
		}
	}
}
