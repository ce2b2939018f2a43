package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/pulsesync/pulsesync/loadtest"
	"github.com/pulsesync/pulsesync/loadtest/scenarios"
)

// pairPresets are --scenario names that stand for two scenarios meeting on one board: listeners
// that hold a push connection (or v1 watch stream) each, and uploaders that write for random
// users of theirs at a fixed rate, so that every write is timed until it reaches the listeners.
var pairPresets = map[string]struct{ listen, upload string }{
	"push":  {"push_listener", "push_uploader"},
	"watch": {"v1_watch", "v1_watch_uploader"},
}

// Shape of a pair preset where the flags leave it open.
const (
	presetListeners = 100 // --vus: listeners, one user each unless --devices-per-user
	presetRate      = 20  // --rate: uploads per --time-unit
	presetUploadVUs = 4   // uploaders ready at the start; --max-vus bounds them
	presetMaxVUs    = 50
	presetMaxWarmUp = 5 * time.Second // listeners connect for a fifth of --duration, at most this
	presetGrace     = 5 * time.Second // gracefulStop of both scenarios
)

// presetFlags cannot shape a pair preset.
func presetFlags() []string { return []string{"executor", "iterations", "stage"} }

// pairScenarios builds the scenarios "listeners" and "uploaders" of a pair preset from the
// shape flags: --vus listeners over as many users (times --devices-per-user) for --duration,
// and from a warm-up on, --rate uploads per --time-unit for users among the listeners' users.
func (c *cli) pairScenarios(set map[string]bool, listen, upload string) (map[string]loadtest.Scenario, error) {
	for _, f := range presetFlags() {
		if set[f] {
			return nil, fmt.Errorf("--%s does not apply to --scenario %s, which runs listeners and uploaders of its own (see --help)", f, c.scenario)
		}
	}
	listeners, rate, maxVUs := c.vus, c.rate, c.maxVUs
	if !set["vus"] {
		listeners = presetListeners
	}
	if rate == 0 {
		rate = presetRate
	}
	if maxVUs == 0 {
		maxVUs = presetMaxVUs
	}
	perUser := max(c.params.DevicesPerUser, 1)
	users := (listeners + perUser - 1) / perUser
	warmUp := min(c.duration/5, presetMaxWarmUp)
	params, err := json.Marshal(map[string]int{"users": users})
	if err != nil {
		return nil, err
	}
	grace := loadtest.Duration(presetGrace)
	return map[string]loadtest.Scenario{
		"listeners": {Executor: loadtest.ConstantVUs, Exec: listen, VUs: listeners, Duration: loadtest.Duration(c.duration),
			GracefulStop: &grace, Seed: c.seed, Params: params},
		"uploaders": {Executor: loadtest.ConstantArrivalRate, Exec: upload, StartTime: loadtest.Duration(warmUp),
			Duration: loadtest.Duration(c.duration - warmUp), Rate: rate, TimeUnit: loadtest.Duration(c.timeUnit),
			PreAllocatedVUs: min(presetUploadVUs, maxVUs), MaxVUs: maxVUs, GracefulStop: &grace, Seed: c.seed, Params: params},
	}, nil
}

// Shape of --scenario compare-polling where the flags leave it open.
const (
	compareDevices        = 1000 // --vus: devices of each phase
	compareDevicesPerUser = 2
	compareWarmUp         = 10 * time.Second // before each phase's window
	comparePushTimeout    = 5 * time.Second
)

// comparePollingScenarios builds --scenario compare-polling: --vus devices served by polling,
// then by push, each phase measured for --duration while --rate single-change uploads per second
// go to random users of theirs (scenarios.ComparePolling).
func (c *cli) comparePollingScenarios(set map[string]bool) (map[string]loadtest.Scenario, error) {
	for _, f := range append(presetFlags(), "time-unit", "pre-allocated-vus", "max-vus") {
		if set[f] {
			return nil, fmt.Errorf("--%s does not apply to --scenario compare-polling, whose phases have their own shape (see --help)", f)
		}
	}
	shape := scenarios.ComparePolling{
		Devices: c.vus, DevicesPerUser: max(c.params.DevicesPerUser, 1), Rate: c.rate, Window: c.duration,
		WarmUp: compareWarmUp, PushTimeout: max(c.pushTTL, comparePushTimeout),
	}
	if !set["vus"] {
		shape.Devices = compareDevices
	}
	if !set["devices-per-user"] {
		shape.DevicesPerUser = compareDevicesPerUser
	}
	if shape.Rate == 0 {
		shape.Rate = presetRate
	}
	return shape.Scenarios()
}
