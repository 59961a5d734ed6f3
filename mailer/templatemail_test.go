package mailer

import (
	"errors"
	"strings"
	"testing"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/templates"
	"github.com/google/go-cmp/cmp"
)

func TestPreviewErrorNamesTheFieldLineAndColumn(t *testing.T) {
	m := &TemplateMail{Options: templates.Options{PublicURL: "https://t.example.com", Codec: testCodec(t)}, Composer: newComposer(t)}
	contact := ana
	contact.Attributes = campaign.Attributes{"since": "last tuesday"}
	const bad = `{{ date "2006" "" (.Attr "since") }}`
	const reason = `<date "2006" "" (.Attr "since")>: error calling date: "last tuesday" is not a date (2006-01-02 or RFC 3339)`
	// The column is that of the call that failed, "date", counted in
	// characters (a tab is one).
	tests := []struct {
		name string
		tmpl campaign.Template
		want campaign.FieldError
	}{
		{"subject", campaign.Template{Subject: "Since " + bad, HTML: "<p>Hi</p>"},
			campaign.FieldError{Field: "subject", Line: 1, Column: 10, Message: reason}},
		{"html", campaign.Template{Subject: "Hi", HTML: "<h1>Hi</h1>\n<p>\n  Since: " + bad + "</p>"},
			campaign.FieldError{Field: "html", Line: 3, Column: 13, Message: reason}},
		{"text", campaign.Template{Subject: "Hi", HTML: "<p>Hi</p>", Text: "Hi\n\tsince " + bad + "\n"},
			campaign.FieldError{Field: "text", Line: 2, Column: 11, Message: reason}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.tmpl.Name = "since"
			_, err := m.Preview(tt.tmpl, testSender, &contact)
			var e *campaign.Error
			if !errors.As(err, &e) || e.Code != campaign.EINVALID {
				t.Fatalf("Preview error = %v, want an EINVALID *campaign.Error", err)
			}
			if diff := cmp.Diff([]campaign.FieldError{tt.want}, e.Details); diff != "" {
				t.Errorf("details (-want +got):\n%s", diff)
			}
			if !strings.Contains(e.Message, "ana@example.org") || !strings.Contains(e.Message, tt.want.Field) {
				t.Errorf("message %q does not name the contact and the field", e.Message)
			}
		})
	}
}
