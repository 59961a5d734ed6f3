// Package templates is Funnel's personalization engine. It turns a
// campaign.Template and one contact into the subject, HTML and text of a
// message, with tracked links, an open pixel, a honeypot link and the
// unsubscribe and view-in-browser URLs.
//
// # Lifecycle
//
// Compile parses and checks a template once (at save, and once per campaign
// before sending); (*Compiled).Render then renders it for one contact. A
// Compiled is safe for concurrent use.
//
// # What a template may use
//
// The data is a *Data: .Contact (Email, FirstName, LastName, FullName),
// .Attr "key" for custom attributes, .Campaign (ID, Name), .Sender
// (CompanyName, PostalAddress), .UnsubscribeURL, .ViewInBrowserURL,
// .Preheader, .Subject and .Now (the send time). Functions: default, upper,
// lower, title, trim, date, and the text/template built-ins, with printf
// limited to small widths. No function reaches files, environment or
// network (date reads the system time zone database, nothing else).
//
// Compile refuses {{range}}, {{define}}, {{block}} and {{template}}: the
// data holds no lists, and without loops and template calls a render costs
// at most time linear in the size of the template and the data. That is the
// time bound. Rendering also writes into a buffer that fails past
// Options.MaxOutput bytes and checks Options.Timeout as it writes, as a
// second line of defence.
//
// # Links
//
// After rendering, every http(s) link of the HTML (<a href>) and of the
// text part is rewritten to PublicURL + PathClick + token. Left alone are:
// mailto:, tel:, #anchors and any other scheme (javascript: is never turned
// into a redirect), the unsubscribe and view-in-browser URLs, and <a> tags
// carrying data-funnel-notrack. data-funnel-* attributes are removed from
// the output.
//
// Link indexes: the distinct tracked URLs of one rendered message are
// numbered from 1 in order of first appearance, HTML first (document
// order), then URLs that appear only in the text part. The same URL in the
// HTML and the text shares one index. Index 0 (token.HoneypotLink) is the
// hidden honeypot link. Message.Links lists the URLs with their indexes and
// data-funnel-intent values so the sender can store them: for a template
// whose links do not depend on the contact every message of a campaign has
// the same list, so one table per campaign is enough; a message whose list
// differs (personalized URLs, links inside {{if}}) needs its own list keyed
// by delivery. The link index alone never decides where a click goes
// without such a table.
//
// # Preview
//
// An Input with Delivery 0 renders a preview: every token carries delivery
// token.PreviewDelivery, which the tracking side verifies and never
// records.
package templates
