package loadtest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestParseThreshold(t *testing.T) {
	cases := []struct {
		expr    string
		want    thresholdExpr
		wantErr string // substring of the error; "" means valid
	}{
		{expr: "p(99)<50", want: thresholdExpr{agg: "p", p: 99, op: "<", value: 50}},
		{expr: " p( 99.9 ) <= 1.5e3 ", want: thresholdExpr{agg: "p", p: 99.9, op: "<=", value: 1500}},
		{expr: "med<15", want: thresholdExpr{agg: "med", op: "<", value: 15}},
		{expr: "rate>25000", want: thresholdExpr{agg: "rate", op: ">", value: 25000}},
		{expr: "rate<0.01", want: thresholdExpr{agg: "rate", op: "<", value: 0.01}},
		{expr: "count>=10", want: thresholdExpr{agg: "count", op: ">=", value: 10}},
		{expr: "avg!=3", want: thresholdExpr{agg: "avg", op: "!=", value: 3}},
		{expr: "value===1", want: thresholdExpr{agg: "value", op: "===", value: 1}},
		{expr: "p99<50", wantErr: `unknown aggregation "p99"`},
		{expr: "p(101)<5", wantErr: "from 0 to 100"},
		{expr: "median<5", wantErr: `unknown aggregation "median"`},
		{expr: "p(99)<", wantErr: "is not \"aggregation operator number\""},
		{expr: "p(99)<abc", wantErr: `"abc" is not a number`},
		{expr: "<50", wantErr: "is not \"aggregation operator number\""},
		{expr: "p(95) 50", wantErr: "is not \"aggregation operator number\""},
		{expr: "p(95)<50ms", wantErr: `"50ms" is not a number`},
	}
	for _, tc := range cases {
		t.Run(tc.expr, func(t *testing.T) {
			got, err := parseThreshold(tc.expr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("parseThreshold = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestThreshold_Evaluate(t *testing.T) {
	m := NewMetrics()
	trend := m.Trend("lat", Time, Tags{"endpoint": "upload"})
	for i := 1; i <= 100; i++ { // 1..100 ms
		trend.Add(float64(i))
	}
	m.Trend("lat", Time, Tags{"endpoint": "download"}).Add(1000)
	ok := m.Rate("failed", nil)
	for i := range 200 {
		ok.Add(i%100 == 0) // 1%
	}
	m.Counter("changes", Default, nil).Add(30000)
	m.Gauge("open", Default, nil).Set(7)
	m.Trend("empty", Time, nil)
	m.Counter("none", Default, nil)
	m.Check("poll: empty").Add(true)

	cases := []struct {
		sel, expr string
		ok        bool
		value     float64 // checked within 1%
	}{
		{"lat{endpoint:upload}", "med<51", true, 50.5},
		{"lat{endpoint:upload}", "p(99)<50", false, 99},
		{"lat{endpoint:upload}", "max==100", true, 100},
		{"lat{endpoint:upload}", "avg>50", true, 50.5},
		{"lat", "max<1000", false, 1000},
		{"lat{endpoint:download}", "min>=1000", true, 1000},
		{"failed", "rate<0.01", false, 0.01},
		{"failed", "rate<=0.01", true, 0.01},
		{"changes", "rate>25000", true, 30000}, // over 1 s
		{"changes", "count<30000", false, 30000},
		{"open", "value==7", true, 7},
		{"empty", "p(99)<1", false, 0},                    // no samples fails
		{"none", "count<1", true, 0},                      // but a counter without samples counts 0
		{"checks{check:poll: empty}", "rate==1", true, 1}, // a colon in a tag value
		{"lat{endpoint:none}", "p(99)<1", false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.sel+" "+tc.expr, func(t *testing.T) {
			th, err := compileThresholds(m, map[string][]Threshold{tc.sel: {{Expr: tc.expr}}})
			if err != nil {
				t.Fatal(err)
			}
			r := th[0].evaluate(time.Second)
			if r.OK != tc.ok {
				t.Errorf("ok = %v (value %v, noSamples %v), want %v", r.OK, r.Value, r.NoSamples, tc.ok)
			}
			if diff := r.Value - tc.value; diff > tc.value/100 || -diff > tc.value/100 {
				t.Errorf("value = %v, want %v ± 1%%", r.Value, tc.value)
			}
		})
	}
}

func TestThreshold_JSONForms(t *testing.T) {
	in := `{"a": ["p(99)<50", {"threshold": "med<15", "abortOnFail": true, "delayAbortEval": "10s"}]}`
	var th map[string][]Threshold
	if err := json.Unmarshal([]byte(in), &th); err != nil {
		t.Fatal(err)
	}
	want := []Threshold{{Expr: "p(99)<50"}, {Expr: "med<15", AbortOnFail: true, DelayAbortEval: dur(10 * time.Second)}}
	if len(th["a"]) != 2 || th["a"][0] != want[0] || th["a"][1] != want[1] {
		t.Fatalf("decoded %+v, want %+v", th["a"], want)
	}
	out, err := json.Marshal(th)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string][]Threshold
	if err := json.Unmarshal(out, &back); err != nil || back["a"][0] != want[0] || back["a"][1] != want[1] {
		t.Fatalf("round trip through %s gave %+v, %v", out, back, err)
	}
	if err := json.Unmarshal([]byte(`{"a": [{"threshold": "med<1", "abortOnFial": true}]}`), &th); err == nil {
		t.Error("misspelt threshold key accepted")
	}
}

func TestRun_AbortOnFailStopsTheTest(t *testing.T) {
	var bad *Counter
	exec := ExecFunc(func(ctx context.Context, vu *VU) error {
		bad.Add(1)
		<-vu.Draining().Done()
		return nil
	})
	reg := Registry{"e": func(env *Env, _ json.RawMessage) (Exec, error) {
		bad = env.Metrics.Counter("bad", Default, nil)
		return exec, nil
	}}
	opts := Options{
		Scenarios:      map[string]Scenario{"s": {Executor: ConstantVUs, VUs: 2, Duration: dur(time.Minute), Exec: "e"}},
		Thresholds:     map[string][]Threshold{"bad": {{Expr: "count<1", AbortOnFail: true}}},
		thresholdEvery: 10 * time.Millisecond,
	}
	sum := run(t, opts, reg)
	if sum.State.Aborted != "bad count<1" {
		t.Errorf("Aborted = %q, want %q", sum.State.Aborted, "bad count<1")
	}
	if sum.Passed() {
		t.Error("Passed() = true with a failed threshold")
	}
}
