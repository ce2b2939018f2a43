package httpapi

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRecoverPanics_Answers500JSONAndLogs serves a panicking handler on a real socket: the client
// gets the JSON 500 and the log the panic with its stack. http.ErrAbortHandler is not swallowed:
// net/http then drops the connection, which the client sees as an error.
func TestRecoverPanics_Answers500JSONAndLogs(t *testing.T) {
	var logs bytes.Buffer // read only after ts.Close, which waits for the handlers
	s := &Server{log: slog.New(slog.NewTextHandler(&logs, nil))}
	mux := http.NewServeMux()
	mux.HandleFunc("/boom", func(http.ResponseWriter, *http.Request) { panic("boom at the handler") })
	mux.HandleFunc("/abort", func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
	ts := httptest.NewServer(s.recoverPanics(mux))
	defer ts.Close() // also on failure; Close is idempotent

	resp, err := ts.Client().Get(ts.URL + "/boom")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "{\"error\":\"internal_error\",\"message\":\"Internal server error\"}\n"; resp.StatusCode != 500 || string(body) != want ||
		resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %q (%s), want 500 %q", resp.StatusCode, body, resp.Header.Get("Content-Type"), want)
	}
	if resp, err := ts.Client().Get(ts.URL + "/abort"); err == nil {
		resp.Body.Close()
		t.Fatalf("an aborted handler answered %d, want a dropped connection", resp.StatusCode)
	}
	ts.Close()
	if l := logs.String(); !strings.Contains(l, "boom at the handler") || !strings.Contains(l, "middleware_test.go") {
		t.Fatalf("log lacks the panic or its stack:\n%s", l)
	}
}
