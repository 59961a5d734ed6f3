package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/funnel-email/funnel/campaign"
)

// Optimistic concurrency for templates, segments and campaigns.
//
// GET answers an ETag made of the resource's id and updated_at (its
// version). PATCH with If-Match answers 412 Precondition Failed, changing
// nothing, when the resource changed since that ETag was read. The check
// is made twice: ifMatch compares the tag with the current version first
// (a cheap, friendly answer that names both tags), then hands the version
// it matched to the handler, whose store update applies only to that
// version in the UPDATE itself (WHERE id = ? AND updated_at = ?). So of two
// PATCHes with the same If-Match, however close together, exactly one
// succeeds. PATCH without If-Match is allowed (last write wins) so that
// existing scripts keep working; the web UI always sends it.

// etag is the strong ETag of a version of a resource.
func etag(kind string, id int64, updated time.Time) string {
	return fmt.Sprintf(`"%s-%d-%d"`, kind, id, updated.UnixNano())
}

// liveKinds are the resources whose answer carries more than their
// version: a campaign's includes its progress, which changes while the
// campaign sends without a new version. Their ETag serves If-Match only;
// a GET is never answered 304, and caches must ask again every time.
var liveKinds = map[string]bool{"campaigns": true}

// withETag sets the ETag of a 200 answer from the "id" and "updated_at"
// fields of its JSON body, and answers 304 to a matching If-None-Match
// (except for liveKinds). kind names the resource as its ETag does
// ("templates").
func (a *API) withETag(kind string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rec := &bufferedWriter{header: http.Header{}, status: http.StatusOK}
		h(rec, r)
		var v struct {
			ID        int64     `json:"id"`
			UpdatedAt time.Time `json:"updated_at"`
		}
		if rec.status == http.StatusOK && json.Unmarshal(rec.body.Bytes(), &v) == nil && v.ID != 0 {
			tag := etag(kind, v.ID, v.UpdatedAt)
			rec.header.Set("ETag", tag)
			if liveKinds[kind] {
				rec.header.Set("Cache-Control", "no-cache")
			} else if r.Header.Get("If-None-Match") == tag {
				copyHeader(w.Header(), rec.header)
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		copyHeader(w.Header(), rec.header)
		w.WriteHeader(rec.status)
		w.Write(rec.body.Bytes())
	}
}

// version is one version of a resource: its ETag and the updated_at it
// is made of.
type version struct {
	tag string
	at  time.Time
}

type versionKey struct{}

// matchedVersion returns the version that the request's If-Match named,
// for the store update to apply only to it; zero when the request has no
// If-Match (or "*"), which updates whatever the version.
func matchedVersion(r *http.Request) time.Time {
	t, _ := r.Context().Value(versionKey{}).(time.Time)
	return t
}

// ifMatch runs h only when the request has no If-Match or its If-Match
// names the current version, which current returns; h then finds that
// version with matchedVersion.
func (a *API) ifMatch(current func(context.Context, int64) (version, error), h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		want := r.Header.Get("If-Match")
		if want == "" || want == "*" {
			h(w, r)
			return
		}
		id, err := pathID(r)
		var v version
		if err == nil {
			v, err = current(r.Context(), id)
		}
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		if !etagListHas(want, v.tag) {
			w.Header().Set("ETag", v.tag)
			a.writeError(w, r, campaign.Errorf(campaign.ESTALE,
				"this was changed by someone else since you loaded it (If-Match %s, now %s): reload and apply your change again", want, v.tag))
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), versionKey{}, v.at)))
	}
}

// etagListHas reports whether an If-Match list holds tag.
func etagListHas(list, tag string) bool {
	for _, t := range strings.Split(list, ",") {
		if strings.TrimSpace(t) == tag {
			return true
		}
	}
	return false
}

func (a *API) templateETag(ctx context.Context, id int64) (version, error) {
	t, err := a.db.FindTemplate(ctx, id)
	if err != nil {
		return version{}, err
	}
	return version{etag("templates", t.ID, t.UpdatedAt), t.UpdatedAt}, nil
}

func (a *API) segmentETag(ctx context.Context, id int64) (version, error) {
	s, err := a.db.FindSegment(ctx, id)
	if err != nil {
		return version{}, err
	}
	return version{etag("segments", s.ID, s.UpdatedAt), s.UpdatedAt}, nil
}

func (a *API) campaignETag(ctx context.Context, id int64) (version, error) {
	c, err := a.db.FindCampaign(ctx, id)
	if err != nil {
		return version{}, err
	}
	return version{etag("campaigns", c.ID, c.UpdatedAt), c.UpdatedAt}, nil
}

// bufferedWriter holds an answer so that headers can be added from its
// body.
type bufferedWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header         { return b.header }
func (b *bufferedWriter) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferedWriter) WriteHeader(status int)      { b.status = status }

func copyHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
}
