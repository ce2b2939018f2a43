package pg

import (
	"fmt"
	"testing"
	"time"
)

// seedStream gives alice a stream of n user inserts, alternately from phone and laptop:
// odd ids from phone, even ids from laptop.
func seedStream(t *testing.T, s *Store, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		source := "phone"
		if i%2 == 0 {
			source = "laptop"
		}
		upload(t, s, "alice", source, userChange(int64(i), fmt.Sprintf("6f0d3c4e-8f0b-4c1e-9a57-%012d", i), 0, "u"))
	}
}

func ids(page DownloadPage) []int64 {
	var out []int64
	for _, e := range page.Changes {
		out = append(out, e.ServerID)
	}
	return out
}

// TestDownload_Semantics covers docs/protocol-v0.md §4.2 and the edge cases of §4.4.
func TestDownload_Semantics(t *testing.T) {
	s, _ := newStore(t, StoreConfig{})
	seedStream(t, s, 6)
	cases := []struct {
		name      string
		source    string
		q         DownloadQuery
		ids       []int64
		hasMore   bool
		nextAfter int64
		window    int64
	}{
		{"all from another device", "tablet", DownloadQuery{Limit: 100}, []int64{1, 2, 3, 4, 5, 6}, false, 6, 6},
		{"own entries excluded", "phone", DownloadQuery{Limit: 100}, []int64{2, 4, 6}, false, 6, 6},
		{"include_self", "phone", DownloadQuery{Limit: 100, IncludeSelf: true}, []int64{1, 2, 3, 4, 5, 6}, false, 6, 6},
		{"page with more", "tablet", DownloadQuery{After: 1, Limit: 2}, []int64{2, 3}, true, 3, 6},
		{"exactly full last page", "tablet", DownloadQuery{After: 4, Limit: 2}, []int64{5, 6}, false, 6, 6},
		{"has_more counts only matching entries", "phone", DownloadQuery{After: 2, Limit: 2}, []int64{4, 6}, false, 6, 6},
		{"until freezes the window", "tablet", DownloadQuery{After: 0, Limit: 2, Until: 3}, []int64{1, 2}, true, 2, 3},
		{"until beyond the top is echoed", "tablet", DownloadQuery{After: 5, Limit: 10, Until: 99}, []int64{6}, false, 6, 99},
		{"until below after", "tablet", DownloadQuery{After: 5, Limit: 10, Until: 3}, nil, false, 5, 3},
		{"after at the top", "tablet", DownloadQuery{After: 6, Limit: 10}, nil, false, 6, 6},
		{"after beyond everything is echoed", "tablet", DownloadQuery{After: 1000, Limit: 10}, nil, false, 1000, 6},
		{"only own entries left: cursor stays", "laptop", DownloadQuery{After: 5, Limit: 10}, nil, false, 5, 6},
		{"schema filter", "tablet", DownloadQuery{Limit: 100, Schema: "business"}, []int64{1, 2, 3, 4, 5, 6}, false, 6, 6},
		{"other schema", "tablet", DownloadQuery{Limit: 100, Schema: "public"}, nil, false, 0, 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			page := download(t, s, "alice", tc.source, tc.q)
			if fmt.Sprint(ids(page)) != fmt.Sprint(tc.ids) || page.HasMore != tc.hasMore ||
				page.NextAfter != tc.nextAfter || page.WindowUntil != tc.window {
				t.Errorf("got ids %v has_more %v next_after %d window %d, want %v %v %d %d",
					ids(page), page.HasMore, page.NextAfter, page.WindowUntil, tc.ids, tc.hasMore, tc.nextAfter, tc.window)
			}
			if page.Changes == nil {
				t.Error("changes is nil, want an empty slice")
			}
		})
	}
}

// TestDownload_UserWithoutEntries answers an empty page with window_until 0 (§4.4).
func TestDownload_UserWithoutEntries(t *testing.T) {
	s, _ := newStore(t, StoreConfig{})
	seedStream(t, s, 2)
	page := download(t, s, "bob", "phone", DownloadQuery{After: 7, Limit: 10})
	if len(page.Changes) != 0 || page.HasMore || page.NextAfter != 7 || page.WindowUntil != 0 {
		t.Errorf("got %+v, want empty, next_after 7, window 0", page)
	}
}

// TestDownload_EntryFields: every field of §4.3 comes back as uploaded; a delete has no payload;
// all entries of one upload share the transaction's timestamp.
func TestDownload_EntryFields(t *testing.T) {
	s, _ := newStore(t, StoreConfig{})
	other := "7a0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"
	upload(t, s, "alice", "phone", userChange(1, rowPK, 0, "Ann"))
	upload(t, s, "alice", "phone", deleteChange(2, rowPK, 1), userChange(3, other, 0, "Bo"))
	page := download(t, s, "alice", "laptop", DownloadQuery{Limit: 10})
	if len(page.Changes) != 3 {
		t.Fatalf("got %d entries, want 3", len(page.Changes))
	}
	ins, del, second := page.Changes[0], page.Changes[2], page.Changes[1]
	if ins.ServerID != 1 || ins.Op != "INSERT" || ins.PK.String() != rowPK || ins.Version != 1 || ins.SourceID != "phone" ||
		ins.SourceChangeID != 1 || string(ins.Payload) != `{"email":"Ann@example.com","id":"`+rowPK+`","name":"Ann"}` {
		t.Errorf("insert entry %+v", ins)
	}
	if del.Op != "DELETE" || del.Payload != nil || del.Version != 2 || del.SourceChangeID != 2 {
		t.Errorf("delete entry %+v, want DELETE v2 without payload", del)
	}
	if !second.TS.Equal(del.TS) || ins.TS.Equal(del.TS) || time.Since(del.TS) > time.Minute {
		t.Errorf("timestamps %v %v %v: want one per upload, recent", ins.TS, second.TS, del.TS)
	}
}
