package worker

import (
	"context"

	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/templates"
)

// LinkRecorder stores where the tracked links of each sent message go,
// so that the click endpoint can redirect. The first message of a
// campaign records the campaign's links; a message whose links differ
// (personalized URLs, links inside conditionals) records its own list for
// its delivery. The campaign's list is cached, so a message with the
// campaign's links costs no query. It is safe for concurrent use.
type LinkRecorder struct {
	links *store.Links
}

// NewLinkRecorder returns a LinkRecorder over links.
func NewLinkRecorder(links *store.Links) *LinkRecorder { return &LinkRecorder{links: links} }

// Record stores the links of delivery deliveryID's rendered message
// (templates.Message.Links). It must succeed before the message is sent:
// a click whose link is not recorded gets a 404. Recording the same
// message again is harmless.
func (r *LinkRecorder) Record(ctx context.Context, campaignID, deliveryID int64, links []templates.Link) error {
	if len(links) == 0 {
		return nil
	}
	own := make([]store.Link, len(links))
	for i, k := range links {
		own[i] = store.Link{Index: k.Index, URL: k.URL, Intent: k.Intent}
	}
	stored, err := r.links.RecordCampaign(ctx, campaignID, own)
	if err != nil {
		return err
	}
	if store.SameLinks(stored, own) {
		return nil
	}
	return r.links.RecordDelivery(ctx, deliveryID, own)
}
