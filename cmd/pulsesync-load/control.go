package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/pulsesync/pulsesync/loadtest"
)

// defaultAddress is where a run serves its control API and where the verbs look for it: k6's.
const defaultAddress = "localhost:6565"

// controlTimeout bounds one request of a verb to a running test.
const controlTimeout = 10 * time.Second

// verbs talk to a running test's control API, as `k6 scale`, `k6 pause` and so on do.
var verbs = map[string]string{
	"status": "print the running test's status",
	"scale":  "set the externally-controlled scenario's VUs: scale --vus N",
	"pause":  "stop starting iterations (running ones finish)",
	"resume": "start iterations again",
	"stop":   "end the test; its summary is printed as at a normal end (not in k6)",
}

// serveControl serves ctl on address until ctx ends. The returned function waits for the
// server to have shut down.
func serveControl(ctx context.Context, address string, ctl *loadtest.Control, log *slog.Logger) (wait func(), err error) {
	ln, err := net.Listen("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("control API: %w", err)
	}
	srv := &http.Server{Handler: loadtest.ControlHandler(ctl), ReadHeaderTimeout: controlTimeout}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Warn("control API stopped", "err", err)
		}
	}()
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	log.Info("control API listening", "address", ln.Addr().String())
	return func() {
		stop()
		srv.Close()
		<-done
	}, nil
}

// runVerb runs `pulsesync-load <verb> [--address A] [--vus N]` and returns the exit code:
// 0 done, 1 the test refused or could not be reached, 2 bad usage.
func runVerb(ctx context.Context, verb string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pulsesync-load "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	address := fs.String("address", defaultAddress, "`host:port` of the running test's control API")
	vus := -1
	if verb == "scale" {
		fs.IntVar(&vus, "vus", -1, "VUs the externally-controlled scenario should run, 0…its maxVUs")
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "pulsesync-load %s: %s.\n\nFlags:\n", verb, verbs[verb])
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	var patch *loadtest.ControlPatch
	switch verb {
	case "scale":
		if vus < 0 {
			fmt.Fprintln(stderr, "scale needs --vus N (0 or more)")
			return exitUsage
		}
		patch = &loadtest.ControlPatch{VUs: &vus}
	case "pause", "resume":
		patch = &loadtest.ControlPatch{Paused: new(verb == "pause")}
	case "stop":
		patch = &loadtest.ControlPatch{Stopped: new(true)}
	}
	st, err := callControl(ctx, *address, patch)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", verb, err)
		return exitError
	}
	out, err := json.MarshalIndent(loadtest.NewControlDocument(st), "", "  ")
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", verb, err)
		return exitError
	}
	fmt.Fprintf(stdout, "%s\n", out)
	return exitOK
}

// callControl GETs the status, or PATCHes it with patch, and returns the status answered.
func callControl(ctx context.Context, address string, patch *loadtest.ControlPatch) (loadtest.ControlStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	method, body := http.MethodGet, []byte(nil)
	if patch != nil {
		var err error
		if body, err = json.Marshal(loadtest.NewControlDocument(*patch)); err != nil {
			return loadtest.ControlStatus{}, fmt.Errorf("encode change: %w", err)
		}
		method = http.MethodPatch
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+address+loadtest.ControlPath, bytes.NewReader(body))
	if err != nil {
		return loadtest.ControlStatus{}, fmt.Errorf("--address %q: %w", address, err)
	}
	req.Header.Set("Content-Type", "application/vnd.api+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return loadtest.ControlStatus{}, fmt.Errorf("no test answers on %s (started with a control API there? see --address): %w", address, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return loadtest.ControlStatus{}, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var errs loadtest.ControlErrors
		if json.Unmarshal(data, &errs) == nil && len(errs.Errors) > 0 {
			return loadtest.ControlStatus{}, fmt.Errorf("%s: %s", errs.Errors[0].Title, errs.Errors[0].Detail)
		}
		return loadtest.ControlStatus{}, fmt.Errorf("answer %s", resp.Status)
	}
	var doc loadtest.ControlDocument[loadtest.ControlStatus]
	if err := json.Unmarshal(data, &doc); err != nil {
		return loadtest.ControlStatus{}, fmt.Errorf("decode status: %w", err)
	}
	return doc.Data.Attributes, nil
}
