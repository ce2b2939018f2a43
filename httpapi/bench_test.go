package httpapi_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pulsesync/pulsesync/internal/servertest"
)

// BenchmarkDownload_FullPages measures end-to-end download throughput through HTTP: full pages of
// 1000 changes from another device, decoded by nobody (the client only reads the bytes). The
// target is 90,000 changes/s.
func BenchmarkDownload_FullPages(b *testing.B) {
	const rows, perUpload = 10_000, 1000
	srv := servertest.New(b, servertest.Options{})
	phone := srv.Token("alice", "phone")
	for u := 0; u < rows/perUpload; u++ {
		changes := make([]string, perUpload)
		for i := range changes {
			n := u*perUpload + i
			changes[i] = insertUser(n+1, fmt.Sprintf("00000000-0000-4000-8000-%012d", n), fmt.Sprintf("user %d", n))
		}
		seed(b, srv, phone, batch(changes...))
	}
	laptop := srv.Token("alice", "laptop")
	for i := 0; b.Loop(); i++ {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/sync/download?after=%d&limit=1000", srv.URL, (i%(rows/1000))*1000), nil)
		req.Header.Set("Authorization", "Bearer "+laptop)
		resp, err := srv.Client.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("download: %v %v", err, resp)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "changes/s")
}

// BenchmarkEmptyPoll compares an empty poll the node answers from its watermark cache with the
// same empty poll answered by the database (a window frozen one past the head with until=, so
// the cache cannot decide it). Both go through HTTP with a valid token.
func BenchmarkEmptyPoll(b *testing.B) {
	srv := servertest.New(b, servertest.Options{})
	phone := srv.Token("alice", "phone")
	seed(b, srv, phone, batch(insertUser(1, "00000000-0000-4000-8000-000000000001", "u")))
	laptop := srv.Token("alice", "laptop")
	poll := func(b *testing.B, query string) {
		for b.Loop() {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/sync/download?"+query, nil)
			req.Header.Set("Authorization", "Bearer "+laptop)
			resp, err := srv.Client.Do(req)
			if err != nil || resp.StatusCode != http.StatusOK {
				b.Fatalf("poll: %v %v", err, resp)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	b.Run("memory", func(b *testing.B) { poll(b, "after=1&limit=1000&schema=business") })
	b.Run("database", func(b *testing.B) { poll(b, "after=1&limit=1000&schema=business&until=2") })
}

// seed uploads body with token before the measurement.
func seed(b *testing.B, srv *servertest.Server, token, body string) {
	b.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/sync/upload", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := srv.Client.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("seed upload: %v %v", err, resp)
	}
	resp.Body.Close()
}
