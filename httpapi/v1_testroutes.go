package httpapi

import (
	"net/http"
)

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
