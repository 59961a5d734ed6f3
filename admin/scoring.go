package admin

import (
	"net/http"

	"github.com/funnel-email/funnel/campaign"
)

// getScoring answers GET /api/v1/scoring with the rules in force.
func (a *API) getScoring(w http.ResponseWriter, r *http.Request) {
	rules, err := a.db.ScoreRules(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rules)
}

// putScoring answers PUT /api/v1/scoring: the body (every field; absent
// ones take the defaults) becomes a new version, in force from the next
// scoring run. Points already in the ledger keep their version.
func (a *API) putScoring(w http.ResponseWriter, r *http.Request) {
	rules := campaign.DefaultScoreRules()
	if err := a.decodeJSON(w, r, &rules); err != nil {
		a.writeError(w, r, err)
		return
	}
	var user int64
	if p := principalFrom(r.Context()); p != nil {
		user = p.UserID
	}
	if err := a.db.SaveScoreRules(r.Context(), &rules, user); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rules)
}

// scoringVersions is the body of GET /api/v1/scoring/versions.
type scoringVersions struct {
	Versions []campaign.ScoreRules `json:"versions"`
}

func (a *API) listScoringVersions(w http.ResponseWriter, r *http.Request) {
	vs, err := a.db.ScoreRuleVersions(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, scoringVersions{Versions: vs})
}
