package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/pulsesync/pulsesync/loadtest"
)

// wsRecorder is a real WebSocket endpoint that records who connected from
// where, says ready, and holds the connection until the client closes it.
type wsRecorder struct {
	mu      sync.Mutex
	sources map[string]int // source IP → connections
	devices map[string]string
	closes  int
}

func (s *wsRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), claims,
		func(*jwt.Token) (any, error) { return []byte(DevSecret), nil })
	if err != nil {
		http.Error(w, "bad token", http.StatusUnauthorized)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	s.mu.Lock()
	s.sources[host]++
	s.devices[claims["did"].(string)] = claims["sub"].(string)
	s.mu.Unlock()
	if err := c.Write(r.Context(), websocket.MessageText, []byte(`{"type":"ready","seq":0,"heartbeat_s":30}`)); err != nil {
		return
	}
	_, _, err = c.Read(context.Background())
	if websocket.CloseStatus(err) == websocket.StatusNormalClosure {
		s.mu.Lock()
		s.closes++
		s.mu.Unlock()
	}
}

func (s *wsRecorder) closeCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closes
}

func TestIdleWS_SpreadsConnectionsOverSourceIPsAndDevices(t *testing.T) {
	rec := &wsRecorder{sources: map[string]int{}, devices: map[string]string{}}
	srv := httptest.NewServer(rec)
	defer srv.Close()

	params, _ := json.Marshal(map[string]any{
		"url": srv.URL, "connections": 6, "source_ips": 2, "users": 3, "devices_per_user": 2,
		"server_pid": os.Getpid(),
	})
	opts := loadtest.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Scenarios: map[string]loadtest.Scenario{"idle": {
			Executor: loadtest.ConstantVUs, VUs: 2, Duration: loadtest.Duration(1500 * time.Millisecond),
			Exec: "idle_ws", Params: params,
		}},
		Thresholds: map[string][]loadtest.Threshold{"ws_open": {{Expr: "max==6"}}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sum, err := loadtest.Run(ctx, opts, Registry(Params{}))
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Passed() {
		t.Errorf("ws_open max==6 failed: %+v", sum.Metrics["ws_open"])
	}
	if got := sum.Metrics["ws_sessions"].Values["count"]; got != 6 {
		t.Errorf("ws_sessions = %v, want 6", got)
	}
	if got := sum.Metrics["ws_open"].Values["value"]; got != 0 {
		t.Errorf("ws_open at the end = %v, want 0 (all closed)", got)
	}
	if _, ok := sum.Metrics["server_rss_bytes"]; !ok {
		t.Error("server_pid set but no server_rss_bytes recorded")
	}
	// The server counts a close after answering it, so the client can be
	// done a moment before the server's count is.
	deadline := time.Now().Add(5 * time.Second)
	for rec.closeCount() < 6 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.sources["127.0.0.2"] != 3 || rec.sources["127.0.0.3"] != 3 {
		t.Errorf("connections per source IP = %v, want 3 from each of 127.0.0.2 and 127.0.0.3", rec.sources)
	}
	// VU 1 holds connections 0, 2, 4 and VU 2 holds 1, 3, 5; two devices per user.
	want := map[string]string{}
	for g := range 6 {
		want[fmt.Sprintf("load-dev-%d-%d", g%2+1, g/2)] = fmt.Sprintf("load-user-idle-%d", g/2+1)
	}
	if fmt.Sprint(rec.devices) != fmt.Sprint(want) {
		t.Errorf("device → user seen by the server = %v, want %v", rec.devices, want)
	}
	if rec.closes != 6 {
		t.Errorf("normal closes seen by the server = %d, want 6", rec.closes)
	}
}

func TestReadRSS_OwnProcess(t *testing.T) {
	v, err := readRSS(os.Getpid())
	if err != nil || v < 1<<20 {
		t.Fatalf("readRSS(self) = %d, %v; want at least 1 MiB", v, err)
	}
	if _, err := readRSS(-1); err == nil {
		t.Error("readRSS of a missing process succeeded")
	}
}
