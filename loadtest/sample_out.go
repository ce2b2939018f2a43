package loadtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"time"
)

// sampleOut writes every sample as a line of JSON in the format of k6's JSON
// output (`k6 run --out json=FILE`): a "Metric" line when a metric is first
// declared, then one "Point" line per sample with its time, value and tags.
// Lines are buffered; the first write error stops the output and is kept.
type sampleOut struct {
	mu  sync.Mutex
	w   *bufio.Writer
	buf []byte
	err error
}

func newSampleOut(w io.Writer) *sampleOut {
	if w == nil {
		return nil
	}
	return &sampleOut{w: bufio.NewWriterSize(w, 64<<10)}
}

// metric writes the declaration of a new metric.
func (o *sampleOut) metric(name string, typ MetricType, c Contains) {
	line, err := json.Marshal(map[string]any{"type": "Metric", "metric": name,
		"data": map[string]string{"name": name, "type": typ.String(), "contains": c.String()}})
	if err != nil {
		panic(fmt.Sprintf("loadtest: encode metric line: %v", err)) // strings always encode
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err == nil {
		_, o.err = o.w.Write(append(line, '\n'))
	}
}

// pointWriter writes the samples of one handle: its metric and tags are
// encoded once, into the line's prefix.
type pointWriter struct {
	out    *sampleOut
	prefix []byte
}

func (o *sampleOut) points(name string, tags Tags) *pointWriter {
	if o == nil {
		return nil
	}
	nameJSON, _ := json.Marshal(name)
	tagsJSON, _ := json.Marshal(map[string]string(tags)) // maps of strings always encode
	if tags == nil {
		tagsJSON = []byte("{}")
	}
	prefix := fmt.Appendf(nil, `{"type":"Point","metric":%s,"data":{"tags":%s,"time":"`, nameJSON, tagsJSON)
	return &pointWriter{out: o, prefix: prefix}
}

// point writes one sample taken now; values JSON cannot hold are skipped.
func (p *pointWriter) point(v float64) {
	if p == nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	now := time.Now()
	o := p.out
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return
	}
	b := append(o.buf[:0], p.prefix...)
	b = now.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","value":`...)
	b = strconv.AppendFloat(b, v, 'g', -1, 64)
	b = append(b, "}}\n"...)
	o.buf = b
	_, o.err = o.w.Write(b)
}

// flush writes what is buffered and returns the first error of the output.
func (o *sampleOut) flush() error {
	if o == nil {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err == nil {
		o.err = o.w.Flush()
	}
	return o.err
}
