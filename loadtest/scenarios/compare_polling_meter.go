package scenarios

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulsesync/pulsesync/loadtest"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat: Linux exports them
// in USER_HZ, which is 100 on every architecture it supports.
const userHZ = 100

// meterExec measures one phase of the compare-polling test over its single
// iteration (run it with constant-vus, 1 VU, over the phase's measured
// window): the server's CPU time (/proc/<server_pid>/stat, or with --embedded
// this whole process), PostgreSQL's (the postmaster and its children, found
// through database_url) and the database's committed transactions
// (pg_stat_database). Each is set as a gauge per minute and per 1,000 of the
// phase's devices, tagged mode:<board>; SummaryNotes puts the phases side by
// side.
type meterExec struct {
	p     Params
	env   *loadtest.Env
	phase *phase

	devices, serverCPU, pgCPU, xact *loadtest.Gauge

	serverPID  int // 0: not measured
	postmaster int // 0: not measured
	db         *pgx.Conn
}

func newCompareMeterExec(env *loadtest.Env, raw json.RawMessage, o Params) (loadtest.Exec, error) {
	p, err := decodeParams(raw, o, "board", "server_pid", "database_url")
	if err != nil {
		return nil, err
	}
	ph, err := sharedPhase(env, p)
	if err != nil {
		return nil, err
	}
	m, tags := env.Metrics, loadtest.Tags{"mode": p.Board}
	return &meterExec{
		p: p, env: env, phase: ph,
		devices:   m.Gauge(meterDevices, loadtest.Default, tags),
		serverCPU: m.Gauge(meterServerCPU, loadtest.Default, tags),
		pgCPU:     m.Gauge(meterPGCPU, loadtest.Default, tags),
		xact:      m.Gauge(meterXact, loadtest.Default, tags),
	}, nil
}

// The meter's gauges, tagged mode:<board>.
const (
	meterDevices   = "compare_devices"
	meterServerCPU = "server_cpu_s_per_min_1k_devices"
	meterPGCPU     = "pg_cpu_s_per_min_1k_devices"
	meterXact      = "db_xact_per_min_1k_devices"
)

// backendPIDSQL names the connection's backend, whose parent is the postmaster.
const backendPIDSQL = `SELECT pg_backend_pid()`

// Setup finds what can be measured and notes what cannot.
func (x *meterExec) Setup(ctx context.Context) error {
	switch {
	case x.p.ServerPID > 0:
		x.serverPID = x.p.ServerPID
	case x.p.ServerInProcess:
		x.serverPID = os.Getpid()
		x.env.Note("server CPU is this whole process: the embedded server and the load generator's devices together (give a separate server's pid with --server-pid to measure it alone)")
	default:
		x.env.Note("server CPU not measured: give the server's pid with --server-pid")
	}
	if x.serverPID > 0 {
		if _, err := readProcStat(x.serverPID); err != nil {
			return err
		}
	}
	if x.p.DatabaseURL == "" {
		x.env.Note("PostgreSQL CPU and transactions not measured: give --database-url")
		return nil
	}
	db, err := pgx.Connect(ctx, x.p.DatabaseURL)
	if err != nil {
		return fmt.Errorf("connect to database_url: %w", err)
	}
	x.db = db
	var backend int
	if err := db.QueryRow(ctx, backendPIDSQL).Scan(&backend); err != nil {
		return fmt.Errorf("read backend pid: %w", err)
	}
	st, err := readProcStat(backend)
	if err != nil {
		x.env.Note("PostgreSQL CPU not measured: its backend %d is not a process of this machine (%v)", backend, err)
		return nil
	}
	x.postmaster = st.ppid
	return nil
}

// cpuSample is one reading of the counters a phase is measured by.
type cpuSample struct {
	at        time.Time
	serverCPU float64 // seconds
	pgCPU     float64 // seconds
	xact      int64
}

// xactSQL reads the database's committed transactions; a fresh transaction
// each time, so the statistics snapshot is current.
const xactSQL = `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`

func (x *meterExec) sample(ctx context.Context) (cpuSample, error) {
	s := cpuSample{at: time.Now()}
	if x.serverPID > 0 {
		st, err := readProcStat(x.serverPID)
		if err != nil {
			return s, err
		}
		s.serverCPU = st.own()
	}
	if x.postmaster > 0 {
		cpu, err := treeCPU(x.postmaster)
		if err != nil {
			return s, err
		}
		s.pgCPU = cpu
	}
	if x.db != nil {
		if err := x.db.QueryRow(ctx, xactSQL).Scan(&s.xact); err != nil {
			return s, fmt.Errorf("read transactions: %w", err)
		}
	}
	return s, nil
}

// Iterate samples at the start of the window and when the VU drains, and
// sets the gauges from the difference.
func (x *meterExec) Iterate(ctx context.Context, vu *loadtest.VU) error {
	first, err := x.sample(ctx)
	<-vu.Draining().Done() // a failed first sample must not turn into a busy loop either
	if err != nil {
		return err
	}
	last, err := x.sample(ctx)
	if err != nil {
		return err
	}
	devices := x.phase.deviceCount()
	elapsed := last.at.Sub(first.at)
	x.devices.Set(float64(devices))
	if x.serverPID > 0 {
		x.serverCPU.Set(perMinutePer1k(last.serverCPU-first.serverCPU, elapsed, devices))
	}
	if x.postmaster > 0 {
		x.pgCPU.Set(perMinutePer1k(last.pgCPU-first.pgCPU, elapsed, devices))
	}
	if x.db != nil {
		x.xact.Set(perMinutePer1k(float64(last.xact-first.xact), elapsed, devices))
	}
	return nil
}

// Teardown closes the database connection.
func (x *meterExec) Teardown(ctx context.Context) error {
	if x.db != nil {
		return x.db.Close(ctx)
	}
	return nil
}

// perMinutePer1k scales an amount measured over elapsed with devices devices
// to one minute and 1,000 devices.
func perMinutePer1k(amount float64, elapsed time.Duration, devices int) float64 {
	if elapsed <= 0 || devices <= 0 {
		return 0
	}
	return amount / elapsed.Minutes() / float64(devices) * 1000
}

// procStat is what the meter reads of /proc/<pid>/stat.
type procStat struct {
	ppid                         int
	utime, stime, cutime, cstime uint64 // clock ticks
}

// own is the process's own CPU time in seconds.
func (s procStat) own() float64 { return float64(s.utime+s.stime) / userHZ }

// reaped is the CPU time in seconds of its children that have exited.
func (s procStat) reaped() float64 { return float64(s.cutime+s.cstime) / userHZ }

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, fmt.Errorf("read process %d: %w", pid, err)
	}
	return parseProcStat(string(b))
}

// parseProcStat reads a /proc/<pid>/stat line (proc(5)): after the command
// name in parentheses, which may hold spaces and parentheses itself, come
// state, ppid, … and at fields 14–17 utime, stime, cutime and cstime.
func parseProcStat(line string) (procStat, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return procStat{}, errors.New("parse /proc stat: no command name")
	}
	f := strings.Fields(line[i+1:]) // f[0] is field 3
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("parse /proc stat: %d fields after the name", len(f))
	}
	var s procStat
	var err error
	if s.ppid, err = strconv.Atoi(f[1]); err != nil {
		return procStat{}, fmt.Errorf("parse /proc stat ppid: %w", err)
	}
	for k, dst := range []*uint64{&s.utime, &s.stime, &s.cutime, &s.cstime} {
		if *dst, err = strconv.ParseUint(f[11+k], 10, 64); err != nil {
			return procStat{}, fmt.Errorf("parse /proc stat field %d: %w", 14+k, err)
		}
	}
	return s, nil
}

// treeCPU is the CPU time in seconds of root, of its live children and of
// the children it has reaped: PostgreSQL's whole CPU when root is the
// postmaster (a backend that exits between two samples moves from the live
// sum to the reaped one, so nothing is lost or counted twice).
func treeCPU(root int) (float64, error) {
	st, err := readProcStat(root)
	if err != nil {
		return 0, err
	}
	total := st.own() + st.reaped()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("list processes: %w", err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == root {
			continue
		}
		child, err := readProcStat(pid)
		if err != nil || child.ppid != root {
			continue // gone meanwhile, or not PostgreSQL's
		}
		total += child.own()
	}
	return total, nil
}
