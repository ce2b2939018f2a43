package loadtest

import "errors"

// Sentinel errors returned (wrapped) by Run and ParseOptions; branch on them
// with errors.Is.
var (
	// ErrBadOptions: the options are malformed or inconsistent.
	ErrBadOptions = errors.New("bad options")
	// ErrUnknownExec: a scenario names an exec that the registry lacks.
	ErrUnknownExec = errors.New("unknown exec")
	// ErrBadThreshold: a threshold expression cannot be parsed, names an
	// aggregation its metric type lacks, or selects a metric that does not exist.
	ErrBadThreshold = errors.New("bad threshold")
	// ErrSetup: a scenario's Setup failed, so nothing was measured.
	ErrSetup = errors.New("setup failed")
	// ErrInterrupted: the caller cancelled the context before the test ended;
	// the returned Summary covers what ran.
	ErrInterrupted = errors.New("test interrupted")
)
