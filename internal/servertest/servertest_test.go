package servertest_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pulsesync/pulsesync/internal/pgtest"
	"github.com/pulsesync/pulsesync/internal/servertest"
)

func TestMain(m *testing.M) {
	pgtest.Main(m, pgtest.Options{Template: servertest.Template})
}

func post(t *testing.T, srv *servertest.Server, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := srv.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestNew_ServesTheDemoTablesWithItsOptions uploads to a demo table with a token from Token and
// checks that the options reach the server.
func TestNew_ServesTheDemoTablesWithItsOptions(t *testing.T) {
	srv := servertest.New(t, servertest.Options{MaxBodyBytes: 1024, DevSignIn: true})
	body := `{"changes":[{"source_change_id":1,"schema":"business","table":"posts","op":"INSERT",` +
		`"pk":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","server_version":0,"payload":{"title":"hi"}}]}`
	if code, got := post(t, srv, "/sync/upload", srv.Token("alice", "phone"), body); code != 200 || !strings.Contains(got, `"status":"applied"`) {
		t.Fatalf("upload to business.posts: %d %s", code, got)
	}
	if w, err := srv.Store.Watermark(t.Context(), "alice"); err != nil || w != 1 {
		t.Fatalf("alice's watermark through Store: %d, %v; want 1", w, err)
	}
	if code, _ := post(t, srv, "/sync/upload", srv.Token("alice", "phone"), strings.Repeat(" ", 2048)); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("2 KiB body with MaxBodyBytes 1024: %d, want 413", code)
	}
	if code, got := post(t, srv, "/dummy-signin", "", `{"user":"alice"}`); code != 200 || !strings.Contains(got, `"token"`) {
		t.Fatalf("dev sign-in: %d %s", code, got)
	}
}

// TestNew_GivesEachServerItsOwnDatabase checks that two servers share nothing.
func TestNew_GivesEachServerItsOwnDatabase(t *testing.T) {
	a, b := servertest.New(t, servertest.Options{}), servertest.New(t, servertest.Options{})
	if a.DatabaseURL == b.DatabaseURL {
		t.Fatalf("both servers use %s", a.DatabaseURL)
	}
	body := `{"changes":[{"source_change_id":1,"schema":"business","table":"users","op":"INSERT",` +
		`"pk":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","server_version":0,"payload":{"name":"Ann"}}]}`
	if code, got := post(t, a, "/sync/upload", a.Token("alice", "phone"), body); code != 200 {
		t.Fatalf("upload to a: %d %s", code, got)
	}
	if w, err := b.Store.Watermark(t.Context(), "alice"); err != nil || w != 0 {
		t.Fatalf("alice's watermark on b: %d, %v; want 0", w, err)
	}
}
