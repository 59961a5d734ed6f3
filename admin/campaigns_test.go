package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/funnel-email/funnel/admin"
	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

// campaignRefs are the template and segments a campaign may name.
type campaignRefs struct {
	db                *store.DB
	template          int64
	segment, excluded int64
}

// newCampaignRefs stores a template, a segment of every contact whose
// email starts with "aud-" and an exclusion segment of those tagged
// "vip".
func newCampaignRefs(t *testing.T, db *store.DB) campaignRefs {
	t.Helper()
	ctx := t.Context()
	tpl := &campaign.Template{Name: "Launch", Subject: "Hi {{ .Contact.FirstName }}", HTML: "<p>Hello</p>"}
	if err := db.CreateTemplate(ctx, tpl); err != nil {
		t.Fatal(err)
	}
	aud := &campaign.Segment{Name: "audience", Rule: &campaign.Rule{Field: "email", Op: campaign.OpStartsWith, Value: "aud-"}}
	vip := &campaign.Segment{Name: "vip", Rule: &campaign.Rule{Field: "tags", Op: campaign.OpHas, Value: "vip"}}
	for _, s := range []*campaign.Segment{aud, vip} {
		if err := db.CreateSegment(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	return campaignRefs{db: db, template: tpl.ID, segment: aud.ID, excluded: vip.ID}
}

// input is a valid POST /api/v1/campaigns body over the refs; edit
// changes it before it is encoded (delete a key to leave it out).
func (r campaignRefs) input(edit func(in map[string]any)) string {
	in := map[string]any{
		"name": "Spring launch", "template_id": r.template, "segment_ids": []int64{r.segment},
		"exclude_segment_ids": []int64{r.excluded}, "from_name": "Acme News", "from_email": "news@acme.example",
		"reply_to": "help@acme.example", "rate": 25.0, "resend_uncertain": true,
	}
	if edit != nil {
		edit(in)
	}
	b, err := json.Marshal(in)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// inStatus stores a campaign over the refs and moves it to status s
// through the store's own transitions, as the API and the worker do.
func (r campaignRefs) inStatus(t *testing.T, s campaign.Status) *campaign.Campaign {
	t.Helper()
	ctx := t.Context()
	c := &campaign.Campaign{Name: "In " + string(s), TemplateID: r.template, SegmentIDs: []int64{r.segment},
		FromName: "Acme", FromEmail: "news@acme.example"}
	if err := r.db.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	step := func(got *campaign.Campaign, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("move campaign %d towards %s: %v", c.ID, s, err)
		}
		c = got
	}
	switch s {
	case campaign.StatusDraft:
	case campaign.StatusCancelled:
		step(r.db.TransitionCampaign(ctx, c.ID, campaign.Cancel))
	case campaign.StatusScheduled:
		step(r.db.ScheduleCampaign(ctx, c.ID, time.Now().Add(time.Hour)))
	default:
		step(r.db.ScheduleCampaign(ctx, c.ID, time.Now().Add(-time.Second)))
		step(r.db.StartCampaign(ctx, c.ID, c.ScheduleVersion))
		switch s {
		case campaign.StatusPaused:
			step(r.db.TransitionCampaign(ctx, c.ID, campaign.Pause))
		case campaign.StatusSent:
			if _, err := r.db.MaterializeAudience(ctx, c); err != nil {
				t.Fatal(err)
			}
			step(r.db.CompleteCampaign(ctx, c.ID))
		case campaign.StatusFailed:
			step(r.db.FailCampaign(ctx, c.ID, "template broke"))
		}
	}
	// As stored, so that tests can compare it with a later read.
	step(r.db.FindCampaign(ctx, c.ID))
	if c.Status != s {
		t.Fatalf("campaign %d is %s, want %s", c.ID, c.Status, s)
	}
	return c
}

// campaignPath is the path of campaign id, with an optional action.
func campaignPath(id int64, action string) string {
	p := fmt.Sprintf("/api/v1/campaigns/%d", id)
	if action != "" {
		p += "/" + action
	}
	return p
}

// campaignBody is GET /api/v1/campaigns/{id}'s answer.
type campaignBody struct {
	campaign.Campaign
	Progress *campaign.Progress `json:"progress"`
}

func decodeCampaign(t *testing.T, r response) campaignBody {
	t.Helper()
	var c campaignBody
	if err := json.Unmarshal(r.Body, &c); err != nil || c.ID == 0 {
		t.Fatalf("not a campaign (%v): %s", err, r.Body)
	}
	return c
}

func countCampaigns(t *testing.T, db *store.DB) int {
	t.Helper()
	cs, err := db.ListCampaigns(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return len(cs)
}

func TestCampaignRoutesAllowAdminsAndMarketersOnly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ta := newTestAPI(t, db, admin.Config{})
		refs := newCampaignRefs(t, db)
		routes := []struct {
			method, action, body string
			from                 campaign.Status
			want                 int // for admin and marketer
		}{
			{"GET", "list", "", campaign.StatusDraft, 200},
			{"POST", "create", refs.input(nil), campaign.StatusDraft, 201},
			{"GET", "", "", campaign.StatusDraft, 200},
			{"PATCH", "", `{"name":"Renamed"}`, campaign.StatusDraft, 200},
			{"DELETE", "", "", campaign.StatusDraft, 204},
			{"GET", "deliveries", "", campaign.StatusDraft, 200},
			{"POST", "schedule", `{"send_at":"2030-03-01T09:00:00+01:00"}`, campaign.StatusDraft, 200},
			{"POST", "send", "", campaign.StatusDraft, 200},
			{"POST", "pause", "", campaign.StatusScheduled, 200},
			{"POST", "resume", "", campaign.StatusPaused, 200},
			{"POST", "cancel", "", campaign.StatusScheduled, 200},
			{"POST", "duplicate", "", campaign.StatusDraft, 201},
		}
		roles := []struct {
			role campaign.Role
			want int // 0: the route's own status
		}{
			{campaign.RoleAdmin, 0}, {campaign.RoleMarketer, 0}, {campaign.RoleSales, 403}, {"", 401},
		}
		for _, rt := range routes {
			for _, rl := range roles {
				c := refs.inStatus(t, rt.from)
				path := campaignPath(c.ID, rt.action)
				if rt.action == "list" || rt.action == "create" {
					path = "/api/v1/campaigns"
				}
				before := countCampaigns(t, db)
				want := rt.want
				if rl.want != 0 {
					want = rl.want
				}
				got := ta.json(rl.role, rt.method, path, rt.body)
				if got.Status != want {
					t.Errorf("%s %s as %q = %d, want %d: %s", rt.method, path, rl.role, got.Status, want, got.Body)
					continue
				}
				if rl.want == 0 {
					continue
				}
				// A refused request must have changed nothing.
				if n := countCampaigns(t, db); n != before {
					t.Errorf("%s %s as %q was refused but the campaigns went from %d to %d", rt.method, path, rl.role, before, n)
				}
				after, err := db.FindCampaign(t.Context(), c.ID)
				if err != nil {
					t.Errorf("%s %s as %q was refused but the campaign is gone: %v", rt.method, path, rl.role, err)
				} else if diff := cmp.Diff(c, after); diff != "" {
					t.Errorf("%s %s as %q was refused but changed the campaign (-before +after):\n%s", rt.method, path, rl.role, diff)
				}
			}
		}
	})
}

func TestCreateCampaignBadInputIs422NamingTheField(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ta := newTestAPI(t, db, admin.Config{})
		refs := newCampaignRefs(t, db)
		set := func(k string, v any) func(map[string]any) { return func(in map[string]any) { in[k] = v } }
		drop := func(k string) func(map[string]any) { return func(in map[string]any) { delete(in, k) } }
		tests := []struct {
			name  string
			edit  func(map[string]any)
			field string
		}{
			{"unknown field", set("sned_at", "2030-01-01T00:00:00Z"), "sned_at"},
			{"missing template", drop("template_id"), "template_id"},
			{"template that does not exist", set("template_id", refs.template+1000), "template_id"},
			{"missing segments", drop("segment_ids"), "segment_ids"},
			{"empty segments", set("segment_ids", []int64{}), "segment_ids"},
			{"segment that does not exist", set("segment_ids", []int64{refs.segment + 1000}), "segment_ids[0]"},
			{"bad from_email", set("from_email", "news at acme"), "from_email"},
			{"missing from_email", drop("from_email"), "from_email"},
			{"header injection in from_name", set("from_name", "Acme\r\nBcc: victim@example.com"), "from_name"},
			{"bare LF in from_name", set("from_name", "Acme\nBcc: victim@example.com"), "from_name"},
			{"header injection in reply_to", set("reply_to", "a@acme.example\r\nBcc: victim@example.com"), "reply_to"},
			{"negative rate", set("rate", -1), "rate"},
			{"rate of the wrong type", set("rate", "fast"), "rate"},
			{"missing name", drop("name"), "name"},
		}
		for _, tt := range tests {
			got := ta.json(campaign.RoleMarketer, "POST", "/api/v1/campaigns", refs.input(tt.edit))
			if got.Status != 422 {
				t.Errorf("%s: status %d, want 422: %s", tt.name, got.Status, got.Body)
				continue
			}
			code, msg, details := got.errorBody(t)
			var fields []string
			for _, d := range details {
				fields = append(fields, d.Field)
			}
			if code != campaign.EINVALID || msg == "" || !slices.Equal(fields, []string{tt.field}) {
				t.Errorf("%s: code %q message %q fields %q, want %q naming only %q", tt.name, code, msg, fields, campaign.EINVALID, tt.field)
			}
		}
		if n := countCampaigns(t, db); n != 0 {
			t.Errorf("refused input stored %d campaigns", n)
		}

		// The same rules hold for PATCH and for the schedule's send_at.
		c := refs.inStatus(t, campaign.StatusDraft)
		later := []struct {
			name, method, action, body, field string
		}{
			{"patch negative rate", "PATCH", "", `{"rate":-0.5}`, "rate"},
			{"patch header injection", "PATCH", "", `{"from_name":"A\r\nTo: x@example.com"}`, "from_name"},
			{"patch unknown field", "PATCH", "", `{"status":"sent"}`, "status"},
			{"send_at not RFC 3339", "POST", "schedule", `{"send_at":"01/03/2030 09:00"}`, "send_at"},
			{"send_at without a zone", "POST", "schedule", `{"send_at":"2030-03-01T09:00:00"}`, "send_at"},
			{"send_at missing", "POST", "schedule", `{}`, "send_at"},
		}
		for _, tt := range later {
			got := ta.json(campaign.RoleMarketer, tt.method, campaignPath(c.ID, tt.action), tt.body)
			if got.Status != 422 {
				t.Errorf("%s: status %d, want 422: %s", tt.name, got.Status, got.Body)
				continue
			}
			if _, _, details := got.errorBody(t); len(details) != 1 || details[0].Field != tt.field {
				t.Errorf("%s: details %+v, want one naming %q", tt.name, details, tt.field)
			}
		}
		after, err := db.FindCampaign(t.Context(), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(c, after); diff != "" {
			t.Errorf("refused PATCH and schedule changed the campaign (-before +after):\n%s", diff)
		}
	})
}

func TestIllegalCampaignTransitionsAre409NamingTheStatus(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ta := newTestAPI(t, db, admin.Config{})
		refs := newCampaignRefs(t, db)
		tests := []struct {
			from           campaign.Status
			method, action string
			body           string
		}{
			{campaign.StatusDraft, "POST", "resume", ""},
			{campaign.StatusDraft, "POST", "pause", ""},
			{campaign.StatusScheduled, "POST", "resume", ""},
			{campaign.StatusSending, "POST", "resume", ""},
			{campaign.StatusSending, "POST", "schedule", `{"send_at":"2030-03-01T09:00:00Z"}`},
			{campaign.StatusSending, "POST", "send", ""},
			{campaign.StatusSending, "PATCH", "", `{"name":"Changed while sending"}`},
			{campaign.StatusSending, "PATCH", "", `{"rate":1}`},
			{campaign.StatusSending, "DELETE", "", ""},
			{campaign.StatusPaused, "POST", "pause", ""},
			{campaign.StatusPaused, "PATCH", "", `{"name":"Changed while paused"}`},
			{campaign.StatusSent, "POST", "pause", ""},
			{campaign.StatusSent, "POST", "resume", ""},
			{campaign.StatusSent, "POST", "cancel", ""},
			{campaign.StatusSent, "POST", "schedule", `{"send_at":"2030-03-01T09:00:00Z"}`},
			{campaign.StatusSent, "PATCH", "", `{"name":"Rewrite history"}`},
			{campaign.StatusSent, "DELETE", "", ""},
			{campaign.StatusCancelled, "POST", "schedule", `{"send_at":"2030-03-01T09:00:00Z"}`},
			{campaign.StatusCancelled, "POST", "send", ""},
			{campaign.StatusCancelled, "POST", "resume", ""},
			{campaign.StatusCancelled, "POST", "pause", ""},
			{campaign.StatusCancelled, "POST", "cancel", ""},
			{campaign.StatusFailed, "POST", "resume", ""},
			{campaign.StatusFailed, "POST", "send", ""},
		}
		for _, tt := range tests {
			c := refs.inStatus(t, tt.from)
			name := fmt.Sprintf("%s %s of a %s campaign", tt.method, tt.action, tt.from)
			got := ta.json(campaign.RoleMarketer, tt.method, campaignPath(c.ID, tt.action), tt.body)
			if got.Status != 409 {
				t.Errorf("%s: status %d, want 409: %s", name, got.Status, got.Body)
				continue
			}
			code, msg, _ := got.errorBody(t)
			if code != campaign.ECONFLICT || !strings.Contains(msg, "it is "+string(tt.from)) {
				t.Errorf("%s: code %q message %q, want %q naming the status %s", name, code, msg, campaign.ECONFLICT, tt.from)
			}
			after, err := db.FindCampaign(t.Context(), c.ID)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if diff := cmp.Diff(c, after); diff != "" {
				t.Errorf("%s: refused but changed the campaign (-before +after):\n%s", name, diff)
			}
		}
		for _, action := range []string{"pause", "resume", "cancel", "send", "duplicate"} {
			if got := ta.json(campaign.RoleMarketer, "POST", campaignPath(99999, action), ""); got.Status != 404 {
				t.Errorf("%s of a campaign that does not exist = %d, want 404: %s", action, got.Status, got.Body)
			}
		}
	})
}

func TestScheduleAndSendSetStatusAndSendAt(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ta := newTestAPI(t, db, admin.Config{})
		refs := newCampaignRefs(t, db)
		c := refs.inStatus(t, campaign.StatusDraft)

		got := ta.json(campaign.RoleMarketer, "POST", campaignPath(c.ID, "schedule"), `{"send_at":"2030-03-01T09:00:00+01:00"}`)
		if got.Status != 200 {
			t.Fatalf("schedule = %d %s", got.Status, got.Body)
		}
		first := decodeCampaign(t, got)
		want := time.Date(2030, 3, 1, 8, 0, 0, 0, time.UTC)
		if first.Status != campaign.StatusScheduled || first.SendAt == nil || !first.SendAt.Equal(want) || first.ScheduleVersion != 1 {
			t.Errorf("after schedule: status %s send_at %v version %d; want scheduled at %v, version 1", first.Status, first.SendAt, first.ScheduleVersion, want)
		}
		if first.Progress == nil {
			t.Errorf("schedule answer has no progress: %s", got.Body)
		}

		// Rescheduling moves send_at and bumps the version, so that the
		// start task of the first schedule knows it is stale.
		got = ta.json(campaign.RoleMarketer, "POST", campaignPath(c.ID, "schedule"), `{"send_at":"2030-04-01T09:00:00-04:00"}`)
		second := decodeCampaign(t, got)
		want = time.Date(2030, 4, 1, 13, 0, 0, 0, time.UTC)
		if got.Status != 200 || second.Status != campaign.StatusScheduled || second.SendAt == nil || !second.SendAt.Equal(want) || second.ScheduleVersion != 2 {
			t.Errorf("after reschedule = %d: status %s send_at %v version %d; want scheduled at %v, version 2", got.Status, second.Status, second.SendAt, second.ScheduleVersion, want)
		}
		stored, err := db.FindCampaign(t.Context(), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(&second.Campaign, stored); diff != "" {
			t.Errorf("the answer differs from the stored campaign (-answer +stored):\n%s", diff)
		}

		// Send now is a schedule at the present moment.
		d := refs.inStatus(t, campaign.StatusDraft)
		before := time.Now().Add(-time.Second)
		got = ta.json(campaign.RoleMarketer, "POST", campaignPath(d.ID, "send"), "")
		after := time.Now().Add(time.Second)
		now := decodeCampaign(t, got)
		if got.Status != 200 || now.Status != campaign.StatusScheduled || now.SendAt == nil || now.SendAt.Before(before) || now.SendAt.After(after) {
			t.Errorf("send = %d: status %s send_at %v; want scheduled between %v and %v", got.Status, now.Status, now.SendAt, before, after)
		}
	})
}

func TestDuplicateIsANewDraftWithTheSameContent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ta := newTestAPI(t, db, admin.Config{})
		refs := newCampaignRefs(t, db)
		created := ta.json(campaign.RoleMarketer, "POST", "/api/v1/campaigns", refs.input(nil))
		if created.Status != 201 {
			t.Fatalf("create = %d %s", created.Status, created.Body)
		}
		orig := decodeCampaign(t, created)
		if got := ta.json(campaign.RoleMarketer, "POST", campaignPath(orig.ID, "schedule"), `{"send_at":"2030-03-01T09:00:00Z"}`); got.Status != 200 {
			t.Fatalf("schedule = %d %s", got.Status, got.Body)
		}
		if got := ta.json(campaign.RoleMarketer, "POST", campaignPath(orig.ID, "cancel"), ""); got.Status != 200 {
			t.Fatalf("cancel = %d %s", got.Status, got.Body)
		}
		got := ta.json(campaign.RoleMarketer, "POST", campaignPath(orig.ID, "duplicate"), "")
		if got.Status != 201 {
			t.Fatalf("duplicate = %d %s", got.Status, got.Body)
		}
		dup := decodeCampaign(t, got)
		src, err := db.FindCampaign(t.Context(), orig.ID)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := db.FindCampaign(t.Context(), dup.ID)
		if err != nil {
			t.Fatalf("the duplicate was not stored: %v", err)
		}
		if dup.ID == src.ID {
			t.Fatalf("duplicate has the original's ID %d", dup.ID)
		}
		if diff := cmp.Diff(&dup.Campaign, stored); diff != "" {
			t.Errorf("the answer differs from the stored duplicate (-answer +stored):\n%s", diff)
		}
		// Same content and audience; a fresh draft's name, status,
		// schedule and history.
		want := *src
		want.ID, want.Name, want.Status = stored.ID, "Copy of "+src.Name, campaign.StatusDraft
		want.SendAt, want.ScheduleVersion, want.FinishedAt, want.StartedAt, want.AudienceSize = nil, 0, nil, nil, nil
		if diff := cmp.Diff(&want, stored, cmpopts.IgnoreFields(campaign.Campaign{}, "CreatedAt", "UpdatedAt")); diff != "" {
			t.Errorf("duplicate (-want +got):\n%s", diff)
		}
		if src.Status != campaign.StatusCancelled {
			t.Errorf("duplicating changed the original's status to %s", src.Status)
		}
		// The copy is a draft in its own right: it can be scheduled.
		if got := ta.json(campaign.RoleMarketer, "POST", campaignPath(dup.ID, "send"), ""); got.Status != 200 {
			t.Errorf("send the duplicate = %d %s", got.Status, got.Body)
		}
	})
}

func TestGetCampaignProgressMatchesTheLedger(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		ta := newTestAPI(t, db, admin.Config{})
		refs := newCampaignRefs(t, db)
		for i := range 12 {
			ct := &campaign.Contact{Email: fmt.Sprintf("aud-%02d@example.com", i)}
			if i >= 10 {
				ct.Tags = []string{"vip"} // excluded
			}
			if err := db.CreateContact(ctx, ct); err != nil {
				t.Fatal(err)
			}
		}
		created := ta.json(campaign.RoleMarketer, "POST", "/api/v1/campaigns", refs.input(func(in map[string]any) { in["resend_uncertain"] = false }))
		if created.Status != 201 {
			t.Fatalf("create = %d %s", created.Status, created.Body)
		}
		c := refs.startCreated(t, decodeCampaign(t, created).ID)

		// Drive the ledger through every delivery status with the store's
		// own protocol: a claim whose lease ran out (uncertain), outcomes of
		// a claim, a claim still held, and rows never claimed.
		claim := func(token string, n int, lease time.Duration) []store.Claimed {
			t.Helper()
			got, err := db.ClaimDeliveries(ctx, store.Claim{CampaignID: c.ID, MinID: 0, MaxID: 1 << 40, Limit: n, Token: token, Lease: lease})
			if err != nil || len(got) != n {
				t.Fatalf("claim %d: got %d, %v", n, len(got), err)
			}
			return got
		}
		claim("dead", 1, -time.Second)
		if _, err := db.RecoverLeases(ctx, nil); err != nil {
			t.Fatal(err)
		}
		outcomes := []campaign.DeliveryStatus{campaign.DeliverySent, campaign.DeliverySent, campaign.DeliveryDeferred,
			campaign.DeliveryBounced, campaign.DeliveryFailed, campaign.DeliverySkipped}
		for i, d := range claim("live", len(outcomes), time.Minute) {
			o := store.Outcome{ID: d.ID, Claim: "live", Status: outcomes[i], ContactID: d.ContactID, Reason: "test",
				NextAttemptAt: time.Now().Add(time.Hour)}
			if outcomes[i] == campaign.DeliverySent {
				o.SMTPCode, o.MessageID = 250, fmt.Sprintf("<%d@test>", d.ID)
			}
			if err := db.RecordOutcome(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
		claim("held", 1, time.Minute)

		got := ta.json(campaign.RoleMarketer, "GET", campaignPath(c.ID, ""), "")
		if got.Status != 200 {
			t.Fatalf("get = %d %s", got.Status, got.Body)
		}
		view := decodeCampaign(t, got)
		if view.Progress == nil {
			t.Fatalf("no progress in %s", got.Body)
		}
		ledger := ledgerCounts(t, db, c.ID)
		want := map[campaign.DeliveryStatus]int64{
			campaign.DeliveryQueued: 2, campaign.DeliverySending: 1, campaign.DeliverySent: 2, campaign.DeliveryDeferred: 1,
			campaign.DeliveryBounced: 1, campaign.DeliveryFailed: 1, campaign.DeliverySkipped: 1, campaign.DeliveryUncertain: 1,
		}
		if diff := cmp.Diff(want, ledger); diff != "" {
			t.Fatalf("the fixture did not make the ledger it meant to (-want +ledger):\n%s", diff)
		}
		if diff := cmp.Diff(ledger, view.Progress.Counts); diff != "" {
			t.Errorf("progress counts differ from the deliveries table (-ledger +api):\n%s", diff)
		}
		if view.Progress.Audience != 10 || view.AudienceSize == nil || *view.AudienceSize != 10 {
			t.Errorf("audience %d, audience_size %v; want 10 (12 contacts, 2 excluded)", view.Progress.Audience, view.AudienceSize)
		}
		if view.Progress.Rate != 2.0/60 || view.Progress.ETA == nil {
			t.Errorf("with 2 sent in the last minute and 4 pending: rate %v, eta %v; want 2/60 per second and an ETA", view.Progress.Rate, view.Progress.ETA)
		}

		// The deliveries route lists the same ledger.
		got = ta.json(campaign.RoleMarketer, "GET", campaignPath(c.ID, "deliveries"), "")
		var page struct {
			Deliveries []campaign.Delivery `json:"deliveries"`
		}
		if err := json.Unmarshal(got.Body, &page); err != nil || got.Status != 200 {
			t.Fatalf("deliveries = %d %s (%v)", got.Status, got.Body, err)
		}
		listed := map[campaign.DeliveryStatus]int64{}
		for _, s := range campaign.DeliveryStatuses {
			listed[s] = 0
		}
		for _, d := range page.Deliveries {
			listed[d.Status]++
		}
		if diff := cmp.Diff(ledger, listed); diff != "" {
			t.Errorf("listed deliveries differ from the ledger (-ledger +listed):\n%s", diff)
		}
	})
}

// startCreated moves campaign id to sending and materializes its audience
// as the worker's start task does.
func (r campaignRefs) startCreated(t *testing.T, id int64) *campaign.Campaign {
	t.Helper()
	ctx := t.Context()
	c, err := r.db.ScheduleCampaign(ctx, id, time.Now().Add(-time.Second))
	if err == nil {
		c, err = r.db.StartCampaign(ctx, id, c.ScheduleVersion)
	}
	if err == nil {
		_, err = r.db.MaterializeAudience(ctx, c)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ledgerCounts counts campaign id's deliveries by status straight from the
// table, with a zero for every status that has none.
func ledgerCounts(t *testing.T, db *store.DB, id int64) map[campaign.DeliveryStatus]int64 {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), db.Rebind(`SELECT status, count(*) FROM deliveries WHERE campaign_id = ? GROUP BY status`), id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[campaign.DeliveryStatus]int64{}
	for _, s := range campaign.DeliveryStatuses {
		out[s] = 0
	}
	for rows.Next() {
		var s string
		var n int64
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatal(err)
		}
		if _, known := out[campaign.DeliveryStatus(s)]; !known {
			t.Errorf("unknown delivery status %q in the ledger", s)
		}
		out[campaign.DeliveryStatus(s)] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCreateCampaignAnswersWhatGetReturns(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ta := newTestAPI(t, db, admin.Config{})
		refs := newCampaignRefs(t, db)
		tests := []struct {
			name string
			edit func(map[string]any)
		}{
			{"every field", nil},
			{"no exclusions", func(in map[string]any) { delete(in, "exclude_segment_ids") }},
		}
		for _, tt := range tests {
			created := ta.json(campaign.RoleMarketer, "POST", "/api/v1/campaigns", refs.input(tt.edit))
			if created.Status != 201 {
				t.Fatalf("%s: create = %d %s", tt.name, created.Status, created.Body)
			}
			var answer map[string]any
			if err := json.Unmarshal(created.Body, &answer); err != nil {
				t.Fatal(err)
			}
			got := ta.json(campaign.RoleMarketer, "GET", campaignPath(int64(answer["id"].(float64)), ""), "")
			var stored map[string]any
			if err := json.Unmarshal(got.Body, &stored); err != nil {
				t.Fatal(err)
			}
			delete(stored, "progress") // GET adds it
			if diff := cmp.Diff(stored, answer); diff != "" {
				t.Errorf("%s: POST answered a different campaign than GET returns (-get +post):\n%s", tt.name, diff)
			}
		}
	})
}
