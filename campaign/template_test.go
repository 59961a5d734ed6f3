package campaign

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTemplateValidateNamesEveryBadField(t *testing.T) {
	tests := []struct {
		name string
		tmpl Template
		want []FieldError
	}{
		{"valid", Template{Name: "n", Subject: "s", HTML: "<p>x</p>"}, nil},
		{"missing", Template{}, []FieldError{{Field: "name", Message: "is required"}, {Field: "subject", Message: "is required"}, {Field: "html", Message: "is required"}}},
		{"too large and unknown layout", Template{Name: "n", Subject: strings.Repeat("s", MaxTemplateSubject+1), HTML: "x", Text: strings.Repeat("t", MaxTemplateText+1), Layout: "fancy"},
			[]FieldError{{Field: "subject", Message: "longer than 1000 bytes"}, {Field: "text", Message: "longer than 262144 bytes"}, {Field: "layout", Message: `"fancy" is not one of default, none`}}},
		{"invalid utf-8", Template{Name: "n", Subject: "s\xff", HTML: "x"}, []FieldError{{Field: "subject", Message: "is not valid UTF-8"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []FieldError
			if err := tt.tmpl.Validate(); err != nil {
				got = err.(*Error).Details
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("details (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSenderValidateRequiresPostalAddressAndOneLineNames(t *testing.T) {
	s := Sender{CompanyName: "Co\r\nBcc: x", FromEmail: "news@example.com", ReplyTo: "nope"}
	want := []FieldError{
		{Field: "reply_to", Message: `"nope" is not an address of the form name@domain`},
		{Field: "postal_address", Message: "is required: the law requires it in every campaign message"},
		{Field: "company_name", Message: "must not contain line breaks"},
	}
	err := s.Validate()
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	if diff := cmp.Diff(want, err.(*Error).Details); diff != "" {
		t.Errorf("details (-want +got):\n%s", diff)
	}
}
