package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

func TestSegmentCountAndAttributeIndexCommands(t *testing.T) {
	dbURL := storetest.URL(t, store.SQLite)
	db, err := store.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, email := range []string{"a@x.io", "b@x.io"} {
		if err := db.CreateContact(context.Background(), &campaign.Contact{Email: email, Attributes: campaign.Attributes{"country": "DE"}}); err != nil {
			t.Fatal(err)
		}
	}
	e := env{getenv: envOf(map[string]string{"FUNNEL_DATABASE_URL": dbURL}), stderr: io.Discard}
	var out bytes.Buffer
	e.stdout = &out
	if err := (&attributeCommand{e}).Run(context.Background(), []string{"index", "country"}); err != nil {
		t.Fatal(err)
	}
	if err := (&segmentCommand{e}).Run(context.Background(), []string{"count", `attr.country = "DE" and not opened`}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "2 contacts match") {
		t.Errorf("output: %q", out.String())
	}
	err = (&segmentCommand{e}).Run(context.Background(), []string{"count", `attr.country = `})
	if campaign.ErrorCode(err) != campaign.EINVALID || !strings.Contains(err.Error(), "line 1 column 16") {
		t.Errorf("bad rule: %v", err)
	}
	if err := (&attributeCommand{e}).Run(context.Background(), []string{"index", "a'b"}); err == nil {
		t.Error("an invalid attribute name was indexed")
	}
}
