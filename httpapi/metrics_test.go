package httpapi_test

import (
	"net/http"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/pulsesync/pulsesync/internal/servertest"
)

// TestMetrics_BuildInfoAndServerErrorsBeforeFirstRequest checks what a node exports before it
// has answered anything: pulsesync_build_info naming the build, and a zero 500 series for every
// route (v0 and v1), which a rate() alert needs to see the first server error.
func TestMetrics_BuildInfoAndServerErrorsBeforeFirstRequest(t *testing.T) {
	srv := servertest.New(t, servertest.Options{V1: true})
	r := call(t, srv, http.MethodGet, "/metrics", "", "")
	if r.status != http.StatusOK {
		t.Fatalf("GET /metrics: %d", r.status)
	}
	text := string(r.body)
	buildInfo := regexp.MustCompile(`\npulsesync_build_info\{go_version="` + regexp.QuoteMeta(runtime.Version()) +
		`",revision="[^"]+",version="[^"]+"\} 1\n`)
	if !buildInfo.MatchString(text) {
		t.Errorf("/metrics lacks pulsesync_build_info with go_version %q and value 1", runtime.Version())
	}
	for _, route := range []string{"/sync/upload", "/sync/download", "/sync/ws", "/sync/events",
		"/sync/push-sessions/{push_id}/commit", "/sync/pull", "/sync/watch"} {
		want := `pulsesync_http_requests_total{code="500",route="` + route + `"} 0`
		if !strings.Contains(text, "\n"+want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
