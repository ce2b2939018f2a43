package httpapi_test

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/httpapi"
	"github.com/pulsesync/pulsesync/pgv1/wire"
)

// The worked example's identities (docs/protocol-v1.md §7): the user, the phone P, the laptop
// L and row R are chosen by the clients, so they are the document's; push, snapshot and
// initialization ids and times are the server's, and the test reads them from the answers.
const (
	exUser   = "alice"
	exPhone  = "5b0e8f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
	exLaptop = "9d8c7b6a-5f4e-4d3c-9b2a-1f0e9d8c7b6a"
	exRow    = "6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"
)

// exChunk is a one-row chunk of the worked example for row R.
func exChunk(op string, base int, payload string) string {
	row := `{"schema":"business","table":"users","key":{"id":"` + exRow + `"},"op":"` + op + `","base_row_version":` + strconv.Itoa(base)
	if payload != "" {
		row += `,"payload":` + payload
	}
	return `{"start_row_ordinal":0,"rows":[` + row + `}]}`
}

// exPayload is R's payload as a client sends it: the bool as "1", the int as a string.
func exPayload(email, name, visits string) string {
	return `{"active":"1","email":"` + email + `","id":"` + exRow + `","name":"` + name + `","visits":"` + visits + `"}`
}

type stagingAnswer struct {
	PushID                 string `json:"push_id"`
	Status                 string `json:"status"`
	PlannedRowCount        *int64 `json:"planned_row_count"`
	NextExpectedRowOrdinal *int64 `json:"next_expected_row_ordinal"`
	CanonicalRequestHash   string `json:"canonical_request_hash"`
}

// push runs create, one chunk and commit for a one-row bundle and returns the commit's answer.
func (c *v1Client) push(t *testing.T, sourceBundleID int, hash, initID, chunk string) response {
	t.Helper()
	body := `{"source_bundle_id":` + strconv.Itoa(sourceBundleID) + `,"planned_row_count":1,"canonical_request_hash":"` + hash + `"`
	if initID != "" {
		body += `,"initialization_id":"` + initID + `"`
	}
	var staged stagingAnswer
	c.ok(t, http.MethodPost, "/sync/push-sessions", body+"}", &staged)
	if staged.Status != "staging" || !wire.ValidUUID(staged.PushID) || staged.PlannedRowCount == nil || *staged.PlannedRowCount != 1 ||
		staged.NextExpectedRowOrdinal == nil || *staged.NextExpectedRowOrdinal != 0 || staged.CanonicalRequestHash != hash {
		t.Fatalf("create answered %+v, want staging with the documented echoes (§3.3)", staged)
	}
	r := c.ok(t, http.MethodPost, "/sync/push-sessions/"+staged.PushID+"/chunks", chunk, nil)
	if string(r.body) != `{"push_id":"`+staged.PushID+`","next_expected_row_ordinal":1}` {
		t.Fatalf("chunk answered %s", r.body)
	}
	return c.do(t, http.MethodPost, "/sync/push-sessions/"+staged.PushID+"/commit", "")
}

// TestV1_WorkedExample replays docs/protocol-v1.md §7 over HTTP: every request as printed, every
// answer compared with the document modulo the server's ids and times; all seven hashes must
// be the document's.
func TestV1_WorkedExample(t *testing.T) {
	srv := newV1Server(t, v1Options{v1: httpapi.V1Config{Watch: true}})
	phone, laptop := srv.device(exUser, exPhone), srv.device(exUser, exLaptop)

	// Step 0 is TestV1_Capabilities. Step 1: the phone attaches with an offline row.
	var conn struct {
		Resolution       string `json:"resolution"`
		InitializationID string `json:"initialization_id"`
		LeaseExpiresAt   string `json:"lease_expires_at"`
	}
	phone.ok(t, http.MethodPost, "/sync/connect", `{"has_local_pending_rows":true}`, &conn)
	if conn.Resolution != "initialize_local" || !wire.ValidUUID(conn.InitializationID) {
		t.Fatalf("step 1: %+v", conn)
	}
	if _, err := time.Parse(time.RFC3339Nano, conn.LeaseExpiresAt); err != nil || !strings.HasSuffix(conn.LeaseExpiresAt, "Z") || !strings.Contains(conn.LeaseExpiresAt, ".") {
		t.Fatalf("step 1: lease_expires_at %q, want RFC 3339 UTC with fractional seconds", conn.LeaseExpiresAt)
	}

	// Step 2: the seed push → bundle 1.
	const hash1, bundle1 = "361fd779dbf72311f02211bed60bca4c1fd2a72b9f8dd6a3a8d62d921ad0c69a", "2f7b2f65081f9904a2ef24a28138d4c58abca00cc41dfc5ebcbf90c1f1c57af7"
	commit1 := `{"bundle_seq":1,"source_id":"` + exPhone + `","source_bundle_id":1,"row_count":1,"bundle_hash":"` + bundle1 + `","canonical_request_hash":"` + hash1 + `"}`
	r := phone.push(t, 1, hash1, conn.InitializationID, exChunk("INSERT", 0, exPayload("ann@example.com", "Ann", "3")))
	if r.status != http.StatusOK || string(r.body) != commit1 {
		t.Fatalf("step 2 commit: %d %s, want %s", r.status, r.body, commit1)
	}
	payload1 := `{"active":true,"email":"ann@example.com","id":"` + exRow + `","name":"Ann","visits":"3"}`
	wantRows1 := compact(t, `{"bundle_seq":1,"source_id":"`+exPhone+`","source_bundle_id":1,"row_count":1,
	 "bundle_hash":"`+bundle1+`","canonical_request_hash":"`+hash1+`",
	 "rows":[{"schema":"business","table":"users","key":{"id":"`+exRow+`"},"op":"INSERT","row_version":1,"payload":`+payload1+`}],
	 "next_row_ordinal":0,"has_more":false}`)
	if r := phone.ok(t, http.MethodGet, "/sync/committed-bundles/1/rows?max_rows=1000", "", nil); string(r.body) != wantRows1 {
		t.Fatalf("step 2 rows:\n got %s\nwant %s", r.body, wantRows1)
	}
	replay := `{"status":"already_committed","bundle_seq":1,"source_id":"` + exPhone + `","source_bundle_id":1,"row_count":1,"bundle_hash":"` + bundle1 + `","canonical_request_hash":"` + hash1 + `"}`
	if r := phone.ok(t, http.MethodPost, "/sync/push-sessions", `{"source_bundle_id":1,"planned_row_count":1,"canonical_request_hash":"`+hash1+`"}`, nil); string(r.body) != replay {
		t.Fatalf("step 2 lost answer: %s, want %s", r.body, replay)
	}

	// Step 3: the laptop attaches by snapshot.
	if r := laptop.ok(t, http.MethodPost, "/sync/connect", `{"has_local_pending_rows":false}`, nil); string(r.body) != `{"resolution":"remote_authoritative"}` {
		t.Fatalf("step 3 connect: %s", r.body)
	}
	var snap struct {
		SnapshotID        string `json:"snapshot_id"`
		SnapshotBundleSeq int64  `json:"snapshot_bundle_seq"`
		RowCount          int64  `json:"row_count"`
		ByteCount         int64  `json:"byte_count"`
		ExpiresAt         string `json:"expires_at"`
	}
	laptop.ok(t, http.MethodPost, "/sync/snapshot-sessions", "", &snap)
	if snap.SnapshotBundleSeq != 1 || snap.RowCount != 1 || snap.ByteCount != 227 || !wire.ValidUUID(snap.SnapshotID) {
		t.Fatalf("step 3 snapshot: %+v", snap)
	}
	if _, err := time.Parse(time.RFC3339Nano, snap.ExpiresAt); err != nil {
		t.Fatalf("step 3 expires_at %q: %v", snap.ExpiresAt, err)
	}
	wantChunk := `{"snapshot_id":"` + snap.SnapshotID + `","snapshot_bundle_seq":1,"rows":[{"schema":"business","table":"users","key":{"id":"` + exRow + `"},"row_version":1,"payload":` + payload1 + `}],"next_row_ordinal":1,"has_more":false,"byte_count":227}`
	if r := laptop.ok(t, http.MethodGet, "/sync/snapshot-sessions/"+snap.SnapshotID+"?after_row_ordinal=0&max_rows=1000&max_bytes=4194304", "", nil); string(r.body) != wantChunk {
		t.Fatalf("step 3 chunk:\n got %s\nwant %s", r.body, wantChunk)
	}
	if r := laptop.do(t, http.MethodDelete, "/sync/snapshot-sessions/"+snap.SnapshotID, ""); r.status != http.StatusNoContent || len(r.body) != 0 {
		t.Fatalf("step 3 delete: %d %s", r.status, r.body)
	}

	// Step 4: the laptop renames Ann → bundle 2; its pull finds nothing new.
	const hash2, bundle2 = "51591ac181cc6899f14aad0ddd73ebe9583041cc52a279500e266a4e82ae6fb4", "090ec5fe1f8b552188a629f09afffc720ee145a5cf22aa6e875733f15d670388"
	r = laptop.push(t, 1, hash2, "", exChunk("UPDATE", 1, exPayload("ann@example.com", "Ann Lee", "4")))
	if want := `{"bundle_seq":2,"source_id":"` + exLaptop + `","source_bundle_id":1,"row_count":1,"bundle_hash":"` + bundle2 + `","canonical_request_hash":"` + hash2 + `"}`; r.status != http.StatusOK || string(r.body) != want {
		t.Fatalf("step 4 commit: %d %s, want %s", r.status, r.body, want)
	}
	if r := laptop.ok(t, http.MethodGet, "/sync/pull?after_bundle_seq=2&max_bundles=1000", "", nil); string(r.body) != `{"stable_bundle_seq":2,"bundles":[],"has_more":false}` {
		t.Fatalf("step 4 pull: %s", r.body)
	}

	// Step 5: the laptop opens a watch; no event comes while nothing is newer than 2.
	watch := openWatch(t, laptop, 2)

	// Step 6: the phone, still at version 1, conflicts.
	const hash3 = "628bd53f7671827cbd95e33e4ee2f663ee3f523f58dcf7a86e8ce569b4e0f344"
	var staged stagingAnswer
	phone.ok(t, http.MethodPost, "/sync/push-sessions", `{"source_bundle_id":2,"planned_row_count":1,"canonical_request_hash":"`+hash3+`"}`, &staged)
	phone.ok(t, http.MethodPost, "/sync/push-sessions/"+staged.PushID+"/chunks", exChunk("UPDATE", 1, exPayload("ann@work.example", "Ann", "3")), nil)
	r = phone.do(t, http.MethodPost, "/sync/push-sessions/"+staged.PushID+"/commit", "")
	body := wantV1Error(t, r, http.StatusConflict, "push_conflict")
	wantConflict := compact(t, `{"schema":"business","table":"users","key":{"id":"`+exRow+`"},
	  "op":"UPDATE","base_row_version":1,"server_row_version":2,"server_row_deleted":false,
	  "server_row":{"active":true,"email":"ann@example.com","id":"`+exRow+`","name":"Ann Lee","visits":"4"}}`)
	if string(body["conflict"]) != wantConflict {
		t.Fatalf("step 6 conflict:\n got %s\nwant %s", body["conflict"], wantConflict)
	}
	if r := phone.do(t, http.MethodDelete, "/sync/push-sessions/"+staged.PushID, ""); r.status != http.StatusNoContent {
		t.Fatalf("step 6 delete: %d %s", r.status, r.body)
	}

	// Step 7: the merged re-push → bundle 3.
	const hash4, bundle3 = "9067eea6bb8ff1380c71044d1525b966eb2bb543637fb3b94fdd751b57a6a3da", "5cb4db83979ca754e8a3b1e46b7656eea77c18e6a885f0396764180411742034"
	r = phone.push(t, 2, hash4, "", exChunk("UPDATE", 2, exPayload("ann@work.example", "Ann Lee", "4")))
	meta3 := `"bundle_seq":3,"source_id":"` + exPhone + `","source_bundle_id":2,"row_count":1,"bundle_hash":"` + bundle3 + `","canonical_request_hash":"` + hash4 + `"`
	if r.status != http.StatusOK || string(r.body) != "{"+meta3+"}" {
		t.Fatalf("step 7 commit: %d %s", r.status, r.body)
	}

	// Step 8: the watch fires; the laptop pulls bundle 3.
	if ev := watch.next(t); ev != "event: bundle\ndata: {\"bundle_seq\":3}" {
		t.Fatalf("step 8 event %q", ev)
	}
	bundle3JSON := `{` + meta3 + `,"rows":[{"schema":"business","table":"users","key":{"id":"` + exRow + `"},"op":"UPDATE","row_version":3,` +
		`"payload":{"active":true,"email":"ann@work.example","id":"` + exRow + `","name":"Ann Lee","visits":"4"}}]}`
	if r := laptop.ok(t, http.MethodGet, "/sync/pull?after_bundle_seq=2&max_bundles=1000", "", nil); string(r.body) != `{"stable_bundle_seq":3,"bundles":[`+bundle3JSON+`],"has_more":false}` {
		t.Fatalf("step 8 pull: %s", r.body)
	}

	// Step 9: the phone pulls bundles 2 and 3, in one page or in pages of one.
	var pull struct {
		Stable  int64 `json:"stable_bundle_seq"`
		Bundles []struct {
			BundleSeq int64 `json:"bundle_seq"`
		} `json:"bundles"`
		HasMore bool `json:"has_more"`
	}
	phone.ok(t, http.MethodGet, "/sync/pull?after_bundle_seq=1&max_bundles=1000", "", &pull)
	if pull.Stable != 3 || len(pull.Bundles) != 2 || pull.Bundles[0].BundleSeq != 2 || pull.Bundles[1].BundleSeq != 3 || pull.HasMore {
		t.Fatalf("step 9 pull: %+v", pull)
	}
	phone.ok(t, http.MethodGet, "/sync/pull?after_bundle_seq=1&max_bundles=1", "", &pull)
	if pull.Stable != 3 || len(pull.Bundles) != 1 || pull.Bundles[0].BundleSeq != 2 || !pull.HasMore {
		t.Fatalf("step 9 first page: %+v", pull)
	}
	if r := phone.ok(t, http.MethodGet, "/sync/pull?after_bundle_seq=2&max_bundles=1&target_bundle_seq=3", "", nil); string(r.body) != `{"stable_bundle_seq":3,"bundles":[`+bundle3JSON+`],"has_more":false}` {
		t.Fatalf("step 9 second page: %s", r.body)
	}

	// Step 10: the laptop deletes Ann → bundle 4, whose hash is vector C of §4.5.
	const hash5, bundle4 = "5e07a0e9691c998aaa41e1e7010f1feaa44fd84fa9a35dc8ec720b81a120f992", "353abf1d6fb0e04889327d75278438526f0fa1868c489fb6385b050f60251f8b"
	r = laptop.push(t, 2, hash5, "", exChunk("DELETE", 3, ""))
	if want := `{"bundle_seq":4,"source_id":"` + exLaptop + `","source_bundle_id":2,"row_count":1,"bundle_hash":"` + bundle4 + `","canonical_request_hash":"` + hash5 + `"}`; r.status != http.StatusOK || string(r.body) != want {
		t.Fatalf("step 10 commit: %d %s, want %s", r.status, r.body, want)
	}
	if r := laptop.ok(t, http.MethodGet, "/sync/pull?after_bundle_seq=3&max_bundles=1000", "", nil); !strings.Contains(string(r.body),
		`"rows":[{"schema":"business","table":"users","key":{"id":"`+exRow+`"},"op":"DELETE","row_version":4}]`) {
		t.Fatalf("step 10 pull: %s, want the DELETE row without payload", r.body)
	}

	// Step 11: history pruned up to 5000; a tablet at checkpoint 3 must rebuild.
	tablet := srv.device(exUser, "tablet")
	if r := tablet.do(t, http.MethodPost, "/test/retention-floor", `{"user_id":"alice","retained_bundle_floor":5000}`); r.status != http.StatusNotFound {
		t.Fatalf("test route mounted without V1Config.TestRoutes: %d", r.status)
	}
	setFloor(t, srv, exUser, 5000)
	wantV1Error(t, tablet.do(t, http.MethodGet, "/sync/pull?after_bundle_seq=3&max_bundles=1000", ""), http.StatusConflict, "history_pruned")
}

// setFloor moves user's retained floor through the store, as retention would.
func setFloor(t *testing.T, srv *v1Server, user string, floor int64) {
	t.Helper()
	if err := srv.node.V1Store.SetRetentionFloor(t.Context(), user, floor); err != nil {
		t.Fatal(err)
	}
}

// watchStream is an open GET /sync/watch.
type watchStream struct {
	events chan string
}

// openWatch opens a watch for c after seq and checks the answer's status and headers (§3.12
// step 5). The stream ends with the test.
func openWatch(t *testing.T, c *v1Client, after int64) *watchStream {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, c.srv.url+"/sync/watch?after_bundle_seq="+strconv.Itoa(int(after)), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Oversync-Source-ID", c.source)
	resp, err := c.srv.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	h := resp.Header
	if resp.StatusCode != http.StatusOK || h.Get("Content-Type") != "text/event-stream" || h.Get("Cache-Control") != "no-cache" || h.Get("X-Accel-Buffering") != "no" {
		t.Fatalf("watch answered %d %v", resp.StatusCode, h)
	}
	w := &watchStream{events: make(chan string, 16)}
	go func() {
		defer close(w.events)
		sc := bufio.NewScanner(resp.Body)
		var ev []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "" && len(ev) > 0:
				w.events <- strings.Join(ev, "\n")
				ev = nil
			case strings.HasPrefix(line, ":"): // heartbeat comments carry nothing
			case line != "":
				ev = append(ev, line)
			}
		}
	}()
	return w
}

// next returns the next event, failing the test if none comes in time.
func (w *watchStream) next(t *testing.T) string {
	t.Helper()
	select {
	case ev, ok := <-w.events:
		if !ok {
			t.Fatal("watch stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event in time")
		return ""
	}
}
