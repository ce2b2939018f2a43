package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/pulsesync/pulsesync/httpapi/auth"
)

// signInRequest is the body of POST /dummy-signin; the password is accepted and ignored.
type signInRequest struct {
	User   string `json:"user"`
	Device string `json:"device"`
}

// signInResponse has the four fields the KMP sample app requires.
type signInResponse struct {
	Token     string `json:"token"`
	ExpiresIn int64  `json:"expires_in"`
	User      string `json:"user"`
	Device    string `json:"device"`
}

// devSignIn serves POST /dummy-signin (docs/protocol-v0.md §1.5): a token for any user, no password
// checked. Mounted only with Config.DevSignIn. Without a device, one is invented from the clock
// as the reference does. Unlike the reference, its 400 answers are JSON with a JSON content type.
func (s *Server) devSignIn(w http.ResponseWriter, r *http.Request) {
	var req signInRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "invalid JSON")
		return
	}
	if req.User == "" {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "user required")
		return
	}
	if req.Device == "" {
		req.Device = "device-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	dev := s.cfg.DevSignIn
	token, err := auth.Mint(dev.Secret, req.User, req.Device, dev.TTL)
	if err != nil {
		s.serverError(r, "mint dev token", err)
		writeError(w, http.StatusInternalServerError, codeTokenError, "could not issue a token")
		return
	}
	writeJSON(w, signInResponse{Token: token, ExpiresIn: int64(dev.TTL / time.Second), User: req.User, Device: req.Device})
}
