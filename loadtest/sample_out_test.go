package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// Every sample reaches the JSON output as a k6 "Point" line after its
// metric's "Metric" line, with the tags of its series.
func TestSampleOut_WritesEverySampleAsK6JSON(t *testing.T) {
	var out bytes.Buffer
	opts, reg := one(Scenario{Executor: PerVUIterations, VUs: 2, Iterations: 3, Tags: Tags{"team": "sync"}},
		func(context.Context, *VU) error { return nil })
	opts.SampleOut = &out
	run(t, opts, reg)

	declared := map[string]string{}
	points := map[string]int{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var line struct {
			Type   string `json:"type"`
			Metric string `json:"metric"`
			Data   struct {
				Type  string            `json:"type"`
				Time  string            `json:"time"`
				Value *float64          `json:"value"`
				Tags  map[string]string `json:"tags"`
			} `json:"data"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		switch line.Type {
		case "Metric":
			declared[line.Metric] = line.Data.Type
		case "Point":
			if _, ok := declared[line.Metric]; !ok {
				t.Fatalf("point of %s before its Metric line", line.Metric)
			}
			if line.Data.Value == nil || line.Data.Time == "" {
				t.Fatalf("point without value or time: %s", sc.Text())
			}
			if line.Metric == "iterations" {
				if line.Data.Tags["scenario"] != "s" || line.Data.Tags["team"] != "sync" {
					t.Errorf("iterations point tags = %v, want scenario:s and team:sync", line.Data.Tags)
				}
			}
			points[line.Metric]++
		default:
			t.Fatalf("line of type %q", line.Type)
		}
	}
	if points["iterations"] != 6 || points["iteration_duration"] != 6 {
		t.Errorf("points = %v, want 6 iterations and 6 iteration_duration", points)
	}
	if declared["iteration_duration"] != "trend" || declared["iterations"] != "counter" {
		t.Errorf("declared = %v, want iterations a counter and iteration_duration a trend", declared)
	}
}

func TestProgress_EndsWithTheFinalCount(t *testing.T) {
	var progress bytes.Buffer
	opts, reg := one(Scenario{Executor: PerVUIterations, VUs: 2, Iterations: 3}, func(context.Context, *VU) error { return nil })
	opts.Progress = &progress
	run(t, opts, reg)
	got := progress.String()
	if !strings.HasPrefix(got, "\r") || !strings.HasSuffix(got, "6 complete and 0 interrupted iterations\n") {
		t.Errorf("progress = %q, want \\r-led lines ending with the final count", got)
	}
}
