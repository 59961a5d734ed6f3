package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

// syncBuffer is a bytes.Buffer safe for the writer goroutine and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

// startDev runs `funnel dev` through run, as main does, and returns the
// admin base URL, the printed API token and a stop function (Ctrl-C). The
// process also stops when the test ends; the test fails if it does not
// stop cleanly. Clicks are scored 1 s after they happen rather than the
// default 30 s: the tests' clicks have no later hits to wait for.
func startDev(t *testing.T, databaseURL string, extra ...string) (base, token string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	args := append([]string{"dev", "-addr", "127.0.0.1:0", "-smtp-addr", "127.0.0.1:0", "-database", databaseURL, "-score-delay", "1s"}, extra...)
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, envOf(nil), &stdout, &stderr) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("funnel dev did not stop cleanly: %v\n%s", err, stderr.String())
				}
			case <-time.After(30 * time.Second):
				t.Errorf("funnel dev did not stop within 30s of cancellation")
			}
		})
	}
	t.Cleanup(stop)
	adminRe := regexp.MustCompile(`admin:\s+(\S+)`)
	tokenRe := regexp.MustCompile(`API token:\s+(\S+)`)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		out := stdout.String()
		if a, tk := adminRe.FindStringSubmatch(out), tokenRe.FindStringSubmatch(out); a != nil && tk != nil {
			return a[1], tk[1], stop
		}
		select {
		case err := <-done:
			t.Fatalf("funnel dev exited early: %v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("funnel dev printed no admin URL and token:\n%s\n%s", stdout.String(), stderr.String())
	return "", "", nil
}

type client struct {
	t     *testing.T
	base  string
	token string
}

func (c client) do(method, path, contentType string, body io.Reader, out any) int {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: decode %q: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

func TestDevEndToEnd(t *testing.T) {
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "dev.db")
	base, token, _ := startDev(t, dbURL, "-demo")
	c := client{t: t, base: base, token: token}

	var ready struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	if code := c.do("GET", "/readyz", "", nil, &ready); code != 200 || ready.Status != "ok" || ready.Checks["redis"] != "ok" {
		t.Fatalf("readyz = %d %+v", code, ready)
	}

	var created struct {
		ID    int64  `json:"id"`
		Email string `json:"email"`
	}
	body := `{"email":"New.Person@Example.com","first_name":"New","attributes":{"plan":"pro"},"tags":["Lead"]}`
	if code := c.do("POST", "/api/v1/contacts", "application/json", strings.NewReader(body), &created); code != 201 {
		t.Fatalf("create contact = %d", code)
	}
	if created.Email != "new.person@example.com" {
		t.Errorf("created email = %q", created.Email)
	}

	csv := "Email;First Name;Company;Tags\r\nimported1@example.com;Ima;Acme;a|b\r\nnot-an-email;Bad;X;\r\nimported2@example.com;Ivo;\"Big; Co\";\r\n"
	var imp struct {
		ID     int64  `json:"id"`
		Status string `json:"status"`
	}
	if code := c.do("POST", "/api/v1/imports?tags=from-e2e", "text/csv", strings.NewReader(csv), &imp); code != 202 {
		t.Fatalf("create import = %d", code)
	}
	var got map[string]any
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		c.do("GET", fmt.Sprintf("/api/v1/imports/%d", imp.ID), "", nil, &got)
		if got["status"] != "running" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	stats, _ := got["stats"].(map[string]any)
	if got["status"] != "done" || stats["inserted"] != 2.0 || stats["invalid"] != 1.0 {
		t.Fatalf("import finished as %v", got)
	}

	var page struct {
		Contacts []struct {
			Email      string         `json:"email"`
			Tags       []string       `json:"tags"`
			Attributes map[string]any `json:"attributes"`
		} `json:"contacts"`
	}
	c.do("GET", "/api/v1/contacts?tag=from-e2e", "", nil, &page)
	if len(page.Contacts) != 2 || page.Contacts[1].Attributes["company"] != "Big; Co" {
		t.Fatalf("imported contacts = %+v", page.Contacts)
	}

	var demoPage struct {
		Contacts []json.RawMessage `json:"contacts"`
	}
	c.do("GET", "/api/v1/contacts?limit=500", "", nil, &demoPage)
	if len(demoPage.Contacts) != 500 {
		t.Errorf("demo seed: first page has %d contacts, want 500", len(demoPage.Contacts))
	}

	if code := (client{t: t, base: base}).do("GET", "/api/v1/contacts", "", nil, nil); code != 401 {
		t.Errorf("contacts without a token = %d, want 401", code)
	}
}

func TestDevRestartKeepsDataAndReplacesToken(t *testing.T) {
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "dev.db")
	base1, token1, stop1 := startDev(t, dbURL, "-demo")
	if code := (client{t: t, base: base1, token: token1}).do("GET", "/api/v1/contacts", "", nil, nil); code != 200 {
		t.Fatalf("first start: list contacts = %d", code)
	}
	stop1()

	base2, token2, _ := startDev(t, dbURL, "-demo")
	if code := (client{t: t, base: base2, token: token1}).do("GET", "/api/v1/contacts", "", nil, nil); code != 401 {
		t.Errorf("the previous start's token still works: %d", code)
	}
	// The printed token is a normal token of an admin user, and the only
	// live one funnel dev made.
	var me struct {
		Role string `json:"role"`
		User *struct {
			Email string `json:"email"`
		} `json:"user"`
	}
	if code := (client{t: t, base: base2, token: token2}).do("GET", "/api/v1/me", "", nil, &me); code != 200 || me.Role != "admin" || me.User == nil || me.User.Email != "dev@funnel.invalid" {
		t.Errorf("GET /api/v1/me with the dev token: %d, role %q, user %+v; want the admin dev@funnel.invalid", code, me.Role, me.User)
	}
	var list struct {
		Tokens []struct {
			Name   string `json:"name"`
			UserID int64  `json:"user_id"`
		} `json:"tokens"`
	}
	if code := (client{t: t, base: base2, token: token2}).do("GET", "/api/v1/tokens", "", nil, &list); code != 200 {
		t.Errorf("list tokens: %d", code)
	}
	tokens, live := list.Tokens, 0
	for _, tk := range tokens {
		if tk.Name == "funnel dev bootstrap" {
			live++
			if tk.UserID == 0 {
				t.Errorf("the dev token belongs to no user: %+v", tk)
			}
		}
	}
	if live != 1 {
		t.Errorf("%d live dev tokens, want 1: %+v", live, tokens)
	}
	var page struct {
		Contacts []json.RawMessage `json:"contacts"`
	}
	c := client{t: t, base: base2, token: token2}
	if code := c.do("GET", "/api/v1/contacts?limit=500&cursor=900", "", nil, &page); code != 200 || len(page.Contacts) != 100 {
		t.Errorf("after restart with -demo: %d contacts after id 900 (status %d), want exactly the 100 of the first seed", len(page.Contacts), code)
	}
}

func TestServeRefusesSchemaBehind(t *testing.T) {
	dbURL := storetest.URL(t, store.SQLite) // a new database that was never migrated
	var stderr bytes.Buffer
	env := envOf(map[string]string{"FUNNEL_SECRET": strings.Repeat("s", 40), "FUNNEL_PUBLIC_URL": "https://mail.example.com"})
	err := run(context.Background(), []string{"serve", "-database", dbURL, "-redis", "redis://127.0.0.1:1/0", "-addr", "127.0.0.1:0"}, env, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "funnel migrate") {
		t.Fatalf("serve on an unmigrated database: %v, want an error that says to run funnel migrate", err)
	}
}

func TestMigrateThenServeStarts(t *testing.T) {
	dbURL := storetest.URL(t, store.SQLite)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"migrate", "-database", dbURL}, envOf(nil), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "applied migrations") {
		t.Errorf("migrate printed %q", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"migrate", "-database", dbURL}, envOf(nil), &out, io.Discard); err != nil || !strings.Contains(out.String(), "current") {
		t.Errorf("second migrate: %q, %v", out.String(), err)
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	// Everything funnel work needs, so that only the flag under test is wrong.
	workEnv := map[string]string{"FUNNEL_DATABASE_URL": "sqlite:x.db", "FUNNEL_REDIS_URL": "redis://h:6379",
		"FUNNEL_SMTP_URL": "smtp://h:25?tls=none", "FUNNEL_PUBLIC_URL": "https://t.example.com", "FUNNEL_SECRET": strings.Repeat("k", 40)}
	tests := []struct {
		args []string
		env  map[string]string
		want []string
	}{
		{[]string{"serve"}, nil, []string{"FUNNEL_DATABASE_URL: is empty", "FUNNEL_REDIS_URL: is empty"}},
		{[]string{"serve"}, map[string]string{"FUNNEL_DATABASE_URL": "mysql://x", "FUNNEL_REDIS_URL": "http://x", "FUNNEL_ADDR": "8080"},
			[]string{"FUNNEL_DATABASE_URL: \"mysql://x\" must start with", "FUNNEL_REDIS_URL:", "FUNNEL_ADDR:"}},
		{[]string{"work", "-log-level", "loud"}, map[string]string{"FUNNEL_DATABASE_URL": "sqlite:x.db", "FUNNEL_REDIS_URL": "redis://h:6379"},
			[]string{"FUNNEL_LOG_LEVEL: \"loud\" is not"}},
		{[]string{"work", "-score-delay", "soon"}, map[string]string{"FUNNEL_DATABASE_URL": "sqlite:x.db", "FUNNEL_REDIS_URL": "redis://h:6379"},
			[]string{"FUNNEL_SCORE_DELAY: \"soon\" is not a duration"}},
		{[]string{"work", "-retry-base", "0"}, workEnv, []string{"-retry-base: 0s is not"}},
		{[]string{"work", "-reconcile-every", "-1s"}, workEnv, []string{"-reconcile-every: -1s is not a positive duration"}},
		{[]string{"work", "-batch-size", "0"}, workEnv, []string{"-batch-size: 0 is less than 1"}},
		{[]string{"work", "-concurrency", "0"}, workEnv, []string{"-concurrency: 0 is less than 1"}},
		{[]string{"migrate"}, map[string]string{"FUNNEL_DATABASE_URL": "sqlite::memory:"}, []string{"FUNNEL_DATABASE_URL: must name a database file"}},
		{[]string{"import"}, nil, []string{"expected one CSV file"}},
		{[]string{"nosuch"}, nil, []string{`unknown command "nosuch"`}},
	}
	for _, tt := range tests {
		err := run(context.Background(), tt.args, envOf(tt.env), io.Discard, io.Discard)
		if err == nil {
			t.Errorf("%v: no error", tt.args)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q does not contain %q", tt.args, err, w)
			}
		}
	}
}

func TestPasswordNotInConfigErrors(t *testing.T) {
	err := run(context.Background(), []string{"migrate"}, envOf(map[string]string{"FUNNEL_DATABASE_URL": "mysql://user:hunter2@db/x"}), io.Discard, io.Discard)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error leaks the password: %v", err)
	}
}

// Every subcommand answers -h with its usage and no error.
func TestEverySubcommandHasHelp(t *testing.T) {
	for _, cs := range commandSummaries {
		var stdout, stderr syncBuffer
		err := run(t.Context(), []string{cs[0], "-h"}, envOf(nil), &stdout, &stderr)
		if !errors.Is(err, flag.ErrHelp) {
			t.Errorf("funnel %s -h: %v, want the help request", cs[0], err)
		}
		if !strings.Contains(stdout.String()+stderr.String(), "Usage: funnel "+cs[0]) {
			t.Errorf("funnel %s -h printed no usage:\n%s%s", cs[0], stdout.String(), stderr.String())
		}
	}
}
