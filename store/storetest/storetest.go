// Package storetest gives tests real, empty, migrated databases: a SQLite
// file in a temporary directory always, and a fresh PostgreSQL database
// when FUNNEL_TEST_DATABASE_URL names a server. With
// FUNNEL_TEST_REQUIRE_SERVICES=1 (as CI sets it) a missing service fails
// the test instead of skipping the Postgres half.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/funnel-email/funnel/store"
)

// Dialects returns the dialects to run store tests on.
func Dialects(tb testing.TB) []store.Dialect {
	tb.Helper()
	ds := []store.Dialect{store.SQLite}
	if os.Getenv("FUNNEL_TEST_DATABASE_URL") != "" {
		ds = append(ds, store.Postgres)
	} else if os.Getenv("FUNNEL_TEST_REQUIRE_SERVICES") == "1" {
		tb.Fatal("FUNNEL_TEST_REQUIRE_SERVICES=1 but FUNNEL_TEST_DATABASE_URL is not set")
	}
	return ds
}

// Each runs fn as a subtest on a fresh database of every dialect.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, d := range Dialects(t) {
		t.Run(string(d), func(t *testing.T) { fn(t, Open(t, d)) })
	}
}

// Open returns a migrated, empty database of the given dialect that is
// removed when the test ends.
func Open(tb testing.TB, d store.Dialect) *store.DB {
	tb.Helper()
	u := URL(tb, d)
	db, err := store.Open(context.Background(), u)
	if err != nil {
		tb.Fatalf("open test database: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(context.Background()); err != nil {
		tb.Fatalf("migrate test database: %v", err)
	}
	return db
}

// URL returns the URL of a new, empty (unmigrated) database of the given
// dialect that is dropped when the test ends.
func URL(tb testing.TB, d store.Dialect) string {
	tb.Helper()
	if d == store.SQLite {
		return "sqlite:" + filepath.Join(tb.TempDir(), "funnel.db")
	}
	base := os.Getenv("FUNNEL_TEST_DATABASE_URL")
	if base == "" {
		tb.Skip("FUNNEL_TEST_DATABASE_URL is not set")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "funnel_test_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("connect to FUNNEL_TEST_DATABASE_URL: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("parse FUNNEL_TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// RedisURL returns FUNNEL_TEST_REDIS_URL, or skips (fails under
// FUNNEL_TEST_REQUIRE_SERVICES=1) when it is not set.
func RedisURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("FUNNEL_TEST_REDIS_URL")
	if u == "" {
		if os.Getenv("FUNNEL_TEST_REQUIRE_SERVICES") == "1" {
			tb.Fatal("FUNNEL_TEST_REQUIRE_SERVICES=1 but FUNNEL_TEST_REDIS_URL is not set")
		}
		tb.Skip("FUNNEL_TEST_REDIS_URL is not set")
	}
	return u
}
