package campaign

// Header is one message header as it would be sent (decoded for display).
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Preview is a message exactly as it would be sent to one contact, split
// for display: its headers, subject, HTML and text parts. Its links are
// preview links, which record nothing.
type Preview struct {
	Subject string   `json:"subject"`
	HTML    string   `json:"html"`
	Text    string   `json:"text"`
	Headers []Header `json:"headers"`
	// Size is the length of the whole message in bytes.
	Size int `json:"size"`
}
