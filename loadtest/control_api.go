package loadtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// ControlPath is where the control API serves the status, as k6's REST API does.
const ControlPath = "/v1/status"

// maxControlBody bounds a PATCH body; a status change is a few dozen bytes.
const maxControlBody = 64 << 10

// ControlDocument is the JSON:API envelope of k6's status resource:
// {"data": {"type": "status", "id": "default", "attributes": {...}}}.
type ControlDocument[A any] struct {
	Data ControlData[A] `json:"data"`
}

// ControlData is a ControlDocument's resource object.
type ControlData[A any] struct {
	Type       string `json:"type"`
	ID         string `json:"id"`
	Attributes A      `json:"attributes"`
}

// NewControlDocument wraps attributes as the status resource.
func NewControlDocument[A any](attributes A) ControlDocument[A] {
	return ControlDocument[A]{Data: ControlData[A]{Type: "status", ID: "default", Attributes: attributes}}
}

// ControlErrors is the body of every refused request: JSON:API errors, as k6's API answers.
type ControlErrors struct {
	Errors []ControlError `json:"errors"`
}

// ControlError is one JSON:API error object.
type ControlError struct {
	Status string `json:"status"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

// ControlHandler serves c as k6's REST API: GET /v1/status returns the status, PATCH
// /v1/status applies a ControlPatch in the same envelope and returns the new status. Every
// other request, a malformed body or a refused change gets a JSON error, never a panic.
func ControlHandler(c *Control) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != ControlPath {
			writeControlError(w, http.StatusNotFound, "not found", "the control API serves "+ControlPath)
			return
		}
		switch r.Method {
		case http.MethodGet:
			writeControlJSON(w, http.StatusOK, NewControlDocument(c.Status()))
		case http.MethodPatch:
			patch, err := decodeControlPatch(http.MaxBytesReader(w, r.Body, maxControlBody))
			if err != nil {
				writeControlError(w, http.StatusBadRequest, "bad request", err.Error())
				return
			}
			st, err := c.Apply(patch)
			switch {
			case errors.Is(err, ErrControlNotRunning):
				writeControlError(w, http.StatusConflict, "not running", err.Error())
			case err != nil:
				writeControlError(w, http.StatusBadRequest, "refused", err.Error())
			default:
				writeControlJSON(w, http.StatusOK, NewControlDocument(st))
			}
		default:
			w.Header().Set("Allow", "GET, PATCH")
			writeControlError(w, http.StatusMethodNotAllowed, "method not allowed", r.Method+" "+ControlPath+": use GET or PATCH")
		}
	})
}

// decodeControlPatch reads a PATCH body strictly: one status document whose attributes are
// ControlPatch's, nothing unknown, nothing after it.
func decodeControlPatch(body io.Reader) (ControlPatch, error) {
	var doc ControlDocument[ControlPatch]
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return ControlPatch{}, fmt.Errorf("decode status document: %w", err)
	}
	if dec.More() {
		return ControlPatch{}, errors.New("decode status document: data after the document")
	}
	if doc.Data.Type != "" && doc.Data.Type != "status" {
		return ControlPatch{}, fmt.Errorf("data.type %q: the control API serves \"status\"", doc.Data.Type)
	}
	return doc.Data.Attributes, nil
}

func writeControlError(w http.ResponseWriter, status int, title, detail string) {
	writeControlJSON(w, status, ControlErrors{Errors: []ControlError{{Status: strconv.Itoa(status), Title: title, Detail: detail}}})
}

func writeControlJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/vnd.api+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) // an error means the client has gone
}
