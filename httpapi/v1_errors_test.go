package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsesync/pulsesync/pgv1"
)

// TestStoreFailed_MapsEveryCode checks the one table that turns the store's refusals into
// statuses (docs/protocol-v1.md §2.5): every code keeps its status and an envelope with both
// members, capacity refusals carry Retry-After, and anything the table does not know is a 500
// <endpoint>_failed that tells the client nothing of the cause.
func TestStoreFailed_MapsEveryCode(t *testing.T) {
	m, err := newV1Metrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	v := &v1API{s: &Server{log: slog.New(slog.DiscardHandler)}, metrics: m}
	answer := func(err error) (*httptest.ResponseRecorder, map[string]any) {
		w := httptest.NewRecorder()
		v.storeFailed(w, httptest.NewRequest(http.MethodGet, "/", nil), "pull", err)
		var body map[string]any
		if e := json.Unmarshal(w.Body.Bytes(), &body); e != nil {
			t.Fatalf("%v: body %q: %v", err, w.Body, e)
		}
		return w, body
	}
	for code, status := range v1Status {
		w, body := answer(&pgv1.Error{Code: code, Message: "m", RetryAfter: 2})
		if w.Code != status || body["error"] != code || body["message"] == "" {
			t.Errorf("%s: got %d %v, want %d", code, w.Code, body, status)
		}
		if (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) && w.Header().Get("Retry-After") != "2" {
			t.Errorf("%s: Retry-After %q, want 2", code, w.Header().Get("Retry-After"))
		}
	}
	for _, err := range []error{errors.New("connection reset: secret detail"), &pgv1.Error{Code: "made_up", Message: "secret detail"}} {
		w, body := answer(err)
		if w.Code != http.StatusInternalServerError || body["error"] != "pull_failed" || body["message"] != "internal error" {
			t.Errorf("%v: got %d %v, want 500 pull_failed without the cause", err, w.Code, body)
		}
	}
	w, body := answer(&pgv1.Error{Code: "push_conflict", Message: "m", Conflict: &pgv1.Conflict{Schema: "s", Table: "t",
		Key: json.RawMessage(`{"id":"a"}`), Op: "INSERT"}})
	c, _ := body["conflict"].(map[string]any)
	if w.Code != http.StatusConflict || c == nil || c["server_row"] != nil || c["server_row_version"] != 0.0 {
		t.Errorf("conflict without a server row: %d %v, want server_row null", w.Code, body)
	}
	if _, present := c["server_row"]; !present {
		t.Error("conflict answer lacks server_row; it must always be present")
	}
	w, _ = answer(&pgv1.Error{Code: "source_retired", Retired: &pgv1.Retired{ReplacedBySourceID: "bad id"}})
	if w.Code != http.StatusInternalServerError || !json.Valid(w.Body.Bytes()) {
		t.Errorf("invalid successor: %d %s, want 500 source_retired_invalid", w.Code, w.Body)
	}
}
