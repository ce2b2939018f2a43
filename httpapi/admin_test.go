package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulsesync/pulsesync/internal/servertest"
)

// failure mirrors one element of GET /admin/materialize-failures (docs/protocol-v0.md §6).
type failure struct {
	ID               int64           `json:"id"`
	UserID           string          `json:"user_id"`
	Schema           string          `json:"schema"`
	Table            string          `json:"table"`
	PK               string          `json:"pk"`
	AttemptedVersion int64           `json:"attempted_version"`
	Op               string          `json:"op"`
	Payload          json.RawMessage `json:"payload"`
	Error            string          `json:"error"`
	FirstSeen        time.Time       `json:"first_seen"`
	RetryCount       int             `json:"retry_count"`
}

// failureRows are alice's rows whose projection fails: bob synced the same ids first, and
// business rows belong to one user (docs/protocol-v0.md §10.3 #9).
var failureRows = []string{rowR, rowR2, "1b7e2a9c-3c1d-4e5f-8a6b-7c8d9e0f1a2b"}

// withFailures returns a server on which alice has one projection failure per failureRows.
func withFailures(t *testing.T) (srv *servertest.Server, alice, bob *device) {
	t.Helper()
	srv = servertest.New(t, servertest.Options{})
	alice, bob = newDevice(srv, "alice", "phone"), newDevice(srv, "bob", "phone")
	var changes []string
	for i, pk := range failureRows {
		changes = append(changes, insertUser(i+1, pk, "n"))
	}
	bob.upload(t, batch(changes...))
	for _, s := range alice.upload(t, batch(changes...)).Statuses {
		if s.Status != "applied" {
			t.Fatalf("a failed projection must still be applied, got %+v", s)
		}
	}
	return srv, alice, bob
}

func (d *device) listFailures(t *testing.T, query string) []failure {
	t.Helper()
	var out []failure
	wantStatus(t, call(t, d.srv, http.MethodGet, "/admin/materialize-failures?"+query, d.token, ""), http.StatusOK, &out)
	return out
}

func TestAdmin_ListFailures(t *testing.T) {
	srv, alice, bob := withFailures(t)

	r := call(t, srv, http.MethodGet, "/admin/materialize-failures", bob.token, "")
	if r.status != http.StatusOK || string(r.body) != "null\n" {
		t.Fatalf("bob, who has no failures: got %d %q, want 200 null", r.status, r.body)
	}

	all := alice.listFailures(t, "")
	if len(all) != len(failureRows) {
		t.Fatalf("alice has %d failures, want %d: %+v", len(all), len(failureRows), all)
	}
	seen := map[string]bool{}
	for _, f := range all {
		seen[f.PK] = true
		if f.ID <= 0 || f.UserID != "alice" || f.Schema != "business" || f.Table != "users" || f.AttemptedVersion != 1 ||
			f.Op != "INSERT" || string(f.Payload) != fmt.Sprintf(`{"id":%q,"name":"n"}`, f.PK) || f.Error == "" || f.FirstSeen.IsZero() || f.RetryCount != 0 {
			t.Errorf("failure %+v does not describe alice's failed INSERT of version 1", f)
		}
	}
	for _, pk := range failureRows {
		if !seen[pk] {
			t.Errorf("no failure listed for row %s", pk)
		}
	}

	cases := []struct {
		query string
		want  int
	}{
		{"limit=2", 2},
		{"limit=1", 1},
		{"limit=1000", 3},
		{"limit=0", 3},
		{"limit=-1", 3},
		{"limit=1001", 3},
		{"limit=x", 3},
		{"schema=business&table=users", 3},
		{"table=posts", 0},
		{"schema=public", 0},
	}
	for _, tc := range cases {
		if got := alice.listFailures(t, tc.query); len(got) != tc.want {
			t.Errorf("%s: %d failures, want %d", tc.query, len(got), tc.want)
		}
	}
}

func TestAdmin_RetryFailure(t *testing.T) {
	srv, alice, bob := withFailures(t)
	id := alice.listFailures(t, "limit=1")[0].ID
	path := "/admin/materialize-failures/retry"

	refusals := []struct {
		name, query, body string
		dev               *device
		status            int
		code, message     string
	}{
		{"no id", "", "", alice, 400, "invalid_request", "missing or invalid id"},
		{"zero id", "?id=0", "", alice, 400, "invalid_request", "missing or invalid id"},
		{"negative id", "?id=-3", "", alice, 400, "invalid_request", "missing or invalid id"},
		{"unparsable id", "?id=abc", "", alice, 400, "invalid_request", "missing or invalid id"},
		{"negative body id", "", `{"id":-1}`, alice, 400, "invalid_request", "missing or invalid id"},
		{"unknown id", "?id=999999", "", alice, 404, "not_found", "materialize failure not found"},
		{"another user's id", fmt.Sprintf("?id=%d", id), "", bob, 404, "not_found", "materialize failure not found"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, call(t, srv, http.MethodPost, path+tc.query, tc.dev.token, tc.body), tc.status, tc.code, tc.message)
		})
	}

	t.Run("fails again", func(t *testing.T) {
		for _, req := range []struct{ query, body string }{{fmt.Sprintf("?id=%d", id), ""}, {"?id=junk", fmt.Sprintf(`{"id":%d}`, id)}} {
			r := call(t, srv, http.MethodPost, path+req.query, alice.token, req.body)
			want := `{"source_change_id":0,"status":"materialize_error","new_server_version":1,"message":"the business row belongs to another user"}` + "\n"
			if r.status != http.StatusOK || string(r.body) != want {
				t.Fatalf("retry %s %s: got %d %s, want 200 %s", req.query, req.body, r.status, r.body, want)
			}
		}
		counts := map[int64]int{}
		for _, f := range alice.listFailures(t, "") {
			counts[f.ID] = f.RetryCount
		}
		for fid, n := range counts {
			if want := map[bool]int{true: 2}[fid == id]; n != want || len(counts) != len(failureRows) {
				t.Fatalf("retry counts by failure id %v, want %d failures, failure %d retried twice, no other", counts, len(failureRows), id)
			}
		}
	})

	t.Run("succeeds once the row is free", func(t *testing.T) {
		pk := ""
		for _, f := range alice.listFailures(t, "") {
			if f.ID == id {
				pk = f.PK
			}
		}
		bob.upload(t, batch(`{"source_change_id":9,"schema":"business","table":"users","op":"DELETE","pk":"`+pk+`","server_version":1}`))
		r := call(t, srv, http.MethodPost, fmt.Sprintf("%s?id=%d", path, id), alice.token, "")
		if want := `{"source_change_id":0,"status":"applied","new_server_version":1}` + "\n"; r.status != http.StatusOK || string(r.body) != want {
			t.Fatalf("got %d %s, want 200 %s", r.status, r.body, want)
		}
		for _, f := range alice.listFailures(t, "") {
			if f.ID == id {
				t.Fatalf("failure %d still listed after a successful retry", id)
			}
		}
		wantError(t, call(t, srv, http.MethodPost, fmt.Sprintf("%s?id=%d", path, id), alice.token, ""),
			http.StatusNotFound, "not_found", "materialize failure not found")
	})

	t.Run("in progress", func(t *testing.T) {
		id := alice.listFailures(t, "limit=1")[0].ID
		conn, err := pgx.Connect(t.Context(), srv.DatabaseURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(t.Context())
		tx, err := conn.Begin(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(t.Context())
		if _, err := tx.Exec(t.Context(), `SELECT 1 FROM sync.materialize_failures WHERE id = $1 FOR UPDATE`, id); err != nil {
			t.Fatal(err)
		}
		wantError(t, call(t, srv, http.MethodPost, fmt.Sprintf("%s?id=%d", path, id), alice.token, ""),
			http.StatusConflict, "retry_in_progress", "materialize failure retry is already in progress")
	})
}
