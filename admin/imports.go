package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/funnel-email/funnel/campaign"
)

// progressEvery bounds how often a running import writes its progress.
const progressEvery = 500 * time.Millisecond

// createImport answers POST /api/v1/imports. The CSV comes either as the
// raw body (Content-Type text/csv, options in the query string:
// update_existing, tags, consent_source) or as the "file" part of a
// multipart form (options as form fields). The header is checked before
// answering, so a file without an email column is refused at once; the
// rows are imported in the background and GET /api/v1/imports/{id} shows
// the progress.
func (a *API) createImport(w http.ResponseWriter, r *http.Request) {
	path, name, opts, err := a.receiveUpload(w, r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	keep := false
	defer func() {
		if !keep {
			os.Remove(path)
		}
	}()
	f, err := os.Open(path)
	if err != nil {
		a.writeError(w, r, fmt.Errorf("reopen upload: %w", err))
		return
	}
	info, _ := f.Stat()
	_, err = campaign.NewCSVReader(f)
	f.Close()
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	imp, err := a.db.CreateImport(r.Context(), name, info.Size(), opts)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	keep = true
	a.imports.Add(1)
	go a.runImport(imp.ID, path, opts)
	w.Header().Set("Location", "/api/v1/imports/"+strconv.FormatInt(imp.ID, 10))
	writeJSON(w, http.StatusAccepted, imp)
}

// receiveUpload stores the uploaded CSV in a temporary file and returns its
// path, the client's file name and the import options.
func (a *API) receiveUpload(w http.ResponseWriter, r *http.Request) (path, name string, opts campaign.ImportOptions, err error) {
	body := http.MaxBytesReader(w, r.Body, a.maxUpload)
	mediaType, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var src io.Reader
	var form func(string) string
	switch mediaType {
	case "text/csv", "application/csv", "text/plain", "application/octet-stream":
		src, form, name = body, r.URL.Query().Get, "upload.csv"
	case "multipart/form-data":
		mr := multipart.NewReader(body, params["boundary"])
		fields := map[string]string{}
		for {
			part, perr := mr.NextPart()
			if perr != nil {
				return "", "", opts, uploadError(perr, a.maxUpload, "multipart body has no \"file\" part")
			}
			if part.FormName() == "file" {
				src, name = part, part.FileName()
				break
			}
			v, _ := io.ReadAll(io.LimitReader(part, 4096))
			fields[part.FormName()] = string(v)
		}
		form = func(k string) string { return fields[k] }
	default:
		return "", "", opts, campaign.Errorf(campaign.EMALFORMED,
			"Content-Type %q is not accepted: send the CSV as text/csv or as the \"file\" part of multipart/form-data", mediaType)
	}
	if opts, err = importOptions(form); err != nil {
		return "", "", opts, err
	}
	f, err := os.CreateTemp(a.uploadDir, "funnel-import-*.csv")
	if err != nil {
		return "", "", opts, fmt.Errorf("store upload: %w", err)
	}
	defer f.Close()
	if _, err := io.Copy(f, src); err != nil {
		os.Remove(f.Name())
		return "", "", opts, uploadError(err, a.maxUpload, "")
	}
	return f.Name(), name, opts, nil
}

// uploadError explains a failed upload read.
func uploadError(err error, limit int64, eofMessage string) error {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return campaign.Errorf(campaign.ETOOLARGE, "upload is larger than %d bytes", limit)
	case errors.Is(err, io.EOF) && eofMessage != "":
		return campaign.Errorf(campaign.EMALFORMED, "%s", eofMessage)
	default:
		return campaign.Errorf(campaign.EMALFORMED, "upload could not be read: %v", err)
	}
}

func importOptions(get func(string) string) (campaign.ImportOptions, error) {
	var opts campaign.ImportOptions
	if v := get("update_existing"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return opts, campaign.Invalid("invalid import options", campaign.FieldError{Field: "update_existing", Message: "must be true or false"})
		}
		opts.UpdateExisting = b
	}
	if v := get("tags"); v != "" {
		opts.Tags = campaign.NormalizeTags(strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == '|' || r == ';' }))
	}
	opts.ConsentSource = strings.TrimSpace(get("consent_source"))
	return opts, nil
}

// runImport imports the stored upload and records progress and the
// outcome. It removes the upload when done.
func (a *API) runImport(id int64, path string, opts campaign.ImportOptions) {
	defer a.imports.Done()
	defer os.Remove(path)
	log := a.log.With("import_id", id)
	stats, err := a.importFile(a.ctx, id, path, opts)
	if err != nil {
		log.Error("import failed", "err", err)
	} else {
		log.Info("import done", "rows", stats.RowsRead, "inserted", stats.Inserted, "updated", stats.Updated, "invalid", stats.Invalid)
	}
	// The request context is gone and a.ctx may be cancelled; the outcome
	// must still be written.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if ferr := a.db.FinishImport(ctx, id, stats, err); ferr != nil {
		log.Error("record import outcome", "err", ferr)
	}
}

func (a *API) importFile(ctx context.Context, id int64, path string, opts campaign.ImportOptions) (campaign.ImportStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return campaign.ImportStats{}, err
	}
	defer f.Close()
	src, err := campaign.NewCSVReader(f)
	if err != nil {
		return campaign.ImportStats{}, err
	}
	var last time.Time
	progress := func(s campaign.ImportStats) {
		if time.Since(last) < progressEvery {
			return
		}
		last = time.Now()
		if err := a.db.UpdateImportProgress(ctx, id, s); err != nil {
			a.log.Warn("record import progress", "import_id", id, "err", err)
		}
	}
	return a.db.ImportContacts(ctx, src, opts, progress)
}
