package admin

import (
	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
)

// Response shapes that handlers build as maps, named here for the
// document.
type (
	templatePage struct {
		Templates  []*campaign.Template `json:"templates"`
		NextCursor string               `json:"next_cursor,omitempty"`
	}
	campaignPage struct {
		Campaigns  []*campaign.Campaign `json:"campaigns"`
		NextCursor string               `json:"next_cursor,omitempty"`
	}
	deliveryPage struct {
		Deliveries []campaign.Delivery `json:"deliveries"`
		NextCursor string              `json:"next_cursor,omitempty"`
	}
	segmentList struct {
		Segments   []segmentOutput `json:"segments"`
		NextCursor string          `json:"next_cursor,omitempty"`
	}
	segmentPreviewInput struct {
		// Text is the rule in its text form; alternatively send "rule"
		// (the tree) or the tree itself.
		Text string `json:"text,omitempty"`
		Rule any    `json:"rule,omitempty"`
	}
	attributeIndex struct {
		Attribute string `json:"attribute"`
		Index     string `json:"index"`
	}
	testSent struct {
		SentTo []string `json:"sent_to"`
	}
	outboxList struct {
		Messages []struct {
			ID         int64    `json:"id"`
			From       string   `json:"from"`
			To         []string `json:"to"`
			Subject    string   `json:"subject"`
			ReceivedAt string   `json:"received_at"`
		} `json:"messages"`
		Accepted int64 `json:"accepted"`
	}
)

// List parameters shared by the keyset-paginated routes.
var (
	cursorParam = param{"cursor", "string", "the next_cursor of the previous page (opaque; with the same sort)"}
	limitParam  = param{"limit", "integer", "page size, 1 to 500 (default 50)"}
)

// apiDocs describes every API route, keyed like the route table
// ("METHOD /pattern"). Adding a route to routes.go needs an entry here:
// TestOpenAPIDescribesEveryRoute fails until it has one, and fails for an
// entry whose route is gone.
var apiDocs = map[string]opDoc{
	"GET /api/v1/contacts": {Summary: "List contacts", Out: contactPage{},
		Query: []param{{"email_prefix", "string", "contacts whose email starts with this"}, {"tag", "string", "contacts with this tag"},
			{"status", "string", "active, unsubscribed, bounced or complained"}, cursorParam, limitParam}, Sort: sortsDoc(store.ContactSorts)},
	"POST /api/v1/contacts":        {Summary: "Create a contact", Body: contactInput{}, Status: 201, Out: campaign.Contact{}, Errors: []int{409}},
	"GET /api/v1/contacts/{id}":    {Summary: "Get a contact", Out: campaign.Contact{}},
	"PATCH /api/v1/contacts/{id}":  {Summary: "Update a contact", Description: "Absent fields are kept; attributes merge key by key and a null removes a key.", Body: campaign.ContactPatch{}, Out: campaign.Contact{}, Errors: []int{409}},
	"DELETE /api/v1/contacts/{id}": {Summary: "Delete a contact", Status: 204},

	"POST /api/v1/imports": {Summary: "Import contacts from CSV", BodyType: "multipart/form-data", Status: 202, Out: store.Import{},
		Description: "Upload a CSV (multipart field `file`, or the raw text/csv body). The header is checked at once; rows are imported in the background. Poll GET /api/v1/imports/{id}."},
	"GET /api/v1/imports/{id}": {Summary: "Get an import's progress and row errors", Out: store.Import{}},

	"GET /api/v1/segments":          {Summary: "List segments", Out: segmentList{}, Query: []param{cursorParam, limitParam}, Sort: sortsDoc(store.SegmentSorts)},
	"POST /api/v1/segments":         {Summary: "Create a segment", Body: segmentInput{}, Status: 201, Out: segmentOutput{}, Errors: []int{409}},
	"POST /api/v1/segments/preview": {Summary: "Count and sample the contacts a rule selects", Body: segmentPreviewInput{}, Out: previewOutput{}},
	"GET /api/v1/segments/{id}":     {Summary: "Get a segment", Out: segmentOutput{}},
	"PATCH /api/v1/segments/{id}":   {Summary: "Update a segment", Body: segmentInput{}, Out: segmentOutput{}, Errors: []int{409}},
	"DELETE /api/v1/segments/{id}":  {Summary: "Delete a segment", Status: 204, Errors: []int{409}},
	"POST /api/v1/segments/parse": {Summary: "Check a rule and give it both as a tree and as text", Body: segmentPreviewInput{}, Out: parseOutput{},
		Description: "Takes the bodies of the preview route and answers the rule in both forms (the text canonical), so that an editor can switch between them. The rule is checked as preview and save check it; nothing is counted. A text error names its line and column, a tree error its JSON path."},
	"GET /api/v1/segments/{id}/contacts": {Summary: "List the contacts a segment selects now", Out: contactPage{},
		Query: []param{cursorParam, limitParam}, Sort: sortsDoc(store.ContactSorts)},
	"POST /api/v1/attributes/{key}/index": {Summary: "Index a contact attribute that segments filter on", Out: attributeIndex{}, Errors: []int{422}},

	"GET /api/v1/templates":               {Summary: "List templates", Out: templatePage{}, Query: []param{cursorParam, limitParam}, Sort: sortsDoc(store.TemplateSorts)},
	"POST /api/v1/templates":              {Summary: "Create a template", Description: "Parse errors come back as details with line and column.", Body: templateInput{}, Status: 201, Out: campaign.Template{}},
	"GET /api/v1/templates/{id}":          {Summary: "Get a template", Out: campaign.Template{}},
	"PATCH /api/v1/templates/{id}":        {Summary: "Update a template", Body: templatePatch{}, Out: campaign.Template{}},
	"DELETE /api/v1/templates/{id}":       {Summary: "Delete a template", Status: 204, Errors: []int{409}},
	"POST /api/v1/templates/{id}/preview": {Summary: "Render a template for a contact (or sample data)", Description: "With contact_id, the message is rendered with that contact's fields and attributes; without it (or with 0, or an empty body), with sample data. An unknown contact_id is 422 with a detail on contact_id.", Body: previewInput{}, Out: campaign.Preview{}},
	"POST /api/v1/templates/{id}/test":    {Summary: "Mail a test of a template to up to 10 addresses", Body: previewInput{}, Out: testSent{}},

	"GET /api/v1/campaigns": {Summary: "List campaigns", Out: campaignPage{},
		Query: []param{{"status", "string", "only campaigns in this status"}, cursorParam, limitParam}, Sort: sortsDoc(store.CampaignSorts)},
	"POST /api/v1/campaigns":                {Summary: "Create a draft campaign", Body: campaignInput{}, Status: 201, Out: campaign.Campaign{}},
	"GET /api/v1/campaigns/{id}":            {Summary: "Get a campaign with its progress", Out: campaignView{}},
	"PATCH /api/v1/campaigns/{id}":          {Summary: "Update a draft campaign", Body: campaignPatch{}, Out: campaign.Campaign{}, Errors: []int{409}},
	"DELETE /api/v1/campaigns/{id}":         {Summary: "Delete a campaign that never started", Status: 204, Errors: []int{409}},
	"GET /api/v1/campaigns/{id}/deliveries": {Summary: "List a campaign's deliveries (the ledger)", Out: deliveryPage{}, Query: []param{cursorParam, limitParam}, Sort: sortsDoc(store.DeliverySorts)},
	"POST /api/v1/campaigns/{id}/schedule":  {Summary: "Schedule a campaign", Body: scheduleInput{}, Out: campaignView{}, Errors: []int{409}},
	"POST /api/v1/campaigns/{id}/send":      {Summary: "Send a campaign now", Out: campaignView{}, Errors: []int{409}},
	"POST /api/v1/campaigns/{id}/pause": {Summary: "Pause a sending campaign", Out: campaignView{}, Errors: []int{409},
		Description: "Answers 250 ms after the change commits: by then no worker starts another SMTP transaction for the campaign; transactions already under way finish."},
	"POST /api/v1/campaigns/{id}/resume": {Summary: "Resume a paused campaign", Out: campaignView{}, Errors: []int{409}},
	"POST /api/v1/campaigns/{id}/cancel": {Summary: "Cancel a campaign; it never sends another message", Out: campaignView{}, Errors: []int{409},
		Description: "Answers 250 ms after the change commits: by then no worker starts another SMTP transaction for the campaign; transactions already under way finish, and the deliveries not started are skipped."},
	"POST /api/v1/campaigns/{id}/duplicate": {Summary: "Copy a campaign into a new draft", Status: 201, Out: campaign.Campaign{}},
	"GET /api/v1/settings/sender":           {Summary: "Get the default sender and postal address", Out: campaign.Sender{}},
	"PUT /api/v1/settings/sender":           {Summary: "Set the default sender and postal address", Body: campaign.Sender{}, Out: campaign.Sender{}},
	"GET /api/v1/me":                        {Summary: "Who am I", Out: meOutput{}},
	"GET /api/v1/users":                     {Summary: "List users, enabled and disabled", Out: userList{}, Query: []param{{"role", "string", "only users with this role"}, cursorParam, limitParam}, Sort: sortsDoc(store.UserSorts), Errors: []int{422}},
	"POST /api/v1/users":                    {Summary: "Create a user", Body: userInput{}, Status: 201, Out: campaign.User{}, Errors: []int{409}},
	"GET /api/v1/tokens":                    {Summary: "List API tokens (your own; an admin sees all)", Out: tokenList{}, Sort: sortsDoc(store.TokenSorts)},
	"POST /api/v1/tokens":                   {Summary: "Create an API token acting as you; the secret is shown only in this answer", Body: tokenInput{}, Status: 201, Out: tokenCreated{}},
	"DELETE /api/v1/tokens/{id}":            {Summary: "Revoke an API token", Status: 204},
	"GET /api/v1/openapi.json":              {Summary: "This document", OutType: "application/json"},
	"GET /api/v1/dev/outbox":                {Summary: "funnel dev: list caught messages (with ?id=N, one raw message)", Out: outboxList{}, Query: []param{{"id", "integer", "answer this message's raw RFC 5322 text"}}},

	// Users and accounts (admin/users.go, account.go).
	"PATCH /api/v1/users/{id}": {Summary: "Change a user's name or role, or disable or enable them",
		Description: "Disabling ends the user's sessions and stops their API tokens at once. A change that would leave no enabled admin (disabling or demoting the last one) is 409.",
		Body:        userPatch{}, Out: campaign.User{}, Errors: []int{409}},
	"POST /api/v1/users/{id}/reset-link": {Summary: "Make a one-time password reset link for a user; the link is shown only in this answer",
		Description: "The link works once, for 24 hours, and voids the user's earlier unused links; setting the password ends the user's sessions. A disabled user is 409.",
		Status:      201, Out: resetLink{}, Errors: []int{409}},
	"PATCH /api/v1/me": {Summary: "Change your name, time zone or password",
		Description: "Changing the password needs current_password and signs out your other sessions.", Body: mePatch{}, Out: campaign.User{}},
	"GET /api/v1/me/local-time": {Summary: "The instant a local date and time names in your time zone",
		Description: "For schedule forms: the answer's time has the zone's offset on that date (daylight saving included). A time that the zone skips is 422; one that happens twice is its first occurrence.",
		Out:         localTime{}, Query: []param{{"at", "string", "a local date and time such as 2026-03-01T09:00 (required)"}, {"time_zone", "string", "an IANA zone instead of yours"}}, Errors: []int{422}},

	// Scoring and the sales handoff (admin/leads.go, scoring.go, webhooks.go).
	"GET /api/v1/scoring":             {Summary: "Get the scoring rules in force", Out: campaign.ScoreRules{}},
	"PUT /api/v1/scoring":             {Summary: "Save new scoring rules (a new version; absent fields take the defaults)", Body: campaign.ScoreRules{}, Out: campaign.ScoreRules{}},
	"GET /api/v1/scoring/versions":    {Summary: "List every version of the scoring rules, newest first", Out: scoringVersions{}},
	"GET /api/v1/contacts/{id}/score": {Summary: "Explain a contact's score: ledger rows, their total and the decay due now", Out: campaign.ScoreReport{}},
	"GET /api/v1/leads":               {Summary: "List leads, highest score first", Out: leadPage{}, Query: leadParams, Sort: sortsDoc(store.LeadSorts)},
	"GET /api/v1/leads.csv":           {Summary: "Every lead the filters select, as CSV", OutType: "text/csv", Query: leadParams[:5], Sort: sortsDoc(store.LeadSorts)},
	"GET /api/v1/leads/{id}":          {Summary: "Get a lead with its contact, score ledger, recent human events and campaigns", Out: campaign.LeadDetail{}},
	"PATCH /api/v1/leads/{id}": {Summary: "Change a lead's status or owner", Description: "new → contacted | accepted | rejected; contacted → accepted | rejected; accepted → won | lost | contacted. Rejecting needs a reason. An unknown status is 422, a transition not allowed from the current status 409.",
		Body: campaign.LeadPatch{}, Out: campaign.Lead{}, Errors: []int{409}},
	"GET /api/v1/engaged":                  {Summary: "Contacts with human opens or clicks (CSV with Accept: text/csv)", Out: engagedPage{}, Query: engagedParams, Sort: sortsDoc(store.EngagedSorts)},
	"GET /api/v1/engaged.csv":              {Summary: "Contacts with human opens or clicks, as CSV", OutType: "text/csv", Query: engagedParams[:3], Sort: sortsDoc(store.EngagedSorts)},
	"GET /api/v1/campaigns/{id}/leads":     {Summary: "Leads a campaign produced: created, accepted, rejected, won, lost", Out: campaign.LeadSummary{}},
	"GET /api/v1/webhooks":                 {Summary: "List webhook endpoints", Out: webhookList{}, Sort: sortsDoc(store.WebhookSorts)},
	"POST /api/v1/webhooks":                {Summary: "Create a webhook endpoint; the signing secret is shown only in this answer", Body: webhookInput{}, Status: 201, Out: campaign.Webhook{}},
	"GET /api/v1/webhooks/{id}":            {Summary: "Get a webhook endpoint", Out: campaign.Webhook{}},
	"PATCH /api/v1/webhooks/{id}":          {Summary: "Update a webhook endpoint", Body: campaign.WebhookPatch{}, Out: campaign.Webhook{}},
	"DELETE /api/v1/webhooks/{id}":         {Summary: "Delete a webhook endpoint and its delivery log", Status: 204},
	"GET /api/v1/webhooks/{id}/deliveries": {Summary: "Recent deliveries of an endpoint with every attempt's response code", Out: webhookDeliveries{}, Query: []param{limitParam}},

	// The sending setup of the environment (admin/smtp.go, domains.go).
	"GET /api/v1/smtp-servers": {Summary: "List the SMTP servers mail is sent through (FUNNEL_SMTP_URL), without passwords", Out: smtpServerList{}},
	"POST /api/v1/smtp-servers/{index}/check": {Summary: "Check the connection to an SMTP server; sends no mail", Out: SMTPCheck{},
		Description: "{index} is the server's index in GET /api/v1/smtp-servers, from 0; another is 404. The check connects, reads the greeting, says EHLO, " +
			"does STARTTLS as the server's tls policy asks, authenticates when the URL has a user, and quits, within 15 seconds. " +
			"A server that cannot be reached or refuses a step is a 200 with ok=false, the failing stage, the error and the server's reply code."},
	"GET /api/v1/sending-domains": {Summary: "List the domains mail is sent from, with their DKIM keys and the DNS records to publish", Out: sendingDomainList{},
		Description: "The domains of the sender setting's and the campaigns' From addresses and of the DKIM keys (FUNNEL_DKIM_KEYS). For each: the DKIM key's selector and its TXT record " +
			"(derived from the configured private key), the recommended SPF record (on the bounce domain, FUNNEL_BOUNCE_DOMAIN) and DMARC record, and warnings. Nothing is looked up in DNS."},
}
