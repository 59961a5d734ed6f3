package ui

import (
	"encoding/json"
	"net/http"

	"github.com/funnel-email/funnel/campaign"
)

// ScoringAccess says what the viewer may do on the scoring page; package
// admin reads it from the route table.
type ScoringAccess struct {
	Edit    bool // may save new rules (PUT /api/v1/scoring)
	History bool // may list earlier versions (GET /api/v1/scoring/versions)
}

// scoringVersion is one saved version of the rules, with who saved it.
type scoringVersion struct {
	campaign.ScoreRules
	By string
}

// Scoring shows the rules in force as a form (enabled for those who may
// save them) and the earlier versions with who saved them and when.
func (p *Pages) Scoring(w http.ResponseWriter, r *http.Request, access ScoringAccess) {
	rules, err := p.db.ScoreRules(r.Context())
	if err != nil {
		p.fail(w, r, err)
		return
	}
	users, err := p.db.ListUsers(r.Context(), "")
	if err != nil {
		p.fail(w, r, err)
		return
	}
	// An owner rule may name a user disabled since: the form keeps it.
	userIDs := map[int64]bool{}
	for _, u := range users {
		userIDs[u.ID] = true
	}
	ownerRules, _ := json.Marshal(rules.OwnerRules)
	data := map[string]any{"Rules": rules, "Access": access, "Users": users, "UserIDs": userIDs, "OwnerRulesJSON": string(ownerRules),
		"Saved": r.URL.Query().Has("saved"), "Defaults": campaign.DefaultScoreRules()}
	if access.History {
		vs, err := p.db.ScoreRuleVersions(r.Context())
		if err != nil {
			p.fail(w, r, err)
			return
		}
		authors, err := p.db.ScoreRuleAuthors(r.Context())
		if err != nil {
			p.fail(w, r, err)
			return
		}
		versions := make([]scoringVersion, len(vs))
		for i, v := range vs {
			versions[i] = scoringVersion{ScoreRules: v, By: authors[v.Version]}
		}
		data["Versions"] = versions
	}
	p.render(w, r, http.StatusOK, "scoring", "Scoring rules", "scoring", data)
}
