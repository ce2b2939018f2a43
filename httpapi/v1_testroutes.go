package httpapi

import (
	"net/http"
)

// setRetentionFloor serves POST /test/retention-floor (docs/protocol-v1.md §3.14), a test
// route: {"user_id": "…", "retained_bundle_floor": N} moves the user's floor to N, as if
// retention had discarded history up to it. 404 user_state_not_found for a user without v1
// state. Mounted only with V1Config.TestRoutes.
func (v *v1API) setRetentionFloor(w http.ResponseWriter, r *http.Request) {
	body, ok := readV1Body(w, r, v.cfg.MaxBodyBytes)
	if !ok {
		return
	}
	var user string
	var floor int64
	d := newJSONReader(body)
	names := []string{"user_id", "retained_bundle_floor"}
	err := d.request(names, func(i int) error {
		var err error
		if i == 0 {
			user, err = d.str(names[i])
		} else {
			floor, err = d.int64(names[i])
		}
		return err
	})
	switch {
	case err != nil:
		refuse(w, codeInvalidRequest, err.Error())
		return
	case user == "":
		refuse(w, codeInvalidRequest, "user_id is required")
		return
	case floor < 0:
		refuse(w, codeInvalidRequest, "retained_bundle_floor must be at least 0")
		return
	}
	if err := v.store.SetRetentionFloor(r.Context(), user, floor); err != nil {
		v.storeFailed(w, r, "retention_floor", err)
		return
	}
	v.s.writeEncoded(w, func(b []byte) []byte {
		b = appendStringMember(append(b, '{'), "status", "ok")
		b = appendStringMember(b, "user_id", user)
		return append(appendIntMember(b, "retained_bundle_floor", floor), '}')
	})
}

// watchSubscribers serves GET /test/watch-subscribers?user_id=… (§3.14): the number of open
// watch streams of the user on this node.
func (v *v1API) watchSubscribers(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("user_id")
	if user == "" {
		refuse(w, codeInvalidRequest, "user_id is required")
		return
	}
	v.s.writeEncoded(w, func(b []byte) []byte {
		b = appendStringMember(append(b, '{'), "user_id", user)
		b = appendIntMember(b, "subscriber_count", int64(v.watches.count(user)))
		return append(appendBool(appendMember(b, "process_local_only"), true), '}')
	})
}
