package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Optimistic concurrency for templates, segments and campaigns.
//
// GET answers an ETag made of the resource's id and updated_at. PATCH with
// If-Match answers 412 Precondition Failed, changing nothing, when the
// resource changed since that ETag was read. PATCH without If-Match is
// allowed (last write wins) so that existing scripts keep working; the web
// UI always sends it. The check runs just before the update, not inside
// its UPDATE statement: two writers that both pass it within the same few
// milliseconds both succeed.

// etag is the strong ETag of a version of a resource.
func etag(kind string, id int64, updated time.Time) string {
	return fmt.Sprintf(`"%s-%d-%d"`, kind, id, updated.UnixNano())
}

// withETag sets the ETag of a 200 answer from the "id" and "updated_at"
// fields of its JSON body, and answers 304 to a matching If-None-Match.
// kind names the resource as its ETag does ("templates").
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
			if r.Header.Get("If-None-Match") == tag {
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

// ifMatch runs h only when the request has no If-Match or its If-Match
// names the current version, which current returns.
func (a *API) ifMatch(current func(context.Context, int64) (string, error), h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		want := r.Header.Get("If-Match")
		if want == "" || want == "*" {
			h(w, r)
			return
		}
		id, err := pathID(r)
		var tag string
		if err == nil {
			tag, err = current(r.Context(), id)
		}
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		if !etagListHas(want, tag) {
			w.Header().Set("ETag", tag)
			writeJSON(w, http.StatusPreconditionFailed, errorBody{Error: errorDetail{Code: "ESTALE",
				Message: "this was changed by someone else since you loaded it (If-Match " + want + ", now " + tag + "): reload and apply your change again"}})
			return
		}
		h(w, r)
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

func (a *API) templateETag(ctx context.Context, id int64) (string, error) {
	t, err := a.db.FindTemplate(ctx, id)
	if err != nil {
		return "", err
	}
	return etag("templates", t.ID, t.UpdatedAt), nil
}

func (a *API) segmentETag(ctx context.Context, id int64) (string, error) {
	s, err := a.db.FindSegment(ctx, id)
	if err != nil {
		return "", err
	}
	return etag("segments", s.ID, s.UpdatedAt), nil
}

func (a *API) campaignETag(ctx context.Context, id int64) (string, error) {
	c, err := a.db.FindCampaign(ctx, id)
	if err != nil {
		return "", err
	}
	return etag("campaigns", c.ID, c.UpdatedAt), nil
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
