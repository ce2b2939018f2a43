package pgv1

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// wantCode fails the test unless err is the protocol refusal code whose message contains
// every fragment.
func wantCode(t *testing.T, err error, code string, fragments ...string) *Error {
	t.Helper()
	pe := protocolError(t, err)
	if pe.Code != code {
		t.Fatalf("got %s (%s), want %s", pe.Code, pe.Message, code)
	}
	for _, f := range fragments {
		if !strings.Contains(pe.Message, f) {
			t.Errorf("message %q does not contain %q", pe.Message, f)
		}
	}
	return pe
}

// exec runs sql on pool or fails the test.
func exec(t *testing.T, s *Store, sql string, args ...any) {
	t.Helper()
	if _, err := s.pool.Exec(t.Context(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

const (
	uuidA = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
	uuidB = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
)

// usersPushRow is an INSERT (or UPDATE) of business.users key k.
func usersPushRow(op, k string, base int64, name string) PushRow {
	return row("users", "id", k, op, base, `{"id":"`+k+`","name":"`+name+`","email":null,"visits":"1","active":"0"}`)
}

// initialized connects c's user so its scope is initialized.
func initialized(t *testing.T, s *Store, c Caller) {
	t.Helper()
	if res, err := s.Connect(t.Context(), c, false); err != nil || (res.Resolution != InitializeEmpty && res.Resolution != RemoteAuthoritative) {
		t.Fatalf("connect: %+v, %v", res, err)
	}
}

// createSession creates a staging session for rows and returns its push_id.
func createSession(t *testing.T, s *Store, c Caller, sbid int64, rows []PushRow, initID string) string {
	t.Helper()
	res, err := s.CreatePushSession(t.Context(), c, CreatePush{SourceBundleID: sbid, PlannedRowCount: int64(len(rows)), RequestHash: requestHash(t, rows), InitializationID: initID})
	if err != nil || res.PushID == "" {
		t.Fatalf("create session: %+v, %v", res, err)
	}
	return res.PushID
}

// docs/protocol-v1.md §3.2: the connect decision table, lease refresh and an expired lease.
func TestConnect_DecisionTable(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, Config{LeaseTTL: time.Hour})
	ctx := t.Context()
	a, b := Caller{User: "u1", Source: "a"}, Caller{User: "u1", Source: "b"}

	res, err := s.Connect(ctx, a, true)
	if err != nil || res.Resolution != InitializeLocal || res.InitializationID == "" || time.Until(res.LeaseExpiresAt) < 50*time.Minute {
		t.Fatalf("uninitialized, pending rows: %+v, %v; want initialize_local with an hour's lease", res, err)
	}
	again, err := s.Connect(ctx, a, true)
	if err != nil || again.Resolution != InitializeLocal || again.InitializationID != res.InitializationID || again.LeaseExpiresAt.Before(res.LeaseExpiresAt) {
		t.Fatalf("lease owner again: %+v, %v; want the same id, refreshed", again, err)
	}
	other, err := s.Connect(ctx, b, false)
	if err != nil || other.Resolution != RetryLater || other.RetryAfterSeconds < 3500 || other.InitializationID != "" || other.LeaseExpiresAt.IsZero() {
		t.Fatalf("another source while initializing: %+v, %v; want retry_later for about an hour", other, err)
	}
	done, err := s.Connect(ctx, a, false)
	if err != nil || done.Resolution != InitializeEmpty {
		t.Fatalf("lease owner without rows: %+v, %v; want initialize_empty", done, err)
	}
	for _, c := range []Caller{a, b} {
		if res, err := s.Connect(ctx, c, true); err != nil || res.Resolution != RemoteAuthoritative {
			t.Fatalf("initialized: %+v, %v; want remote_authoritative", res, err)
		}
	}

	// An expired lease is cleared: the next caller starts a lease of its own.
	u2a, u2b := Caller{User: "u2", Source: "a"}, Caller{User: "u2", Source: "b"}
	first, err := s.Connect(ctx, u2a, true)
	if err != nil {
		t.Fatal(err)
	}
	exec(t, s, `UPDATE sync_v1.scopes SET lease_expires_at = now() - interval '1 second' WHERE user_id = 'u2'`)
	second, err := s.Connect(ctx, u2b, true)
	if err != nil || second.Resolution != InitializeLocal || second.InitializationID == first.InitializationID {
		t.Fatalf("after the lease expired: %+v, %v; want a new initialize_local", second, err)
	}
	if res, err := s.Connect(ctx, Caller{User: "u3", Source: "a"}, false); err != nil || res.Resolution != InitializeEmpty {
		t.Fatalf("new scope without rows: %+v, %v; want initialize_empty", res, err)
	}
}

// docs/protocol-v1.md §3.3: the create checks, in the reference order.
func TestCreatePushSession_Checks(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, Config{})
	ctx := t.Context()
	rows := []PushRow{usersPushRow("INSERT", uuidA, 0, "x")}
	hash := requestHash(t, rows)
	create := func(c Caller, sbid int64, initID string) (CreatePushResult, error) {
		return s.CreatePushSession(ctx, c, CreatePush{SourceBundleID: sbid, PlannedRowCount: 1, RequestHash: hash, InitializationID: initID})
	}

	t.Run("step 2 invalid members", func(t *testing.T) {
		for _, req := range []CreatePush{
			{SourceBundleID: 0, PlannedRowCount: 1, RequestHash: hash},
			{SourceBundleID: 1, PlannedRowCount: 0, RequestHash: hash},
			{SourceBundleID: 1, PlannedRowCount: 1, RequestHash: strings.ToUpper(hash)},
			{SourceBundleID: 1, PlannedRowCount: 1, RequestHash: hash, InitializationID: "not-a-uuid"},
		} {
			_, err := s.CreatePushSession(ctx, Caller{User: "inv", Source: "a"}, req)
			wantCode(t, err, "push_session_invalid")
		}
	})
	t.Run("step 4 uninitialized", func(t *testing.T) {
		c := Caller{User: "uninit", Source: "a"}
		_, err := create(c, 1, "")
		wantCode(t, err, "scope_uninitialized")
		_, err = create(c, 1, uuidA)
		wantCode(t, err, "initialization_expired")
	})
	t.Run("step 4 initializing", func(t *testing.T) {
		owner, other := Caller{User: "initing", Source: "a"}, Caller{User: "initing", Source: "b"}
		lease, err := s.Connect(ctx, owner, true)
		if err != nil {
			t.Fatal(err)
		}
		_, err = create(owner, 1, "")
		wantCode(t, err, "scope_initializing")
		_, err = create(owner, 1, uuidB)
		wantCode(t, err, "initialization_stale")
		_, err = create(other, 1, lease.InitializationID)
		wantCode(t, err, "initialization_stale")
		if _, err := create(owner, 1, lease.InitializationID); err != nil {
			t.Fatalf("lease owner: %v", err)
		}
		exec(t, s, `UPDATE sync_v1.scopes SET lease_expires_at = now() - interval '1 second' WHERE user_id = 'initing'`)
		_, err = create(owner, 1, lease.InitializationID)
		wantCode(t, err, "initialization_expired")
	})
	t.Run("step 4 initialized with an initialization_id", func(t *testing.T) {
		c := Caller{User: "inited", Source: "a"}
		initialized(t, s, c)
		_, err := create(c, 1, uuidA)
		wantCode(t, err, "push_session_invalid")
	})
	t.Run("step 5 already committed", func(t *testing.T) {
		c := Caller{User: "replay", Source: "a"}
		initialized(t, s, c)
		m := mustPush(t, s, c, 1, rows, pushOpts{})
		res, err := create(c, 1, "")
		if err != nil || res.AlreadyCommitted == nil || *res.AlreadyCommitted != m || res.PushID != "" {
			t.Fatalf("replay: %+v, %v; want already_committed %+v", res, err, m)
		}
		_, err = s.CreatePushSession(ctx, c, CreatePush{SourceBundleID: 1, PlannedRowCount: 1, RequestHash: strings.Repeat("0", 64)})
		wantCode(t, err, "push_session_invalid", "does not match")
		// Once the bundle is below the retained floor, the tuple is history_pruned.
		exec(t, s, `UPDATE sync_v1.scopes SET retained_floor = 1 WHERE user_id = 'replay'`)
		_, err = create(c, 1, "")
		wantCode(t, err, "history_pruned")
	})
	t.Run("step 6 source state", func(t *testing.T) {
		c := Caller{User: "srcstate", Source: "a"}
		initialized(t, s, c)
		_, err := create(c, 2, "")
		wantCode(t, err, "source_sequence_out_of_order", "expected 1")
		exec(t, s, `INSERT INTO sync_v1.sources (user_id, source_id, max_committed_source_bundle_id) VALUES ('srcstate', 'a', 5)`)
		_, err = create(c, 3, "")
		wantCode(t, err, "history_pruned")
		exec(t, s, `UPDATE sync_v1.sources SET state = 'retired', replaced_by_source_id = 'b' WHERE user_id = 'srcstate'`)
		pe := wantCode(t, errOf(create(c, 6, "")), "source_retired")
		if pe.Message != "source is retired" || pe.Retired == nil || *pe.Retired != (Retired{SourceID: "a", ReplacedBySourceID: "b"}) {
			t.Fatalf("source_retired body %+v %+v", pe, pe.Retired)
		}
	})
	t.Run("step 7 hard replace", func(t *testing.T) {
		c := Caller{User: "replace", Source: "a"}
		initialized(t, s, c)
		first := createSession(t, s, c, 1, rows, "")
		second := createSession(t, s, c, 1, rows, "")
		_, err := s.StageChunk(ctx, c, first, 0, rows)
		wantCode(t, err, "push_session_not_found")
		if _, err := s.StageChunk(ctx, c, second, 0, rows); err != nil {
			t.Fatalf("the replacing session: %v", err)
		}
	})
}

// errOf drops a result, keeping its error.
func errOf[T any](_ T, err error) error { return err }

// docs/protocol-v1.md §3.4: the chunk checks, in the reference order.
func TestStageChunk_Checks(t *testing.T) {
	t.Parallel()
	s, _, c := newAliceStore(t, Config{MaxRowsPerChunk: 3, MaxStagedBytes: 4096})
	ctx := t.Context()
	valid := []PushRow{usersPushRow("INSERT", uuidA, 0, "x"), usersPushRow("INSERT", uuidB, 0, "y")}
	session := func() string { return createSession(t, s, c, 1, valid, "") }

	invalid := []struct {
		name      string
		start     int64
		rows      []PushRow
		fragments []string
	}{
		{"step 3 negative start", -1, valid, []string{"negative"}},
		{"step 3 no rows", 0, nil, []string{"empty"}},
		{"step 3 too many rows", 0, []PushRow{valid[0], valid[1], usersPushRow("INSERT", "cccccccc-cccc-4ccc-8ccc-cccccccccccc", 0, "z"), usersPushRow("INSERT", "dddddddd-dddd-4ddd-8ddd-dddddddddddd", 0, "w")}, []string{"at most 3"}},
		{"step 4 unregistered table", 0, []PushRow{row("nope", "id", "k", "INSERT", 0, `{}`)}, []string{"row 0", "business.nope", "not registered"}},
		{"step 4 bad op", 0, []PushRow{row("users", "id", uuidA, "UPSERT", 0, `{}`)}, []string{"op must be"}},
		{"step 4 uuid key not canonical", 0, []PushRow{row("users", "id", strings.ToUpper(uuidA), "DELETE", 1, "")}, []string{"lowercase dashed UUID"}},
		{"step 4 empty text key", 0, []PushRow{row("comments", "id", "", "DELETE", 1, "")}, []string{"must not be empty"}},
		{"step 4 key extra member", 0, []PushRow{{Schema: "business", Table: "users", Key: json.RawMessage(`{"id":"` + uuidA + `","x":"1"}`), Op: "DELETE", BaseRowVersion: 1}}, []string{"exactly one member"}},
		{"step 4 key not a string", 0, []PushRow{{Schema: "business", Table: "comments", Key: json.RawMessage(`{"id":1}`), Op: "DELETE", BaseRowVersion: 1}}, []string{"must be a string"}},
		{"step 4 key with the scope column", 0, []PushRow{{Schema: "business", Table: "users", Key: json.RawMessage(`{"_sync_scope_id":"bob"}`), Op: "DELETE", BaseRowVersion: 1}}, []string{"_sync_scope_id"}},
		{"step 4 duplicate key in chunk", 0, []PushRow{valid[0], valid[0]}, []string{"row 1", "also the key of row 0"}},
		{"step 4 DELETE with payload", 0, []PushRow{row("users", "id", uuidA, "DELETE", 1, `{"id":"`+uuidA+`"}`)}, []string{"no payload"}},
		{"step 4 INSERT without payload", 0, []PushRow{row("users", "id", uuidA, "INSERT", 0, "")}, []string{"needs a payload"}},
		{"step 4 payload not an object", 0, []PushRow{row("users", "id", uuidA, "INSERT", 0, `[1]`)}, []string{"object"}},
		{"step 4 payload with the scope column", 0, []PushRow{row("users", "id", uuidA, "INSERT", 0, `{"_sync_scope_id":"bob"}`)}, []string{"_sync_scope_id"}},
		{"step 4 payload key differs", 0, []PushRow{row("users", "id", uuidA, "INSERT", 0, `{"id":"`+uuidB+`"}`)}, []string{"must equal the key"}},
		{"step 4 unknown column (§6.2 #3)", 0, []PushRow{row("users", "id", uuidA, "INSERT", 0, `{"nickname":"x"}`)}, []string{"nickname", "not a column"}},
		{"step 4 bad column name", 0, []PushRow{row("users", "id", uuidA, "INSERT", 0, `{"Name":"x"}`)}, []string{"not a valid column name"}},
		{"step 4 duplicate member", 0, []PushRow{row("users", "id", uuidA, "INSERT", 0, `{"name":"x","name":"y"}`)}, []string{"payload"}},
		{"step 4 invalid integer", 2, []PushRow{row("users", "id", uuidA, "INSERT", 0, `{"visits":"01"}`)}, []string{"row 2 (business.users): column visits: category=invalid_integer"}},
		{"step 4 JSON number", 0, []PushRow{row("users", "id", uuidA, "INSERT", 0, `{"visits":3}`)}, []string{"category=legacy_json_number"}},
		{"step 4 int2 out of range", 0, []PushRow{row("typed_rows", "id", "t", "INSERT", 0, `{"i2":"32768"}`)}, []string{"category=out_of_range"}},
		{"step 4 bad bool", 0, []PushRow{row("users", "id", uuidA, "INSERT", 0, `{"active":"true"}`)}, []string{"category=invalid_boolean_bridge"}},
		{"step 4 bad float", 0, []PushRow{row("typed_rows", "id", "t", "INSERT", 0, `{"f8":"1.0"}`)}, []string{"category=invalid_float"}},
		{"step 4 bad bytea", 0, []PushRow{row("typed_rows", "id", "t", "INSERT", 0, `{"bin":"!!"}`)}, []string{"category=invalid_bytea"}},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.StageChunk(ctx, c, session(), tc.start, tc.rows)
			wantCode(t, err, "push_chunk_invalid", tc.fragments...)
		})
	}

	t.Run("step 1 malformed push_id", func(t *testing.T) {
		_, err := s.StageChunk(ctx, c, "ABC", 0, valid)
		wantCode(t, err, "push_session_not_found")
	})
	t.Run("step 5 session lookup", func(t *testing.T) {
		id := session()
		_, err := s.StageChunk(ctx, c, uuidA, 0, valid)
		wantCode(t, err, "push_session_not_found")
		_, err = s.StageChunk(ctx, Caller{User: "mallory", Source: "a"}, id, 0, valid)
		wantCode(t, err, "push_session_forbidden")
		_, err = s.StageChunk(ctx, Caller{User: "alice", Source: "other"}, id, 0, valid)
		wantCode(t, err, "push_session_forbidden")
		exec(t, s, `UPDATE sync_v1.push_sessions SET expires_at = now() - interval '1 second' WHERE push_id = $1`, id)
		_, err = s.StageChunk(ctx, c, id, 0, valid)
		wantCode(t, err, "push_session_expired")
	})
	t.Run("step 6 seed lease", func(t *testing.T) {
		seeder := Caller{User: "seeder", Source: "a"}
		lease, err := s.Connect(ctx, seeder, true)
		if err != nil {
			t.Fatal(err)
		}
		id := createSession(t, s, seeder, 1, valid, lease.InitializationID)
		if _, err := s.StageChunk(ctx, seeder, id, 0, valid[:1]); err != nil {
			t.Fatalf("seed chunk: %v", err)
		}
		exec(t, s, `UPDATE sync_v1.scopes SET lease_expires_at = now() - interval '1 second' WHERE user_id = 'seeder'`)
		_, err = s.StageChunk(ctx, seeder, id, 1, valid[1:])
		wantCode(t, err, "initialization_expired")
	})
	t.Run("step 7 order and retries (§6.2 #5)", func(t *testing.T) {
		id := session()
		_, err := s.StageChunk(ctx, c, id, 1, valid[1:])
		wantCode(t, err, "push_chunk_out_of_order", "expected 0")
		if next, err := s.StageChunk(ctx, c, id, 0, valid[:1]); err != nil || next != 1 {
			t.Fatalf("first chunk: %d, %v", next, err)
		}
		if next, err := s.StageChunk(ctx, c, id, 0, valid[:1]); err != nil || next != 1 {
			t.Fatalf("identical retried chunk: %d, %v; want 1", next, err)
		}
		_, err = s.StageChunk(ctx, c, id, 0, []PushRow{usersPushRow("INSERT", uuidA, 0, "changed")})
		wantCode(t, err, "push_chunk_out_of_order")
	})
	t.Run("step 8 beyond planned_row_count", func(t *testing.T) {
		id := createSession(t, s, c, 1, valid[:1], "")
		_, err := s.StageChunk(ctx, c, id, 0, valid)
		wantCode(t, err, "push_chunk_invalid", "planned_row_count 1")
	})
	t.Run("step 9 destination preflight", func(t *testing.T) {
		for _, payload := range []string{`{"vc":"far too long"}`, `{"d":"not a date"}`, `{"n":"1e30"}`} {
			rows := []PushRow{row("typed_rows", "id", "t", "INSERT", 0, payload)}
			_, err := s.StageChunk(ctx, c, createSession(t, s, c, 1, rows, ""), 0, rows)
			wantCode(t, err, "push_chunk_invalid", "business.typed_rows", "category=destination_type_invalid")
		}
	})
	t.Run("duplicate key across chunks", func(t *testing.T) {
		id := session()
		if _, err := s.StageChunk(ctx, c, id, 0, valid[:1]); err != nil {
			t.Fatal(err)
		}
		_, err := s.StageChunk(ctx, c, id, 1, valid[:1])
		wantCode(t, err, "push_chunk_invalid", "earlier chunk")
	})
	t.Run("staged bytes bound", func(t *testing.T) {
		big := []PushRow{row("users", "id", uuidA, "INSERT", 0, `{"name":"`+strings.Repeat("x", 5000)+`"}`)}
		_, err := s.StageChunk(ctx, c, createSession(t, s, c, 1, big, ""), 0, big)
		wantCode(t, err, "request_too_large")
	})
}

// docs/protocol-v1.md §3.5: the commit checks, in the reference order.
func TestCommitPush_Checks(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, Config{})
	ctx := t.Context()
	rows := []PushRow{usersPushRow("INSERT", uuidA, 0, "x")}
	staged := func(c Caller, sbid int64, rows []PushRow) string {
		id := createSession(t, s, c, sbid, rows, "")
		if _, err := s.StageChunk(ctx, c, id, 0, rows); err != nil {
			t.Fatal(err)
		}
		return id
	}

	t.Run("step 1 session lookup", func(t *testing.T) {
		c := Caller{User: "lookup", Source: "a"}
		initialized(t, s, c)
		_, err := s.CommitPush(ctx, c, "nope")
		wantCode(t, err, "push_session_not_found")
		id := staged(c, 1, rows)
		_, err = s.CommitPush(ctx, Caller{User: "mallory", Source: "a"}, id)
		wantCode(t, err, "push_session_forbidden")
		exec(t, s, `UPDATE sync_v1.push_sessions SET expires_at = now() - interval '1 second' WHERE push_id = $1`, id)
		_, err = s.CommitPush(ctx, c, id)
		wantCode(t, err, "push_session_expired")
	})
	t.Run("step 2 incomplete staging", func(t *testing.T) {
		c := Caller{User: "incomplete", Source: "a"}
		initialized(t, s, c)
		two := []PushRow{usersPushRow("INSERT", uuidA, 0, "x"), usersPushRow("INSERT", uuidB, 0, "y")}
		id := createSession(t, s, c, 1, two, "")
		if _, err := s.StageChunk(ctx, c, id, 0, two[:1]); err != nil {
			t.Fatal(err)
		}
		_, err := s.CommitPush(ctx, c, id)
		wantCode(t, err, "push_commit_invalid", "staged 1 rows")
	})
	t.Run("step 3 request hash", func(t *testing.T) {
		c := Caller{User: "hash", Source: "a"}
		initialized(t, s, c)
		res, err := s.CreatePushSession(ctx, c, CreatePush{SourceBundleID: 1, PlannedRowCount: 1, RequestHash: strings.Repeat("a", 64)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.StageChunk(ctx, c, res.PushID, 0, rows); err != nil {
			t.Fatal(err)
		}
		_, err = s.CommitPush(ctx, c, res.PushID)
		wantCode(t, err, "push_commit_invalid", "canonical_request_hash")
	})
	t.Run("step 5 seed lease", func(t *testing.T) {
		c := Caller{User: "seedlease", Source: "a"}
		lease, err := s.Connect(ctx, c, true)
		if err != nil {
			t.Fatal(err)
		}
		id := createSession(t, s, c, 1, rows, lease.InitializationID)
		if _, err := s.StageChunk(ctx, c, id, 0, rows); err != nil {
			t.Fatal(err)
		}
		exec(t, s, `UPDATE sync_v1.scopes SET initialization_id = $1 WHERE user_id = 'seedlease'`, uuidB)
		_, err = s.CommitPush(ctx, c, id)
		wantCode(t, err, "initialization_stale")
		exec(t, s, `UPDATE sync_v1.scopes SET initialization_id = $1 WHERE user_id = 'seedlease'`, lease.InitializationID)
		m, err := s.CommitPush(ctx, c, id)
		if err != nil || m.BundleSeq != 1 {
			t.Fatalf("seed commit: %+v, %v", m, err)
		}
		if res, err := s.Connect(ctx, Caller{User: "seedlease", Source: "b"}, true); err != nil || res.Resolution != RemoteAuthoritative {
			t.Fatalf("after the seed commit: %+v, %v; want the scope initialized", res, err)
		}
	})
	t.Run("step 6 source state", func(t *testing.T) {
		c := Caller{User: "srccommit", Source: "a"}
		initialized(t, s, c)
		id := staged(c, 1, rows)
		exec(t, s, `INSERT INTO sync_v1.sources (user_id, source_id, max_committed_source_bundle_id) VALUES ('srccommit', 'a', 1)`)
		_, err := s.CommitPush(ctx, c, id)
		wantCode(t, err, "source_sequence_changed")
		exec(t, s, `UPDATE sync_v1.sources SET state = 'retired' WHERE user_id = 'srccommit'`)
		pe := wantCode(t, errOf(s.CommitPush(ctx, c, id)), "source_retired")
		if pe.Retired == nil || pe.Retired.SourceID != "a" || pe.Retired.ReplacedBySourceID != "" {
			t.Fatalf("source_retired body %+v", pe.Retired)
		}
	})
	t.Run("step 7 conflicts", func(t *testing.T) {
		c := Caller{User: "conflicts", Source: "a"}
		initialized(t, s, c)
		mustPush(t, s, c, 1, []PushRow{usersPushRow("INSERT", uuidA, 0, "live"), usersPushRow("INSERT", uuidB, 0, "gone")}, pushOpts{})
		mustPush(t, s, c, 2, []PushRow{row("users", "id", uuidB, "DELETE", 1, "")}, pushOpts{})
		const absent = "cccccccc-cccc-4ccc-8ccc-cccccccccccc"
		live := json.RawMessage(`{"active":false,"email":null,"id":"` + uuidA + `","name":"live","visits":"1"}`)
		for _, tc := range []struct {
			name    string
			row     PushRow
			version int64
			deleted bool
			server  json.RawMessage
		}{
			{"INSERT over a live row", usersPushRow("INSERT", uuidA, 1, "x"), 1, false, live},
			{"INSERT with a base over a new row", usersPushRow("INSERT", absent, 1, "x"), 0, false, json.RawMessage("null")},
			{"INSERT reviving with a wrong base", usersPushRow("INSERT", uuidB, 1, "x"), 2, true, json.RawMessage("null")},
			{"UPDATE of an absent row", usersPushRow("UPDATE", absent, 0, "x"), 0, false, json.RawMessage("null")},
			{"UPDATE of a tombstone", usersPushRow("UPDATE", uuidB, 2, "x"), 2, true, json.RawMessage("null")},
			{"UPDATE with a stale base", usersPushRow("UPDATE", uuidA, 0, "x"), 1, false, live},
			{"DELETE with a stale base", row("users", "id", uuidA, "DELETE", 2, ""), 1, false, live},
		} {
			t.Run(tc.name, func(t *testing.T) {
				// The conflicting row comes second: the check covers the whole bundle.
				first := row("comments", "id", "ok-"+tc.name, "INSERT", 0, `{"body":"b"}`)
				id := staged(c, 3, []PushRow{first, tc.row})
				pe := wantCode(t, errOf(s.CommitPush(ctx, c, id)), "push_conflict")
				cf := pe.Conflict
				if cf == nil || cf.Op != tc.row.Op || cf.BaseRowVersion != tc.row.BaseRowVersion || cf.ServerRowVersion != tc.version ||
					cf.ServerRowDeleted != tc.deleted || string(cf.ServerRow) != string(tc.server) || string(cf.Key) != string(tc.row.Key) {
					t.Fatalf("conflict %+v (server_row %s)", cf, cf.ServerRow)
				}
				// Nothing was applied and the session stays staged.
				wantCode(t, errOf(s.CommitPush(ctx, c, id)), "push_conflict")
			})
		}
		// Reviving the tombstone at its version is accepted.
		m := mustPush(t, s, c, 3, []PushRow{usersPushRow("INSERT", uuidB, 2, "back")}, pushOpts{})
		if m.BundleSeq != 3 {
			t.Fatalf("revive: %+v", m)
		}
	})
	t.Run("step 8 business rejections (§6.2 #4)", func(t *testing.T) {
		c := Caller{User: "reject", Source: "a"}
		initialized(t, s, c)
		for _, tc := range []struct {
			row      PushRow
			category string
		}{
			{row("comments", "id", "c", "INSERT", 0, `{"body":"b","stars":"9"}`), "check_violation"},
			{row("comments", "id", "c", "INSERT", 0, `{"body":null}`), "not_null_violation"},
			{row("posts", "id", uuidA, "INSERT", 0, `{"author_id":"`+uuidB+`","title":"t"}`), "foreign_key_violation"},
		} {
			id := staged(c, 1, []PushRow{tc.row})
			wantCode(t, errOf(s.CommitPush(ctx, c, id)), "push_commit_invalid", "category="+tc.category)
		}
	})
	t.Run("step 9 no effects", func(t *testing.T) {
		c := Caller{User: "noeffect", Source: "a"}
		initialized(t, s, c)
		mustPush(t, s, c, 1, rows, pushOpts{})
		// Another application removes the row behind the store's back (no capture marker).
		exec(t, s, `DELETE FROM business.users WHERE _sync_scope_id = 'noeffect'`)
		id := staged(c, 2, []PushRow{usersPushRow("UPDATE", uuidA, 1, "y")})
		wantCode(t, errOf(s.CommitPush(ctx, c, id)), "push_commit_invalid", "no captured")
	})
	t.Run("steps 10 and 11 watermark, reserved source, session gone", func(t *testing.T) {
		c := Caller{User: "after", Source: "r"}
		initialized(t, s, c)
		exec(t, s, `INSERT INTO sync_v1.sources (user_id, source_id, state) VALUES ('after', 'r', 'reserved')`)
		id := staged(c, 1, rows)
		if _, err := s.CommitPush(ctx, c, id); err != nil {
			t.Fatal(err)
		}
		var state string
		var watermark int64
		if err := s.pool.QueryRow(ctx, `SELECT state, max_committed_source_bundle_id FROM sync_v1.sources WHERE user_id = 'after'`).Scan(&state, &watermark); err != nil {
			t.Fatal(err)
		}
		if state != "active" || watermark != 1 {
			t.Errorf("source after commit: %s, watermark %d; want active, 1", state, watermark)
		}
		wantCode(t, errOf(s.CommitPush(ctx, c, id)), "push_session_not_found")
		wantCode(t, s.DeletePushSession(ctx, c, id), "push_session_not_found")
	})
}

// docs/protocol-v1.md §3.6: deleting a session.
func TestDeletePushSession(t *testing.T) {
	t.Parallel()
	s, _, c := newAliceStore(t, Config{})
	ctx := t.Context()
	rows := []PushRow{usersPushRow("INSERT", uuidA, 0, "x")}
	wantCode(t, s.DeletePushSession(ctx, c, "x"), "push_session_not_found")
	wantCode(t, s.DeletePushSession(ctx, c, uuidA), "push_session_not_found")
	id := createSession(t, s, c, 1, rows, "")
	wantCode(t, s.DeletePushSession(ctx, Caller{User: "bob", Source: "a"}, id), "push_session_forbidden")
	if err := s.DeletePushSession(ctx, c, id); err != nil {
		t.Fatalf("delete: %v", err)
	}
	wantCode(t, s.DeletePushSession(ctx, c, id), "push_session_not_found")
	id = createSession(t, s, c, 1, rows, "")
	exec(t, s, `UPDATE sync_v1.push_sessions SET expires_at = now() - interval '1 second' WHERE push_id = $1`, id)
	wantCode(t, s.DeletePushSession(ctx, c, id), "push_session_expired")
}

// Sweep removes expired push sessions of every user with their staged rows, and only those.
func TestSweep_RemovesExpiredPushSessions(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, Config{})
	ctx := t.Context()
	rows := []PushRow{usersPushRow("INSERT", uuidA, 0, "x")}
	var ids []string
	for _, user := range []string{"u1", "u2", "u3"} {
		c := Caller{User: user, Source: "a"}
		initialized(t, s, c)
		id := createSession(t, s, c, 1, rows, "")
		if _, err := s.StageChunk(ctx, c, id, 0, rows); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	exec(t, s, `UPDATE sync_v1.push_sessions SET expires_at = now() - interval '1 second' WHERE user_id IN ('u1', 'u2')`)
	if n, err := s.sweepPushSessions(ctx); err != nil || n != 2 {
		t.Fatalf("sweep: %d, %v; want 2 sessions removed", n, err)
	}
	var sessions, staged int
	if err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM sync_v1.push_sessions), (SELECT count(*) FROM sync_v1.push_rows)`).Scan(&sessions, &staged); err != nil {
		t.Fatal(err)
	}
	if sessions != 1 || staged != 1 {
		t.Fatalf("%d sessions and %d staged rows left, want the live session's 1 and 1", sessions, staged)
	}
	if _, err := s.CommitPush(ctx, Caller{User: "u3", Source: "a"}, ids[2]); err != nil {
		t.Fatalf("the live session commits: %v", err)
	}
}
