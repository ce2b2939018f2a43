package loadtarget

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pulsesync/pulsesync/httpapi/auth"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// A two-node target serves on both nodes from one database and is gone
// after Close.
func TestStart_TwoNodesShareOneDatabaseAndCloseCleanly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	target, err := Start(ctx, Config{Nodes: 2})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	closed := false
	defer func() {
		if !closed {
			target.Close()
		}
	}()
	if len(target.URLs) != 2 || target.URLs[0] == target.URLs[1] {
		t.Fatalf("URLs = %v, want two distinct nodes", target.URLs)
	}
	desc := target.Describe()
	for _, want := range []string{"2 pulsesync nodes", target.URLs[0], target.URLs[1], "in-process NATS", "PostgreSQL"} {
		if !strings.Contains(desc, want) {
			t.Errorf("Describe() = %q lacks %q", desc, want)
		}
	}
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	for _, u := range target.URLs {
		if status, body := get(t, client, u+"/ready", ""); status != http.StatusOK {
			t.Errorf("GET %s/ready = %d %s, want 200", u, status, body)
		}
	}

	// A row uploaded through node 1 is downloaded through node 2: both serve one database.
	token, err := auth.Mint([]byte(target.Secret), "u1", "d1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	upload := `{"last_server_seq_seen":0,"changes":[{"source_change_id":1,"schema":"business","table":"users","op":"INSERT",` +
		`"pk":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","server_version":0,"payload":{"id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","name":"Ann","email":"a@example.com"}}]}`
	req, _ := http.NewRequest(http.MethodPost, target.URLs[0]+"/sync/upload", strings.NewReader(upload))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("upload through node 1 = %d, want 200", resp.StatusCode)
	}
	// Another device of the user: a device is not sent its own changes.
	other, err := auth.Mint([]byte(target.Secret), "u1", "d2", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	status, body := get(t, client, target.URLs[1]+"/sync/download?after=0&limit=10&schema=business", other)
	if status != http.StatusOK || !bytes.Contains(body, []byte("Ann")) {
		t.Errorf("download through node 2 = %d %s, want the row uploaded through node 1", status, body)
	}

	target.Close()
	closed = true
	client.CloseIdleConnections()
	if _, err := client.Get(target.URLs[0] + "/health"); err == nil {
		t.Errorf("node 1 still answers after Close")
	}
}

func get(t *testing.T, client *http.Client, url, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}
