package scenarios

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/pulsesync/pulsesync/loadtest"
)

// ComparePolling is the shape of a compare-polling run: Devices devices
// served first by polling (board "poll"), then by push (board "push"), with
// the same writes in both. Each phase has a warm-up (devices start, push
// devices connect and catch up), a measured window (the writer writes and the
// meter measures) and a tail of PushTimeout in which late downloads still
// count, then the next phase starts.
type ComparePolling struct {
	// Devices is each phase's number of devices (VUs).
	Devices int
	// DevicesPerUser is how many devices share a user; the writer writes for
	// Devices/DevicesPerUser users.
	DevicesPerUser int
	// Rate is the writes per second, each one change for a random user.
	Rate float64
	// Window is each phase's measured time.
	Window time.Duration
	// WarmUp precedes each phase's window.
	WarmUp time.Duration
	// PushTimeout is the freshness boards' timeout and each phase's tail.
	PushTimeout time.Duration
}

// Defaults of ComparePolling's writer, whose executor adds VUs as it needs
// them up to compareWriterMaxVUs.
const (
	compareWriterVUs    = 4
	compareWriterMaxVUs = 50
	comparePhaseGap     = 2 * time.Second // between one phase's end and the next's start
)

// Scenarios returns the run's scenarios, named so that name order is the
// phases' order: a_poll_devices, a_poll_meter, a_poll_writer, b_push_….
func (c ComparePolling) Scenarios() (map[string]loadtest.Scenario, error) {
	if c.Devices < 1 || c.DevicesPerUser < 1 || c.Rate <= 0 || c.Window <= 0 || c.WarmUp < 0 || c.PushTimeout <= 0 {
		return nil, errors.New("compare-polling needs devices, devices per user, a rate, a window and a push timeout above zero")
	}
	users := (c.Devices + c.DevicesPerUser - 1) / c.DevicesPerUser
	out := map[string]loadtest.Scenario{}
	var start time.Duration
	for _, ph := range []struct{ prefix, board, exec string }{
		{"a_poll_", "poll", "compare_poller"},
		{"b_push_", "push", "compare_pusher"},
	} {
		devParams, err := json.Marshal(map[string]any{"users": users, "devices_per_user": c.DevicesPerUser, "board": ph.board, "push_timeout": loadtest.Duration(c.PushTimeout)})
		if err != nil {
			return nil, err
		}
		writerParams, err := json.Marshal(map[string]any{"users": users, "board": ph.board, "push_timeout": loadtest.Duration(c.PushTimeout)})
		if err != nil {
			return nil, err
		}
		meterParams, err := json.Marshal(map[string]any{"board": ph.board})
		if err != nil {
			return nil, err
		}
		grace := loadtest.Duration(c.PushTimeout)
		window := start + c.WarmUp
		out[ph.prefix+"devices"] = loadtest.Scenario{
			Executor: loadtest.ConstantVUs, Exec: ph.exec, VUs: c.Devices, StartTime: loadtest.Duration(start),
			Duration: loadtest.Duration(c.WarmUp + c.Window + c.PushTimeout), GracefulStop: &grace, Params: devParams,
		}
		out[ph.prefix+"writer"] = loadtest.Scenario{
			Executor: loadtest.ConstantArrivalRate, Exec: "compare_writer", Rate: c.Rate, TimeUnit: loadtest.Duration(time.Second),
			StartTime: loadtest.Duration(window), Duration: loadtest.Duration(c.Window), PreAllocatedVUs: compareWriterVUs,
			MaxVUs: compareWriterMaxVUs, GracefulStop: &grace, Params: writerParams,
		}
		out[ph.prefix+"meter"] = loadtest.Scenario{
			Executor: loadtest.ConstantVUs, Exec: "compare_meter", VUs: 1, StartTime: loadtest.Duration(window),
			Duration: loadtest.Duration(c.Window), GracefulStop: &grace, Params: meterParams,
		}
		start += c.WarmUp + c.Window + c.PushTimeout + comparePhaseGap
	}
	return out, nil
}
