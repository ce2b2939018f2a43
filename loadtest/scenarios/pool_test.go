package scenarios

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pulsesync/pulsesync/loadtest"
)

func TestUserPool_DefaultsAndNames(t *testing.T) {
	scenario := Params{scenario: "upload", RunTag: "r1"}
	cases := []struct {
		name, raw string
		o         Params
		extra     []string
		want      string // the pool's second user
		wantErr   string
	}{
		{name: "the scenario's name", o: scenario, want: "load-user-r1-upload-2"},
		{name: "execs on a board share", o: scenario, extra: []string{"board"}, want: "load-user-r1-shared-2"},
		{name: "user_pool names the pool", raw: `{"user_pool": "devices"}`, o: scenario, extra: []string{"board"}, want: "load-user-r1-devices-2"},
		{name: "no run tag", o: Params{scenario: "poll"}, want: "load-user-poll-2"},
		{name: "a scenario name unfit for ids", o: Params{scenario: "two words"}, wantErr: "name one with the user_pool param"},
		{name: "a bad user_pool", raw: `{"user_pool": "a/b"}`, o: scenario, wantErr: `user pool "a/b"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := decodeParams(json.RawMessage(tc.raw), tc.o, tc.extra...)
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case p.userOf(1) != tc.want || p.user(1) != tc.want:
				t.Errorf("user of VU 1 = %s, pool user 1 = %s, want %s", p.userOf(1), p.user(1), tc.want)
			}
		})
	}
}

// subjects is a server that answers every download with an empty page and records, per
// scenario tag of the request's device, the token subjects (users) it saw.
type subjects struct {
	mu    sync.Mutex
	users map[string][]string // device → users
}

func (s *subjects) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), claims); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	sub, _ := claims["sub"].(string)
	did, _ := claims["did"].(string)
	s.mu.Lock()
	if !slices.Contains(s.users[did], sub) {
		s.users[did] = append(s.users[did], sub)
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"changes":[],"has_more":false,"next_after":0,"window_until":0}`)
}

// Two scenarios of one run: by default their VUs are users of two pools that never meet; with
// one user_pool they are the same users.
func TestUserPool_ScenariosOfOneRunAreDisjointUnlessShared(t *testing.T) {
	for _, tc := range []struct {
		name, params string
		shared       bool
	}{
		{"own pools", `{"users": 2}`, false},
		{"one pool", `{"users": 2, "user_pool": "both"}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &subjects{users: map[string][]string{}}
			srv := httptest.NewServer(rec)
			defer srv.Close()
			sc := loadtest.Scenario{Executor: loadtest.PerVUIterations, Exec: "poll", VUs: 2, Iterations: 2, Params: json.RawMessage(tc.params)}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			sum, err := loadtest.Run(ctx, loadtest.Options{
				Scenarios: map[string]loadtest.Scenario{"a": sc, "b": sc},
				Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
			}, Registry(Params{URL: srv.URL, RunTag: "t"}))
			if err != nil || !sum.Passed() {
				t.Fatalf("Run: %v, passed %v, notes %v", err, sum.Passed(), sum.Notes)
			}
			// VU ids run 1…2 in a and 3…4 in b.
			byScenario := map[string][]string{}
			for dev, users := range rec.users {
				scen := "a"
				if dev == "load-dev-t-3" || dev == "load-dev-t-4" {
					scen = "b"
				}
				byScenario[scen] = append(byScenario[scen], users...)
			}
			slices.Sort(byScenario["a"])
			slices.Sort(byScenario["b"])
			wantA, wantB := []string{"load-user-t-a-1", "load-user-t-a-2"}, []string{"load-user-t-b-1", "load-user-t-b-2"}
			if tc.shared {
				wantA = []string{"load-user-t-both-1", "load-user-t-both-2"}
				wantB = wantA
			}
			if !slices.Equal(byScenario["a"], wantA) || !slices.Equal(byScenario["b"], wantB) {
				t.Errorf("users seen: a %v, b %v; want a %v, b %v", byScenario["a"], byScenario["b"], wantA, wantB)
			}
		})
	}
}
