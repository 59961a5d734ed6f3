package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
)

// TestUserCreateReadsPasswordFromStdin: the user can then sign in with it,
// and a short password or a bad role creates nobody.
func TestUserCreateReadsPasswordFromStdin(t *testing.T) {
	ctx := context.Background()
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "u.db")
	if err := run(ctx, []string{"migrate", "-database", dbURL}, envOf(nil), &syncBuffer{}, &syncBuffer{}); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	e := env{getenv: envOf(nil), stdout: &out, stderr: &syncBuffer{}}
	create := func(stdin string, args ...string) error {
		c := &userCommand{env: e, stdin: strings.NewReader(stdin)}
		return c.Run(ctx, append([]string{"create", "-database", dbURL}, args...))
	}
	if err := create("a long enough password\n", "--email", "Mia@Example.com", "--role", "marketer", "--name", "Mia"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "mia@example.com (marketer)") {
		t.Errorf("output = %q", out.String())
	}
	if err := create("short\n", "--email", "x@example.com", "--role", "sales"); err == nil || !strings.Contains(err.Error(), "12 characters") {
		t.Errorf("short password: %v", err)
	}
	if err := create("a long enough password\n", "--email", "y@example.com", "--role", "boss"); err == nil || !strings.Contains(err.Error(), "role") {
		t.Errorf("bad role: %v", err)
	}
	db, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	u, err := db.AuthenticateUser(ctx, "mia@example.com", "a long enough password")
	if err != nil || u.Role != campaign.RoleMarketer || u.Name != "Mia" {
		t.Fatalf("sign in as the created user: %+v, %v", u, err)
	}
	if us, _ := db.ListUsers(ctx, ""); len(us) != 1 {
		t.Errorf("%d users, want only the valid one", len(us))
	}
}
