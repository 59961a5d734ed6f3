package store

import (
	"context"
	"fmt"

	"github.com/funnel-email/funnel/campaign"
)

// RecentFinishedCampaigns returns the limit campaigns that ended last
// (sent, cancelled or failed), the latest first; an empty list when none
// has ended. It reads the campaigns table only: their counts are
// CampaignProgress's, recorded once their deliveries settle.
func (db *DB) RecentFinishedCampaigns(ctx context.Context, limit int) ([]*campaign.Campaign, error) {
	if limit <= 0 || limit > MaxPageSize {
		limit = MaxPageSize
	}
	var rows []campaignRow
	err := db.SelectContext(ctx, &rows, db.rebind(`SELECT `+campaignColumns+` FROM campaigns
		WHERE status IN ('sent', 'cancelled', 'failed')
		-- every end sets finished_at; the fallback only keeps a row without
		-- one from sorting first on PostgreSQL (NULLs are largest there)
		ORDER BY COALESCE(finished_at, updated_at) DESC, id DESC LIMIT ?`), limit)
	if err != nil {
		return nil, fmt.Errorf("list recently finished campaigns: %w", err)
	}
	return campaignsOf(rows)
}
