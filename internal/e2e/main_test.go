package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/pulsesync/pulsesync/internal/pgtest"
	"github.com/pulsesync/pulsesync/internal/servertest"
)

func TestMain(m *testing.M) {
	pgtest.Main(m, pgtest.Options{Template: servertest.Template})
}

// upload posts n new business.users rows for user from device to srv and returns the
// highest_server_seq of the answer.
func upload(t *testing.T, srv *servertest.Server, user, device string, first int64, n int) int64 {
	t.Helper()
	var b strings.Builder
	b.WriteString(`{"changes":[`)
	for i := range int64(n) {
		if i > 0 {
			b.WriteByte(',')
		}
		pk := fmt.Sprintf("%08x-0000-4000-8000-%012d", len(device), first+i)
		fmt.Fprintf(&b, `{"source_change_id":%d,"schema":"business","table":"users","op":"INSERT","pk":"%s","server_version":0,"payload":{"id":"%s"}}`,
			first+i, pk, pk)
	}
	b.WriteString(`]}`)
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/sync/upload", strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+srv.Token(user, device))
	resp, err := srv.Client.Do(req)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		HighestServerSeq int64 `json:"highest_server_seq"`
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("upload: status %d", resp.StatusCode)
	}
	if err := decodeJSON(resp, &out); err != nil {
		t.Fatalf("upload: %v", err)
	}
	return out.HighestServerSeq
}
