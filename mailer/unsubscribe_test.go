package mailer

import (
	"testing"

	"github.com/funnel-email/funnel/campaign"
)

func TestUnsubscribeURLMustBeHTTPSExceptOnLoopback(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://mail.example.com/u/abc", true},
		{"http://127.0.0.1:8080/u/abc", true},
		{"http://localhost:8080/u/abc", true},
		{"http://[::1]:8080/u/abc", true},
		{"http://mail.example.com/u/abc", false},
		{"http://10.0.0.1/u/abc", false},
		{"mailto:x@example.com", false},
		{"https://mail.example.com/u/a>b", false},
	}
	for _, tt := range tests {
		_, err := unsubscribeURL(tt.url)
		if (err == nil) != tt.ok {
			t.Errorf("unsubscribeURL(%q) error = %v, want ok=%v", tt.url, err, tt.ok)
		}
		if err != nil && campaign.ErrorCode(err) != campaign.EINVALID {
			t.Errorf("unsubscribeURL(%q) error code = %q, want EINVALID", tt.url, campaign.ErrorCode(err))
		}
	}
}
