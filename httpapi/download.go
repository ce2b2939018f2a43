package httpapi

import (
	"net/http"
	"net/url"
	"regexp"
	"strconv"

	"github.com/pulsesync/pulsesync/pg"
)

// Download parameter defaults and bounds (docs/protocol-v0.md §4.1).
const (
	defaultDownloadLimit = 100
	maxDownloadLimit     = 1000
)

// schemaPattern is the rule for the download's schema filter. Unlike uploads, the filter is not
// lower-cased first: "Business" is refused.
var schemaPattern = regexp.MustCompile(`^[a-z0-9_]+$`)

// download serves GET /sync/download (docs/protocol-v0.md §4): 200 with one page of the user's stream,
// 400 invalid_request for a bad parameter, 500 download_failed when the database fails. With
// wait=S (pulsesync's long-poll) it may hold an empty answer up to S seconds; without it, it
// answers as v0 does, empty polls from memory when the node knows the answer.
func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	values := r.URL.Query()
	q, message := parseDownloadQuery(values)
	if message != "" {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, message)
		return
	}
	wait, message := parseWait(values)
	if message != "" {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, message)
		return
	}
	id := identityOf(r.Context())
	if wait > 0 && s.cfg.Push != nil {
		s.longPoll(w, r, q, wait)
		return
	}
	page, cached := s.emptyPoll(id.User, q)
	s.metrics.observePoll(cached)
	var err error
	if !cached {
		page, err = s.downloadFromDatabase(r.Context(), id, q)
	}
	if err != nil {
		s.serverError(r, "download failed", err)
		writeError(w, http.StatusInternalServerError, codeDownloadFailed, "Failed to process download")
		return
	}
	s.writeEncoded(w, func(b []byte) []byte { return appendDownloadPage(b, &page) })
}

// parseDownloadQuery validates the parameters in the protocol's order and returns the first
// failure's message verbatim, or "" (docs/protocol-v0.md §4.1). An empty value counts as absent.
func parseDownloadQuery(v url.Values) (q pg.DownloadQuery, message string) {
	q.Limit = defaultDownloadLimit
	if s := v.Get("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		switch {
		case err != nil:
			return q, "after must be an integer"
		case n < 0:
			return q, "after must be >= 0"
		}
		q.After = n
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		switch {
		case err != nil:
			return q, "limit must be an integer"
		case n < 1 || n > maxDownloadLimit:
			return q, "limit must be between 1 and 1000"
		}
		q.Limit = n
	}
	if s := v.Get("schema"); s != "" {
		if !schemaPattern.MatchString(s) {
			return q, "invalid schema name"
		}
		q.Schema = s
	}
	q.IncludeSelf = v.Get("include_self") == "true"
	if s := v.Get("until"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		switch {
		case err != nil:
			return q, "until must be an integer"
		case n < 0:
			return q, "until must be >= 0"
		}
		q.Until = n
	}
	return q, ""
}
