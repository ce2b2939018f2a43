package scenarios

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/loadtest"
)

func TestDecodeParams(t *testing.T) {
	cases := []struct {
		name      string
		raw       string
		overrides Params
		extra     []string
		want      func(Params) bool
		wantErr   string
	}{
		{name: "defaults", raw: ``, want: func(p Params) bool {
			return p.URL == "http://127.0.0.1:8080" && p.Secret == DevSecret && p.Users == 100 && p.Batch == 100 &&
				p.Limit == 1000 && p.Transport == "ws" && p.TokenTTL.D() == time.Hour && p.Schema == "business"
		}},
		{name: "params set fields", raw: `{"users": 16, "batch": 7}`, extra: []string{"batch"}, want: func(p Params) bool {
			return p.Users == 16 && p.Batch == 7
		}},
		{name: "overrides win over params", raw: `{"url": "http://a:1", "users": 16}`, overrides: Params{URL: "http://b:2"}, want: func(p Params) bool {
			return p.URL == "http://b:2" && p.Users == 16
		}},
		{name: "durations as strings", raw: `{"token_ttl": "2m"}`, want: func(p Params) bool { return p.TokenTTL.D() == 2*time.Minute }},
		{name: "key of another exec", raw: `{"batch": 5}`, wantErr: `unknown param "batch"`},
		{name: "misspelt key", raw: `{"user": 5}`, wantErr: `unknown param "user"`},
		{name: "not an object", raw: `[1]`, wantErr: "must be a JSON object"},
		{name: "bad limit", raw: `{"limit": 5000}`, extra: []string{"limit"}, wantErr: "limit must be between 1 and 1000"},
		{name: "bad transport", raw: `{"transport": "poll"}`, extra: []string{"transport"}, wantErr: `transport "poll"`},
		{name: "bad url", raw: `{"url": "127.0.0.1:8080"}`, wantErr: "must start with http://"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := decodeParams(json.RawMessage(tc.raw), tc.overrides, tc.extra...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !tc.want(p) {
				t.Fatalf("decodeParams = %+v, %v", p, err)
			}
		})
	}
}

func TestParams_Identities(t *testing.T) {
	p := Params{Users: 3, DevicesPerUser: 2}.withDefaults()
	var users []string
	for i := range 8 {
		users = append(users, p.userOf(i))
	}
	want := "load-user-1 load-user-1 load-user-2 load-user-2 load-user-3 load-user-3 load-user-1 load-user-1"
	if got := strings.Join(users, " "); got != want {
		t.Errorf("users of VUs 0..7 = %s, want %s", got, want)
	}
	if d := p.device(7, ""); d != "load-dev-7" {
		t.Errorf("device(7) = %q, want load-dev-7", d)
	}
	p.RunTag = "r1"
	if d := p.device(7, "3"); d != "load-dev-r1-7-3" {
		t.Errorf("tagged device = %q, want load-dev-r1-7-3", d)
	}
}

func TestDevice_InsertsFreshRowsWithCountingIDs(t *testing.T) {
	p := Params{}.withDefaults()
	d := newDevice(p, "load-user-1", "load-dev-1", 42)
	first := d.inserts("business", 3)
	second := d.inserts("business", 2)
	seen := map[string]bool{}
	for i, c := range append(first, second...) {
		if c.SourceChangeID != int64(i+1) || c.Op != "INSERT" || c.ServerVersion != 0 || c.Table != "users" {
			t.Errorf("change %d = %+v, want INSERT into users, base 0, source_change_id %d", i, c, i+1)
		}
		if len(c.PK) != 36 || c.PK[14] != '4' || seen[c.PK] || c.Payload == nil || c.Payload.ID != c.PK {
			t.Errorf("change %d pk %q: want a fresh v4 UUID repeated as payload id", i, c.PK)
		}
		seen[c.PK] = true
	}
	again := newDevice(p, "load-user-1", "load-dev-1", 42).inserts("business", 1)
	p.RunTag = "other"
	tagged := newDevice(p, "load-user-1", "load-dev-1", 42).inserts("business", 1)
	if again[0].PK != first[0].PK || tagged[0].PK == first[0].PK {
		t.Errorf("same seed and tag must repeat row ids, another tag must not: %s %s %s", first[0].PK, again[0].PK, tagged[0].PK)
	}
}

// TestShippedConfigs_Validate checks that every scenario file shipped beside
// this package parses and is accepted by the engine and these execs.
func TestShippedConfigs_Validate(t *testing.T) {
	files, err := filepath.Glob("*.json")
	if err != nil || len(files) < 13 {
		t.Fatalf("found %d config files (%v), want the 13 shipped ones", len(files), err)
	}
	for _, v1 := range []string{"v1-push.json", "v1-pull.json", "v1-snapshot.json", "v1-watch.json"} {
		if !slices.Contains(files, v1) {
			t.Errorf("shipped config %s is missing", v1)
		}
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			opts, err := loadtest.ParseOptions(data)
			if err != nil {
				t.Fatal(err)
			}
			if len(opts.Thresholds) == 0 {
				t.Error("config has no thresholds; each shipped test must prove something")
			}
			if err := loadtest.Validate(opts, Registry(Params{})); err != nil {
				t.Fatal(err)
			}
		})
	}
}
