package importv0_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/pulsesync/pulsesync/internal/pgtest"
	"github.com/pulsesync/pulsesync/internal/servertest"
	"github.com/pulsesync/pulsesync/pg/importv0"
)

// Row keys of the scenario.
const (
	u1 = "11111111-1111-4111-8111-111111111111" // alice's user, synced by her phone
	u2 = "22222222-2222-4222-8222-222222222222" // alice's user, synced by her laptop
	p1 = "33333333-3333-4333-8333-333333333333" // alice's post, deleted
	b1 = "44444444-4444-4444-8444-444444444444" // bob's user
	b2 = "55555555-5555-4555-8555-555555555555" // bob's user, deleted
)

// scenario is what two users' devices synced through the reference: ids come from one global
// sequence, so each user's are interleaved with the other's, and they were committed out of
// id order. Entry 10 is a rejected change the reference leaked into the stream: it carries the
// version of entry 9 but not its image.
var scenario = []entry{
	{ID: 1, User: "alice", Source: "alice-phone", SCID: 1, Table: "users", Op: "INSERT", PK: u1, Payload: `{ "id": "` + u1 + `", "name": "Ann" }`, Version: 1},
	{ID: 2, User: "bob", Source: "bob-tablet", SCID: 1, Table: "users", Op: "INSERT", PK: b1, Payload: `{"name":"Bo"}`, Version: 1},
	{ID: 3, User: "alice", Source: "alice-laptop", SCID: 1, Table: "posts", Op: "INSERT", PK: p1, Payload: `{"title":"hi","author_id":"` + u1 + `"}`, Version: 1},
	{ID: 4, User: "bob", Source: "bob-tablet", SCID: 2, Table: "users", Op: "UPDATE", PK: b1, Payload: `{"name":"Bob"}`, Version: 2},
	{ID: 5, User: "alice", Source: "alice-phone", SCID: 2, Table: "users", Op: "UPDATE", PK: u1, Payload: `{"name":"Ann Lee"}`, Version: 2},
	{ID: 6, User: "alice", Source: "alice-laptop", SCID: 2, Table: "users", Op: "INSERT", PK: u2, Payload: `{"name":"Cy"}`, Version: 1},
	{ID: 7, User: "bob", Source: "bob-tablet", SCID: 3, Table: "users", Op: "INSERT", PK: b2, Payload: `{"name":"Di"}`, Version: 1},
	{ID: 8, User: "alice", Source: "alice-phone", SCID: 3, Table: "posts", Op: "DELETE", PK: p1, Version: 2},
	{ID: 9, User: "alice", Source: "alice-laptop", SCID: 3, Table: "users", Op: "UPDATE", PK: u2, Payload: `{"name":"Cy Young"}`, Version: 2},
	{ID: 10, User: "alice", Source: "alice-laptop", SCID: 4, Table: "users", Op: "UPDATE", PK: u2, Payload: `{"name":"stale"}`, Version: 2, Leaked: true},
	{ID: 11, User: "bob", Source: "bob-tablet", SCID: 4, Table: "users", Op: "DELETE", PK: b2, Version: 2},
}

// commitOrder is the order in which the scenario's uploads committed.
var commitOrder = []int{2, 4, 1, 3, 7, 5, 6, 11, 8, 9, 10}

// newScenario returns a reference database holding the scenario, with payloads of payloadType,
// and a materialization failure of a current version (b1 v2) and of an overtaken one (u1 v1).
func newScenario(t *testing.T, payloadType string) *reference {
	t.Helper()
	ref := newReference(t, payloadType)
	var entries []entry
	for _, id := range commitOrder {
		entries = append(entries, scenario[id-1])
	}
	ref.record(t, entries...)
	ref.fail(t, "bob", "users", b1, 2, "UPDATE", `{"name":"Bob"}`)
	ref.fail(t, "alice", "users", u1, 1, "INSERT", `{"name":"Ann"}`)
	return ref
}

// TestImport_DeviceContinuesWithItsCursor imports a reference deployment and checks, through a
// real server on the target, that devices continue with the cursors they hold: each receives
// exactly the entries it had not seen, a resent change answers applied without a second
// entry, a conflict reports the row's true image (not a leaked one), new ids start above the
// old global maximum, and re-running the import changes nothing.
func TestImport_DeviceContinuesWithItsCursor(t *testing.T) {
	t.Parallel()
	ref := newScenario(t, "json")
	dstURL := pgtest.NewDB(t)
	dst := connect(t, dstURL)

	res := mustRun(t, t.Context(), ref.pool, dst, importv0.Config{BatchSize: 4})
	if res.Action != "import" || res.Changes != 11 || res.Rows != 5 || res.Owners != 3 || res.Failures != 1 ||
		res.Users != 2 || res.Floor != 11 || res.Orphans != 0 {
		t.Fatalf("import result %+v: want action import, 11 changes, 5 rows, 3 owners, 1 failure, 2 users, floor 11, no orphans", res)
	}
	var payload string
	if err := dst.QueryRow(t.Context(), `SELECT payload FROM sync.changes WHERE server_id = 1`).Scan(&payload); err != nil {
		t.Fatalf("read entry 1: %v", err)
	}
	if want := `{"id":"` + u1 + `","name":"Ann"}`; payload != want {
		t.Errorf("entry 1 payload %s, want the compacted %s", payload, want)
	}
	var owners []string
	rows, _ := dst.Query(t.Context(), `SELECT table_name || ' ' || pk || ' ' || user_id FROM sync.business_owners ORDER BY pk`)
	for rows.Next() {
		var o string
		_ = rows.Scan(&o)
		owners = append(owners, o)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read owners: %v", err)
	}
	if want := []string{"users " + u1 + " alice", "users " + u2 + " alice", "users " + b1 + " bob"}; !slices.Equal(owners, want) {
		t.Errorf("business owners %q, want the live rows' users %q", owners, want)
	}

	before := snapshot(t, dst)
	again := mustRun(t, t.Context(), ref.pool, dst, importv0.Config{})
	if again.Action != "nothing to do (already imported)" {
		t.Errorf("second run's action %q, want nothing to do", again.Action)
	}
	if after := snapshot(t, dst); !slices.Equal(before, after) {
		t.Fatalf("re-running the import changed the target:\nbefore %q\nafter  %q", before, after)
	}

	srv := servertest.New(t, servertest.Options{DatabaseURL: dstURL})
	phone, laptop := device{srv, "alice", "alice-phone"}, device{srv, "alice", "alice-laptop"}
	bobWeb, bobTablet := device{srv, "bob", "bob-web"}, device{srv, "bob", "bob-tablet"}

	// The phone had downloaded up to 5: it gets alice's later entries but its own (8),
	// the leaked 10 included, as the reference would have served them.
	page := phone.download(t, 5)
	if got := page.ids(); !slices.Equal(got, []int64{6, 9, 10}) || page.NextAfter != 10 || page.WindowUntil != 11 || page.HasMore {
		t.Errorf("phone after=5: ids %v next_after %d window_until %d has_more %v; want [6 9 10], 10, 11, false",
			got, page.NextAfter, page.WindowUntil, page.HasMore)
	}
	if page := phone.download(t, 10); len(page.Changes) != 0 || page.NextAfter != 10 {
		t.Errorf("phone after=10: ids %v next_after %d, want none and 10", page.ids(), page.NextAfter)
	}
	if got := bobWeb.download(t, 2).ids(); !slices.Equal(got, []int64{4, 7, 11}) {
		t.Errorf("bob's new device after=2: ids %v, want [4 7 11]", got)
	}

	// The laptop never saw the answer to its change 3 and resends it.
	resend := laptop.upload(t, change{SCID: 3, Table: "users", Op: "UPDATE", PK: u2, Base: 1, Payload: json.RawMessage(`{"name":"Cy Young"}`)})
	if s := resend.Statuses[0]; s.Status != "applied" || s.NewServerVersion != nil || resend.Highest != 11 {
		t.Errorf("resent change 3: %+v, highest %d; want applied without a version, highest 11", s, resend.Highest)
	}
	conflict := laptop.upload(t, change{SCID: 5, Table: "users", Op: "UPDATE", PK: u2, Base: 1, Payload: json.RawMessage(`{"name":"Cy Z"}`)})
	if s := conflict.Statuses[0]; s.Status != "conflict" || s.ServerRow == nil || s.ServerRow.Version != 2 || string(s.ServerRow.Payload) != `{"name":"Cy Young"}` {
		t.Errorf("stale update of u2: %+v, want a conflict with version 2 and the image of entry 9", s)
	}

	// New changes get ids above the old global maximum, per user.
	if up := phone.upload(t, change{SCID: 4, Table: "users", Op: "UPDATE", PK: u1, Base: 2, Payload: json.RawMessage(`{"name":"Ann B"}`)}); up.Statuses[0].Status != "applied" || up.Highest != 12 {
		t.Errorf("phone's new change: %+v highest %d, want applied at 12", up.Statuses[0], up.Highest)
	}
	if up := bobTablet.upload(t, change{SCID: 5, Table: "users", Op: "UPDATE", PK: b1, Base: 2, Payload: json.RawMessage(`{"name":"Bobby"}`)}); up.Statuses[0].Status != "applied" || up.Highest != 12 {
		t.Errorf("bob's new change: %+v highest %d, want applied at 12", up.Statuses[0], up.Highest)
	}
	if got := laptop.download(t, 3).ids(); !slices.Equal(got, []int64{5, 8, 12}) {
		t.Errorf("laptop after=3: ids %v, want [5 8 12]", got)
	}
	var entries int64
	if err := dst.QueryRow(t.Context(), `SELECT count(*) FROM sync.changes WHERE user_id = 'alice'`).Scan(&entries); err != nil || entries != 8 {
		t.Errorf("alice's entries: %d (%v), want the 7 imported and the phone's new one", entries, err)
	}
}

// TestImport_JSONBSourceImportsLikeJSON imports the scenario from an older installation whose
// payload columns are jsonb and finds the same state as from json ones.
func TestImport_JSONBSourceImportsLikeJSON(t *testing.T) {
	t.Parallel()
	var snapshots [][]string
	for _, payloadType := range []string{"json", "jsonb"} {
		ref := newScenario(t, payloadType)
		dst := connect(t, pgtest.NewDB(t))
		mustRun(t, t.Context(), ref.pool, dst, importv0.Config{})
		snapshots = append(snapshots, snapshot(t, dst))
	}
	if !slices.Equal(snapshots[0], snapshots[1]) {
		t.Fatalf("json source gave\n%q\njsonb source gave\n%q", snapshots[0], snapshots[1])
	}
}

// device is one of a user's devices talking to the server.
type device struct {
	srv          *servertest.Server
	user, source string
}

// change is one change of an upload (docs/protocol-v0.md §3.1).
type change struct {
	SCID    int64           `json:"source_change_id"`
	Table   string          `json:"table"`
	Op      string          `json:"op"`
	PK      string          `json:"pk"`
	Base    int64           `json:"server_version"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// uploadAnswer is the answer to an upload.
type uploadAnswer struct {
	Highest  int64 `json:"highest_server_seq"`
	Statuses []struct {
		SCID             int64  `json:"source_change_id"`
		Status           string `json:"status"`
		NewServerVersion *int64 `json:"new_server_version"`
		ServerRow        *struct {
			Version int64           `json:"server_version"`
			Payload json.RawMessage `json:"payload"`
		} `json:"server_row"`
	} `json:"statuses"`
}

// downloadPage is one page of a download.
type downloadPage struct {
	Changes []struct {
		ServerID int64 `json:"server_id"`
	} `json:"changes"`
	HasMore     bool  `json:"has_more"`
	NextAfter   int64 `json:"next_after"`
	WindowUntil int64 `json:"window_until"`
}

// ids lists the page's server ids.
func (p downloadPage) ids() []int64 {
	ids := []int64{}
	for _, c := range p.Changes {
		ids = append(ids, c.ServerID)
	}
	return ids
}

// upload sends changes (schema business) and decodes the answer.
func (d device) upload(t *testing.T, changes ...change) uploadAnswer {
	t.Helper()
	type withSchema struct {
		Schema string `json:"schema"`
		change
	}
	body := struct {
		Changes []withSchema `json:"changes"`
	}{}
	for _, c := range changes {
		body.Changes = append(body.Changes, withSchema{"business", c})
	}
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatalf("encode upload: %v", err)
	}
	var answer uploadAnswer
	d.call(t, http.MethodPost, "/sync/upload", raw, &answer)
	if len(answer.Statuses) != len(changes) {
		t.Fatalf("upload of %d changes answered %d statuses", len(changes), len(answer.Statuses))
	}
	return answer
}

// download reads one page after the cursor, as a device's incremental sync does.
func (d device) download(t *testing.T, after int64) downloadPage {
	t.Helper()
	var page downloadPage
	d.call(t, http.MethodGet, fmt.Sprintf("/sync/download?after=%d&limit=1000", after), nil, &page)
	return page
}

// call makes one request as the device and decodes a 200 answer into out.
func (d device) call(t *testing.T, method, path string, body []byte, out any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, d.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+d.srv.Token(d.user, d.source))
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.srv.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %d %s (%v)", method, path, resp.StatusCode, raw, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
	}
}
