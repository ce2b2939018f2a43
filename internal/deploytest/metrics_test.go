package deploytest

import (
	"bufio"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/internal/natstest"
	"github.com/pulsesync/pulsesync/internal/pushtest"
	"github.com/pulsesync/pulsesync/internal/servertest"
)

// The alert rules and the dashboard name metrics as strings; these checks keep them in step
// with what a node exports.

// selector is one metric selector of a PromQL expression: a pulsesync_ name and the labels it
// requires to be equal to a value (other matchers filter, they do not require a series).
type selector struct {
	name   string
	labels map[string]string
	text   string
}

var (
	// selectorRE finds pulsesync_ names with their optional {…}, whose quoted values may hold
	// braces (route="/sync/push-sessions/{push_id}/commit").
	selectorRE = regexp.MustCompile(`\b(pulsesync_[a-z0-9_]+)(\{(?:[^}"]|"(?:[^"\\]|\\.)*")*\})?`)
	matcherRE  = regexp.MustCompile(`([a-zA-Z_]\w*)\s*(=~|!=|!~|=)\s*"((?:[^"\\]|\\.)*)"`)
)

// selectors returns the pulsesync_ selectors of a PromQL expression.
func selectors(expr string) []selector {
	var out []selector
	for _, m := range selectorRE.FindAllStringSubmatch(expr, -1) {
		s := selector{name: m[1], labels: map[string]string{}, text: m[0]}
		for _, lm := range matcherRE.FindAllStringSubmatch(m[2], -1) {
			if lm[2] == "=" {
				s.labels[lm[1]] = lm[3]
			}
		}
		out = append(out, s)
	}
	return out
}

// exported is a node's /metrics: the label sets of each sample name.
type exported map[string][]map[string]string

var (
	sampleRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? \S+`)
	labelRE  = regexp.MustCompile(`([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"`)
)

// scrape reads srv's GET /metrics in the text format.
func scrape(t *testing.T, srv *servertest.Server) exported {
	t.Helper()
	resp, err := srv.Client.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	out := exported{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		m := sampleRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue // comments, blank lines
		}
		labels := map[string]string{}
		for _, l := range labelRE.FindAllStringSubmatch(m[2], -1) {
			labels[l[1]] = l[2]
		}
		out[m[1]] = append(out[m[1]], labels)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// has reports whether a series matches s.
func (e exported) has(s selector) bool {
	return slices.ContainsFunc(e[s.name], func(labels map[string]string) bool {
		for k, v := range s.labels {
			if labels[k] != v {
				return false
			}
		}
		return true
	})
}

// missing lists the selectors of exprs that match no series of e.
func (e exported) missing(exprs []string) []string {
	var out []string
	for _, expr := range exprs {
		for _, s := range selectors(expr) {
			if !e.has(s) {
				out = append(out, s.text)
			}
		}
	}
	return out
}

// ruleExprs returns the expr of every rule in deploy/prometheus/alerts.yml. The file is
// YAML, but each expr is either on its key's line or an indented `|` block after it.
func ruleExprs(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(deployFile(t, "prometheus/alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var exprs []string
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		key, value, ok := strings.Cut(strings.TrimSpace(lines[i]), "expr:")
		if !ok || key != "" {
			continue
		}
		value = strings.TrimSpace(value)
		if value != "|" {
			exprs = append(exprs, value)
			continue
		}
		indent := len(lines[i]) - len(strings.TrimLeft(lines[i], " "))
		var block []string
		for i+1 < len(lines) && len(lines[i+1])-len(strings.TrimLeft(lines[i+1], " ")) > indent {
			i++
			block = append(block, strings.TrimSpace(lines[i]))
		}
		exprs = append(exprs, strings.Join(block, " "))
	}
	if len(exprs) == 0 {
		t.Fatal("no expr in deploy/prometheus/alerts.yml")
	}
	return exprs
}

// reconcileEvery is the reconciliation period of the metrics tests' node: short, so that a
// round is timed soon after a device connects.
const reconcileEvery = 100 * time.Millisecond

// metricsNode starts one node as deployed (v1 served, fan-out over NATS).
func metricsNode(t *testing.T) *servertest.Server {
	t.Helper()
	return servertest.New(t, servertest.Options{NATSURL: natstest.Start(t).URL(), V1: true, ReconcileEvery: reconcileEvery})
}

// notifyOnce uploads one change for alice while her laptop listens on a WebSocket, so that the
// node has timed a request and a push notification (its histograms have series).
func notifyOnce(t *testing.T, srv *servertest.Server) {
	t.Helper()
	ws := pushtest.Dial(t, srv.URL, "after=0", srv.Token("alice", "laptop"))
	if f := ws.Read(); f.Type != "ready" {
		t.Fatalf("first frame %+v, want ready", f)
	}
	status, data, err := send(t.Context(), srv.Client, srv.URL, http.MethodPost, "/sync/upload", srv.Token("alice", "phone"), uploadBody(1, 1, 0))
	if err != nil || status != http.StatusOK {
		t.Fatalf("upload: %d %s %v", status, data, err)
	}
	ws.ReadUntil(1)
}

// TestAlerts_SelectorsMatchSeriesOfAFreshNode checks every selector of the alert rules against
// a node that has served nothing yet: each counter and gauge an alert reads, with the label
// values it requires, is exported from the start, so a rate() alert sees the first event.
// Histogram buckets get series at their first observation; after one upload and one push
// notification, every selector matches.
func TestAlerts_SelectorsMatchSeriesOfAFreshNode(t *testing.T) {
	srv := metricsNode(t)
	exprs := ruleExprs(t)
	var counters []string
	for _, e := range exprs {
		for _, s := range selectors(e) {
			if !strings.HasSuffix(s.name, "_bucket") {
				counters = append(counters, s.text)
			}
		}
	}
	if missing := scrape(t, srv).missing(counters); len(missing) > 0 {
		t.Errorf("a fresh node exports no series for these selectors of deploy/prometheus/alerts.yml: %q", missing)
	}
	notifyOnce(t, srv)
	if missing := scrape(t, srv).missing(exprs); len(missing) > 0 {
		t.Errorf("after an upload and a notification, no series for these selectors of deploy/prometheus/alerts.yml: %q", missing)
	}
}
