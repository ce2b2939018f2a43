package httpapi_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/pulsesync/pulsesync/httpapi"
	"github.com/pulsesync/pulsesync/pgv1"
)

// dbState fingerprints every table a v1 request could change, so a test can show that refused
// requests changed nothing. Snapshot expiries are left out: reading a chunk slides them.
func dbState(t *testing.T, srv *v1Server) string {
	t.Helper()
	const q = `SELECT concat_ws('|',
	 (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM sync_v1.scopes t),
	 (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM sync_v1.sources t),
	 (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM sync_v1.push_sessions t),
	 (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM sync_v1.push_rows t),
	 (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM sync_v1.bundles t),
	 (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM sync_v1.bundle_rows t),
	 (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM sync_v1.row_state t),
	 (SELECT string_agg(concat_ws(':', snapshot_id, row_count, byte_count, retired), ',' ORDER BY snapshot_id) FROM sync_v1.snapshots),
	 (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM business.users t),
	 (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM business.posts t),
	 (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM sync.user_seq t))`
	var s string
	if err := srv.pool.QueryRow(context.Background(), q).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// seedAlice initializes alice's scope with bundle 1 (row R) through the phone and returns a
// staging push session of the phone's next bundle, planned for two rows.
func seedAlice(t *testing.T, srv *v1Server) (pushID string) {
	t.Helper()
	phone := srv.device(exUser, exPhone)
	phone.ok(t, http.MethodPost, "/sync/connect", `{"has_local_pending_rows":false}`, nil)
	r := phone.push(t, 1, "29f3bd53bba8c4c8b2f6e59a3b0b5d65b3edfbc7e1a3c36b7f1ab2d0cbcc8d7f", "", exChunk("INSERT", 0, exPayload("ann@example.com", "Ann", "3")))
	// The hash above is not this row's: the commit must refuse it (§3.5 step 3), and the
	// session stays; the real hash then commits.
	wantV1Error(t, r, http.StatusBadRequest, "push_commit_invalid")
	const hash1 = "361fd779dbf72311f02211bed60bca4c1fd2a72b9f8dd6a3a8d62d921ad0c69a"
	if r := phone.push(t, 1, hash1, "", exChunk("INSERT", 0, exPayload("ann@example.com", "Ann", "3"))); r.status != http.StatusOK {
		t.Fatalf("seed commit: %d %s", r.status, r.body)
	}
	var staged stagingAnswer
	phone.ok(t, http.MethodPost, "/sync/push-sessions", `{"source_bundle_id":2,"planned_row_count":2,"canonical_request_hash":"`+strings.Repeat("a", 64)+`"}`, &staged)
	return staged.PushID
}

// createSnapshot creates a snapshot session for c and returns its id.
func createSnapshot(t *testing.T, c *v1Client) string {
	t.Helper()
	var snap struct {
		SnapshotID string `json:"snapshot_id"`
	}
	c.ok(t, http.MethodPost, "/sync/snapshot-sessions", "", &snap)
	return snap.SnapshotID
}

// TestV1_RefusedRequestsChangeNothing sends every kind of malformed, duplicated, oversized or
// wrongly typed request to every route and checks the documented 4xx (never a 5xx), and that
// the database is exactly as before.
func TestV1_RefusedRequestsChangeNothing(t *testing.T) {
	srv := newV1Server(t, v1Options{
		store: pgv1.Config{ReservedSources: []string{"server-writer"}, MaxRowsPerChunk: 3},
		v1:    httpapi.V1Config{Watch: true, MaxBodyBytes: 1 << 10, MaxChunkBytes: 4 << 10},
	})
	pushID := seedAlice(t, srv)
	snapID := createSnapshot(t, srv.device(exUser, exLaptop))
	before := dbState(t, srv)
	phone := srv.device(exUser, exPhone)
	noToken := &v1Client{srv: srv, source: exPhone}
	badToken := &v1Client{srv: srv, token: "x.y.z", source: exPhone}
	noSource := srv.device(exUser, "")
	upperID := strings.ToUpper(pushID)
	row := func(member string) string {
		return `{"start_row_ordinal":0,"rows":[{"schema":"business","table":"users","key":{"id":"` + exRow + `"},"op":"UPDATE","base_row_version":1` + member + `}]}`
	}
	payload := `,"payload":` + exPayload("a@b.c", "A", "1")
	var fourRows []string
	for i := range 4 {
		fourRows = append(fourRows, `{"schema":"business","table":"users","key":{"id":"00000000-0000-4000-8000-00000000000`+strconv.Itoa(i)+`"},"op":"DELETE","base_row_version":1}`)
	}
	big := `{"has_local_pending_rows":true,"pad":"` + strings.Repeat("x", 2<<10) + `"}`
	setHeader := func(name, value string) func(http.Header) {
		return func(h http.Header) { h.Set(name, value) }
	}
	addHeader := func(name, value string) func(http.Header) {
		return func(h http.Header) { h.Add(name, value) }
	}
	cases := []struct {
		name         string
		c            *v1Client
		method, path string
		body         string
		edit         func(http.Header)
		status       int
		code         string
	}{
		// §2.2: authentication first, before the source header, the path or the body.
		{"§2.2 no token", noToken, "POST", "/sync/connect", "garbage", nil, 401, "authentication_failed"},
		{"§2.2 bad token", badToken, "GET", "/sync/pull", "", nil, 401, "authentication_failed"},
		{"§2.2 no token, no source", &v1Client{srv: srv}, "GET", "/sync/capabilities", "", nil, 401, "authentication_failed"},
		{"§2.2 two Authorization headers", phone, "GET", "/sync/capabilities", "", addHeader("Authorization", "Bearer "+phone.token), 401, "authentication_failed"},
		// §2.3: the source header, exact grammar, reserved ids refused with the same message.
		{"§2.3 missing source", noSource, "GET", "/sync/capabilities", "", nil, 400, "invalid_request"},
		{"§2.3 source with a space", phone, "GET", "/sync/capabilities", "", setHeader("Oversync-Source-ID", "a b"), 400, "invalid_request"},
		{"§2.3 source too long", phone, "GET", "/sync/capabilities", "", setHeader("Oversync-Source-ID", strings.Repeat("a", 257)), 400, "invalid_request"},
		{"§2.3 source non-ASCII", phone, "GET", "/sync/capabilities", "", setHeader("Oversync-Source-ID", "é"), 400, "invalid_request"},
		{"§2.3 two source headers", phone, "GET", "/sync/capabilities", "", addHeader("Oversync-Source-ID", "other"), 400, "invalid_request"},
		{"§2.3 reserved source", phone, "POST", "/sync/connect", `{}`, setHeader("Oversync-Source-ID", "server-writer"), 400, "invalid_request"},
		// §3.2 connect.
		{"§3.2 no body", phone, "POST", "/sync/connect", "", nil, 400, "invalid_request"},
		{"§3.2 not JSON", phone, "POST", "/sync/connect", "yes", nil, 400, "invalid_request"},
		{"§3.2 wrong type", phone, "POST", "/sync/connect", `{"has_local_pending_rows":"true"}`, nil, 400, "invalid_request"},
		{"§3.2 unknown member", phone, "POST", "/sync/connect", `{"has_local_pending_rows":true,"source_id":"x"}`, nil, 400, "invalid_request"},
		{"§3.2 duplicate member", phone, "POST", "/sync/connect", `{"has_local_pending_rows":true,"has_local_pending_rows":false}`, nil, 400, "invalid_request"},
		{"§3.2 trailing data", phone, "POST", "/sync/connect", `{"has_local_pending_rows":true}{}`, nil, 400, "invalid_request"},
		{"§2.4 not JSON content type", phone, "POST", "/sync/connect", `{"has_local_pending_rows":true}`, setHeader("Content-Type", "text/plain"), 415, "unsupported_media_type"},
		{"§6.1 H7 body too large", phone, "POST", "/sync/connect", big, nil, 413, "request_too_large"},
		// §3.3 push create.
		{"§3.3 wrong type", phone, "POST", "/sync/push-sessions", `{"source_bundle_id":"2","planned_row_count":1,"canonical_request_hash":"` + strings.Repeat("a", 64) + `"}`, nil, 400, "invalid_request"},
		{"§3.3 fraction", phone, "POST", "/sync/push-sessions", `{"source_bundle_id":2.0,"planned_row_count":1,"canonical_request_hash":"` + strings.Repeat("a", 64) + `"}`, nil, 400, "invalid_request"},
		{"§3.3 zero source_bundle_id", phone, "POST", "/sync/push-sessions", `{"source_bundle_id":0,"planned_row_count":1,"canonical_request_hash":"` + strings.Repeat("a", 64) + `"}`, nil, 400, "push_session_invalid"},
		{"§3.3 zero planned rows", phone, "POST", "/sync/push-sessions", `{"source_bundle_id":2,"planned_row_count":0,"canonical_request_hash":"` + strings.Repeat("a", 64) + `"}`, nil, 400, "push_session_invalid"},
		{"§3.3 uppercase hash", phone, "POST", "/sync/push-sessions", `{"source_bundle_id":2,"planned_row_count":1,"canonical_request_hash":"` + strings.Repeat("A", 64) + `"}`, nil, 400, "push_session_invalid"},
		{"§3.3 malformed initialization_id", phone, "POST", "/sync/push-sessions", `{"source_bundle_id":2,"planned_row_count":1,"canonical_request_hash":"` + strings.Repeat("a", 64) + `","initialization_id":"x"}`, nil, 400, "push_session_invalid"},
		{"§3.3 initialization_id once initialized", phone, "POST", "/sync/push-sessions", `{"source_bundle_id":2,"planned_row_count":1,"canonical_request_hash":"` + strings.Repeat("a", 64) + `","initialization_id":"3c1f6a2e-7b4d-4f8e-9a10-5d2e8c7b6a41"}`, nil, 400, "push_session_invalid"},
		{"§3.3 same tuple, other hash", phone, "POST", "/sync/push-sessions", `{"source_bundle_id":1,"planned_row_count":1,"canonical_request_hash":"` + strings.Repeat("b", 64) + `"}`, nil, 400, "push_session_invalid"},
		{"§3.3 out of order", phone, "POST", "/sync/push-sessions", `{"source_bundle_id":3,"planned_row_count":1,"canonical_request_hash":"` + strings.Repeat("a", 64) + `"}`, nil, 409, "source_sequence_out_of_order"},
		// §3.4 chunk: the push_id first, then the body.
		{"§3.4 push_id not a UUID", phone, "POST", "/sync/push-sessions/nope/chunks", "garbage", nil, 404, "push_session_not_found"},
		{"§3.4 push_id uppercase", phone, "POST", "/sync/push-sessions/" + upperID + "/chunks", row(payload), nil, 404, "push_session_not_found"},
		{"§3.4 not JSON", phone, "POST", "/sync/push-sessions/" + pushID + "/chunks", "rows", nil, 400, "invalid_request"},
		{"§3.4 base_row_version as string", phone, "POST", "/sync/push-sessions/" + pushID + "/chunks", strings.Replace(row(payload), `"base_row_version":1`, `"base_row_version":"1"`, 1), nil, 400, "invalid_request"},
		{"§3.4 row unknown member", phone, "POST", "/sync/push-sessions/" + pushID + "/chunks", row(payload + `,"extra":1`), nil, 400, "invalid_request"},
		{"§3.4 empty rows", phone, "POST", "/sync/push-sessions/" + pushID + "/chunks", `{"start_row_ordinal":0,"rows":[]}`, nil, 400, "push_chunk_invalid"},
		{"§3.4 negative start", phone, "POST", "/sync/push-sessions/" + pushID + "/chunks", strings.Replace(row(payload), `"start_row_ordinal":0`, `"start_row_ordinal":-1`, 1), nil, 400, "push_chunk_invalid"},
		{"§3.4 negative base", phone, "POST", "/sync/push-sessions/" + pushID + "/chunks", strings.Replace(row(payload), `"base_row_version":1`, `"base_row_version":-1`, 1), nil, 400, "push_chunk_invalid"},
		{"§3.4 more rows than the chunk maximum", phone, "POST", "/sync/push-sessions/" + pushID + "/chunks", `{"start_row_ordinal":0,"rows":[` + strings.Join(fourRows, ",") + `]}`, nil, 400, "push_chunk_invalid"},
		{"§3.10 first row over max_bytes", phone, "GET", "/sync/snapshot-sessions/" + snapID + "?max_bytes=100", "", nil, 400, "snapshot_chunk_too_small"},
		{"§3.4 DELETE with payload", phone, "POST", "/sync/push-sessions/" + pushID + "/chunks", strings.Replace(row(payload), "UPDATE", "DELETE", 1), nil, 400, "push_chunk_invalid"},
		{"§3.4 UPDATE without payload", phone, "POST", "/sync/push-sessions/" + pushID + "/chunks", row(""), nil, 400, "push_chunk_invalid"},
		{"§3.4 JSON number in an int column", phone, "POST", "/sync/push-sessions/" + pushID + "/chunks", row(strings.Replace(payload, `"visits":"1"`, `"visits":1`, 1)), nil, 400, "push_chunk_invalid"},
		{"§3.4 hidden column in payload", phone, "POST", "/sync/push-sessions/" + pushID + "/chunks", row(strings.Replace(payload, `{"active"`, `{"_sync_scope_id":"bob","active"`, 1)), nil, 400, "push_chunk_invalid"},
		{"§3.4 unregistered table", phone, "POST", "/sync/push-sessions/" + pushID + "/chunks", strings.Replace(row(payload), `"table":"users"`, `"table":"secrets"`, 1), nil, 400, "push_chunk_invalid"},
		{"§3.4 out of order", phone, "POST", "/sync/push-sessions/" + pushID + "/chunks", strings.Replace(row(payload), `"start_row_ordinal":0`, `"start_row_ordinal":1`, 1), nil, 409, "push_chunk_out_of_order"},
		{"§3.4 unknown session", phone, "POST", "/sync/push-sessions/00000000-0000-4000-8000-000000000000/chunks", row(payload), nil, 404, "push_session_not_found"},
		{"§3.4 body over the chunk limit", phone, "POST", "/sync/push-sessions/" + pushID + "/chunks", row(strings.Replace(payload, `"A"`, `"`+strings.Repeat("a", 5<<10)+`"`, 1)), nil, 413, "request_too_large"},
		{"§3.4 not JSON content type", phone, "POST", "/sync/push-sessions/" + pushID + "/chunks", row(payload), setHeader("Content-Type", "application/x-www-form-urlencoded"), 415, "unsupported_media_type"},
		// §3.5 commit, §3.6 delete.
		{"§3.5 push_id not a UUID", phone, "POST", "/sync/push-sessions/1/commit", "", nil, 404, "push_session_not_found"},
		{"§3.5 a body with members", phone, "POST", "/sync/push-sessions/" + pushID + "/commit", `{"force":true}`, nil, 400, "invalid_request"},
		{"§3.5 staged rows short of the plan", phone, "POST", "/sync/push-sessions/" + pushID + "/commit", "", nil, 400, "push_commit_invalid"},
		{"§3.5 unknown session", phone, "POST", "/sync/push-sessions/00000000-0000-4000-8000-000000000000/commit", "", nil, 404, "push_session_not_found"},
		{"§3.6 push_id not a UUID", phone, "DELETE", "/sync/push-sessions/x", "", nil, 404, "push_session_not_found"},
		{"§3.6 another user's session", srv.device("bob", exPhone), "DELETE", "/sync/push-sessions/" + pushID, "", nil, 403, "push_session_forbidden"},
		// §3.7 committed rows.
		{"§3.7 seq not an integer", phone, "GET", "/sync/committed-bundles/one/rows", "", nil, 400, "committed_bundle_chunk_invalid"},
		{"§3.7 seq zero", phone, "GET", "/sync/committed-bundles/0/rows", "", nil, 400, "committed_bundle_chunk_invalid"},
		{"§3.7 negative after", phone, "GET", "/sync/committed-bundles/1/rows?after_row_ordinal=-1", "", nil, 400, "committed_bundle_chunk_invalid"},
		{"§3.7 after not an integer", phone, "GET", "/sync/committed-bundles/1/rows?after_row_ordinal=x", "", nil, 400, "committed_bundle_chunk_invalid"},
		{"§3.7 max_rows zero", phone, "GET", "/sync/committed-bundles/1/rows?max_rows=0", "", nil, 400, "committed_bundle_chunk_invalid"},
		{"§3.7 max_rows twice", phone, "GET", "/sync/committed-bundles/1/rows?max_rows=1&max_rows=2", "", nil, 400, "committed_bundle_chunk_invalid"},
		{"§3.7 no such bundle", phone, "GET", "/sync/committed-bundles/99/rows", "", nil, 404, "committed_bundle_not_found"},
		// §3.8 pull.
		{"§3.8 negative after", phone, "GET", "/sync/pull?after_bundle_seq=-1", "", nil, 400, "invalid_request"},
		{"§3.8 max_bundles zero", phone, "GET", "/sync/pull?max_bundles=0", "", nil, 400, "invalid_request"},
		{"§3.8 max_bundles above 5000", phone, "GET", "/sync/pull?max_bundles=5001", "", nil, 400, "invalid_request"},
		{"§3.8 max_bundles not an integer", phone, "GET", "/sync/pull?max_bundles=1e3", "", nil, 400, "invalid_request"},
		{"§3.8 negative target", phone, "GET", "/sync/pull?target_bundle_seq=-1", "", nil, 400, "invalid_request"},
		{"§3.8 checkpoint ahead", phone, "GET", "/sync/pull?after_bundle_seq=7", "", nil, 409, "checkpoint_ahead"},
		{"§3.8 target ahead", phone, "GET", "/sync/pull?after_bundle_seq=0&target_bundle_seq=9", "", nil, 409, "checkpoint_ahead"},
		{"§3.8 another user's scope", srv.device("carol", "c"), "GET", "/sync/pull", "", nil, 409, "scope_uninitialized"},
		// §3.9 snapshot create.
		{"§3.9 unknown member", phone, "POST", "/sync/snapshot-sessions", `{"x":1}`, nil, 400, "snapshot_session_invalid"},
		{"§3.9 array", phone, "POST", "/sync/snapshot-sessions", `[]`, nil, 400, "snapshot_session_invalid"},
		{"§3.9 trailing data", phone, "POST", "/sync/snapshot-sessions", `{} 1`, nil, 400, "snapshot_session_invalid"},
		{"§3.9 previous is not the header", phone, "POST", "/sync/snapshot-sessions", `{"source_replacement":{"previous_source_id":"other","new_source_id":"fresh","reason":"history_pruned"}}`, nil, 400, "snapshot_session_invalid"},
		{"§3.9 new equals previous", phone, "POST", "/sync/snapshot-sessions", `{"source_replacement":{"previous_source_id":"` + exPhone + `","new_source_id":"` + exPhone + `","reason":"history_pruned"}}`, nil, 400, "snapshot_session_invalid"},
		{"§3.9 reserved new id", phone, "POST", "/sync/snapshot-sessions", `{"source_replacement":{"previous_source_id":"` + exPhone + `","new_source_id":"server-writer","reason":"history_pruned"}}`, nil, 400, "snapshot_session_invalid"},
		{"§3.9 unknown reason", phone, "POST", "/sync/snapshot-sessions", `{"source_replacement":{"previous_source_id":"` + exPhone + `","new_source_id":"fresh","reason":"bored"}}`, nil, 400, "snapshot_session_invalid"},
		// §3.10 snapshot chunk, §3.11 delete.
		{"§3.10 after not an integer", phone, "GET", "/sync/snapshot-sessions/" + snapID + "?after_row_ordinal=a", "", nil, 400, "snapshot_chunk_invalid"},
		{"§3.10 negative after", phone, "GET", "/sync/snapshot-sessions/" + snapID + "?after_row_ordinal=-1", "", nil, 400, "snapshot_chunk_invalid"},
		{"§3.10 max_rows zero", phone, "GET", "/sync/snapshot-sessions/" + snapID + "?max_rows=0", "", nil, 400, "snapshot_chunk_invalid"},
		{"§3.10 max_bytes zero", phone, "GET", "/sync/snapshot-sessions/" + snapID + "?max_bytes=0", "", nil, 400, "snapshot_chunk_invalid"},
		{"§3.10 id not a UUID (§6.2 #1)", phone, "GET", "/sync/snapshot-sessions/abc", "", nil, 404, "snapshot_session_not_found"},
		{"§3.10 unknown session", phone, "GET", "/sync/snapshot-sessions/00000000-0000-4000-8000-000000000000", "", nil, 404, "snapshot_session_not_found"},
		{"§3.10 another user's session", srv.device("bob", "b"), "GET", "/sync/snapshot-sessions/" + snapID, "", nil, 403, "snapshot_session_forbidden"},
		{"§3.11 id not a UUID", phone, "DELETE", "/sync/snapshot-sessions/abc", "", nil, 404, "snapshot_session_not_found"},
		// §3.12 watch.
		{"§3.12 negative after", phone, "GET", "/sync/watch?after_bundle_seq=-1", "", nil, 400, "invalid_request"},
		{"§3.12 uninitialized scope", srv.device("carol", "c"), "GET", "/sync/watch", "", nil, 409, "scope_uninitialized"},
		// §2.5: a wrong method is 405 in the envelope.
		{"§2.5 wrong method", phone, "PUT", "/sync/pull", "", nil, 405, "method_not_allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var edit []func(http.Header)
			if tc.edit != nil {
				edit = append(edit, tc.edit)
			}
			wantV1Error(t, tc.c.do(t, tc.method, tc.path, tc.body, edit...), tc.status, tc.code)
		})
	}
	if after := dbState(t, srv); after != before {
		t.Fatalf("refused requests changed the database:\nbefore %s\nafter  %s", before, after)
	}
}

// TestV1_StructuredErrors checks the structured error forms of docs/protocol-v1.md §2.5 as
// clients decode them.
func TestV1_StructuredErrors(t *testing.T) {
	srv := newV1Server(t, v1Options{store: pgv1.Config{MaxBytesPerSnapshot: 100}})
	seedAlice(t, srv)
	phone := srv.device(exUser, exPhone)

	// snapshot_chunk_too_small (§3.10): the first row is 227 bytes.
	limited := newV1Server(t, v1Options{})
	seedAlice(t, limited)
	snapID := createSnapshot(t, limited.device(exUser, exLaptop))
	body := wantV1Error(t, limited.device(exUser, exLaptop).do(t, http.MethodGet, "/sync/snapshot-sessions/"+snapID+"?max_bytes=100", ""),
		http.StatusBadRequest, "snapshot_chunk_too_small")
	if string(body["required_byte_count"]) != "227" {
		t.Fatalf("required_byte_count %s, want 227", body["required_byte_count"])
	}

	// snapshot_session_limit_exceeded (§3.9 step 6): 227 bytes against a limit of 100.
	r := phone.do(t, http.MethodPost, "/sync/snapshot-sessions", "")
	body = wantV1Error(t, r, http.StatusConflict, "snapshot_session_limit_exceeded")
	if string(body["dimension"]) != `"byte_count"` || string(body["actual"]) != "227" || string(body["limit"]) != "100" {
		t.Fatalf("limit body %s", r.body)
	}

	// source_retired (§3.3 step 6): the phone rotates to a new source; the old one can no
	// longer push.
	lphone := limited.device(exUser, exPhone)
	lphone.ok(t, http.MethodPost, "/sync/snapshot-sessions", `{"source_replacement":{"previous_source_id":"`+exPhone+`","new_source_id":"phone-2","reason":"source_retired"}}`, nil)
	r = lphone.do(t, http.MethodPost, "/sync/push-sessions", `{"source_bundle_id":2,"planned_row_count":1,"canonical_request_hash":"`+strings.Repeat("a", 64)+`"}`)
	body = wantV1Error(t, r, http.StatusConflict, "source_retired")
	if string(body["message"]) != `"source is retired"` || string(body["source_id"]) != `"`+exPhone+`"` || string(body["replaced_by_source_id"]) != `"phone-2"` {
		t.Fatalf("source_retired body %s", r.body)
	}
}
