package loadtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Threshold is one k6 threshold expression, such as "p(99)<50", "med<15",
// "rate<0.01" or "rate>25000". In JSON it is either the bare expression string
// or k6's object form {"threshold": "...", "abortOnFail": true,
// "delayAbortEval": "10s"}.
type Threshold struct {
	Expr string `json:"threshold"`
	// AbortOnFail stops the whole test as soon as the threshold fails while
	// it runs (checked every 2 s), after DelayAbortEval has passed.
	AbortOnFail    bool     `json:"abortOnFail,omitempty"`
	DelayAbortEval Duration `json:"delayAbortEval,omitempty"`
}

// UnmarshalJSON accepts the string and the object form.
func (t *Threshold) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		*t = Threshold{}
		return json.Unmarshal(b, &t.Expr)
	}
	type plain Threshold
	var p plain
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("threshold must be a string or {\"threshold\", \"abortOnFail\", \"delayAbortEval\"}: %w", err)
	}
	*t = Threshold(p)
	return nil
}

// MarshalJSON writes the short string form when nothing else is set.
func (t Threshold) MarshalJSON() ([]byte, error) {
	if !t.AbortOnFail && t.DelayAbortEval == 0 {
		return json.Marshal(t.Expr)
	}
	type plain Threshold
	return json.Marshal(plain(t))
}

// thresholdExpr is a parsed "aggregation operator number".
type thresholdExpr struct {
	agg   string  // "avg", "min", "max", "med", "count", "rate", "value", "passes", "fails" or "p"
	p     float64 // percentile for agg "p"
	op    string
	value float64
}

var thresholdRE = regexp.MustCompile(`^\s*([a-z0-9]+(?:\(\s*[^)]*\))?)\s*(<=|>=|===|==|!=|<|>)\s*(\S+)\s*$`)

func parseThreshold(expr string) (thresholdExpr, error) {
	m := thresholdRE.FindStringSubmatch(expr)
	if m == nil {
		return thresholdExpr{}, fmt.Errorf("%q is not \"aggregation operator number\" (e.g. \"p(95)<200\")", expr)
	}
	agg, p, err := parseAggregation(m[1])
	if err != nil {
		return thresholdExpr{}, fmt.Errorf("%q: %w", expr, err)
	}
	v, err := strconv.ParseFloat(m[3], 64)
	if err != nil {
		return thresholdExpr{}, fmt.Errorf("%q: %q is not a number", expr, m[3])
	}
	return thresholdExpr{agg: agg, p: p, op: m[2], value: v}, nil
}

// parseAggregation parses "avg", "p(99.9)" and the like.
func parseAggregation(s string) (string, float64, error) {
	s = strings.ReplaceAll(s, " ", "")
	if inner, ok := strings.CutPrefix(s, "p("); ok && strings.HasSuffix(inner, ")") {
		p, err := strconv.ParseFloat(strings.TrimSuffix(inner, ")"), 64)
		if err != nil || p < 0 || p > 100 {
			return "", 0, fmt.Errorf("percentile %q must be a number from 0 to 100", s)
		}
		return "p", p, nil
	}
	switch s {
	case "avg", "min", "max", "med", "count", "rate", "value", "passes", "fails":
		return s, 0, nil
	}
	return "", 0, fmt.Errorf("unknown aggregation %q", s)
}

// aggregations lists what thresholds may test for each metric type.
func aggregations(t MetricType) []string {
	switch t {
	case CounterType:
		return []string{"count", "rate"}
	case GaugeType:
		return []string{"value", "min", "max"}
	case RateType:
		return []string{"rate", "passes", "fails"}
	default:
		return []string{"avg", "min", "max", "med", "p"}
	}
}

// label is the aggregation as written: "med", "p(99)".
func (e thresholdExpr) label() string {
	if e.agg == "p" {
		return fmt.Sprintf("p(%g)", e.p)
	}
	return e.agg
}

func (e thresholdExpr) holds(v float64) bool {
	switch e.op {
	case "<":
		return v < e.value
	case "<=":
		return v <= e.value
	case ">":
		return v > e.value
	case ">=":
		return v >= e.value
	case "==", "===":
		return v == e.value
	default: // "!="
		return v != e.value
	}
}

// compiledThreshold is a threshold bound to its metric.
type compiledThreshold struct {
	Threshold
	selector string
	tags     Tags
	metric   *metric
	expr     thresholdExpr
}

// compileThresholds parses every threshold and binds it to its metric, which
// must exist by now (built-ins and every metric the execs declared).
func compileThresholds(m *Metrics, th map[string][]Threshold) ([]compiledThreshold, error) {
	selectors := make([]string, 0, len(th))
	for sel := range th {
		selectors = append(selectors, sel)
	}
	slices.Sort(selectors)
	var out []compiledThreshold
	for _, sel := range selectors {
		name, tags, err := parseSelector(sel)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadThreshold, err)
		}
		mt := m.lookup(name)
		if mt == nil {
			return nil, fmt.Errorf("%w: %q: no metric named %q", ErrBadThreshold, sel, name)
		}
		for _, t := range th[sel] {
			e, err := parseThreshold(t.Expr)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrBadThreshold, sel, err)
			}
			if !slices.Contains(aggregations(mt.typ), e.agg) {
				return nil, fmt.Errorf("%w: %s: %q: a %s metric has no aggregation %q (it has %s)",
					ErrBadThreshold, sel, t.Expr, mt.typ, e.agg, strings.Join(aggregations(mt.typ), ", "))
			}
			out = append(out, compiledThreshold{Threshold: t, selector: selectorName(name, tags), tags: tags, metric: mt, expr: e})
		}
	}
	return out, nil
}

// evaluate tests the threshold against the metric now. A threshold over a
// gauge, rate or trend with no samples fails: unlike k6, which skips it, a
// load test that measured nothing has proved nothing. A counter without
// samples is a count of 0, so "push_missed count<1" holds.
func (c compiledThreshold) evaluate(elapsed time.Duration) ThresholdResult {
	a := c.metric.aggregate(c.tags)
	if a.n == 0 && a.typ != CounterType {
		return ThresholdResult{OK: false, NoSamples: true}
	}
	v := a.stat(c.expr.agg, c.expr.p, elapsed)
	return ThresholdResult{OK: c.expr.holds(v), Value: v}
}
