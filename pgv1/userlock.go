package pgv1

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pulsesync/pulsesync/sequencer"
)

// maxAttempts bounds how often a mutating transaction runs when PostgreSQL ends it with a
// serialization failure or a deadlock, as the reference does (docs/protocol-v1.md §3.5).
const maxAttempts = 3

// userQueues serialises the mutating calls of each user inside this process, so that waiters
// for a busy user wait here and not on a pooled connection (docs/protocol-v1.md §6.1 H9). An
// entry lives while someone holds or waits for it.
type userQueues struct {
	mu    sync.Mutex
	users map[string]*userQueue
}

// userQueue is one user's turn: a one-slot semaphore and the number of callers holding or
// waiting for it.
type userQueue struct {
	turn chan struct{}
	refs int
}

// acquire waits until the caller holds user's turn, ctx ends, or deadline passes. It reports
// whether the turn was taken; release must follow a successful acquire.
func (q *userQueues) acquire(ctx context.Context, user string, deadline time.Time) (bool, error) {
	q.mu.Lock()
	if q.users == nil {
		q.users = map[string]*userQueue{}
	}
	e := q.users[user]
	if e == nil {
		e = &userQueue{turn: make(chan struct{}, 1)}
		q.users[user] = e
	}
	e.refs++
	q.mu.Unlock()

	select {
	case e.turn <- struct{}{}:
		return true, nil
	default:
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case e.turn <- struct{}{}:
		return true, nil
	case <-timer.C:
		q.leave(user, e)
		return false, nil
	case <-ctx.Done():
		q.leave(user, e)
		return false, ctx.Err()
	}
}

// release gives user's turn to the next waiter.
func (q *userQueues) release(user string) {
	q.mu.Lock()
	e := q.users[user]
	q.mu.Unlock()
	<-e.turn
	q.leave(user, e)
}

// leave drops one reference to e, removing the entry when nobody holds or waits for it.
func (q *userQueues) leave(user string, e *userQueue) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e.refs--
	if e.refs == 0 {
		delete(q.users, user)
	}
}

// size is the number of users with an entry, for tests.
func (q *userQueues) size() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.users)
}

// errBusy is the refusal of a call whose user stayed busy for longer than Config.LockWait.
func errBusy() *Error {
	return &Error{Code: "service_unavailable", Message: "too many concurrent operations for this user; retry later", RetryAfter: 1}
}

// lockSQL bounds the database lock waits of the rest of the transaction and pins the session
// time zone, so that every timestamp PostgreSQL renders for the wire carries UTC.
const lockSQL = `SELECT set_config('lock_timeout', $1, true), set_config('TimeZone', 'UTC', true)`

// errNoSequence ends an attempt that found the user without a bundle sequence row, so that it
// locked nothing: the next attempt creates the row in its own transaction.
var errNoSequence = errors.New("the user has no bundle sequence row")

// inUserLock runs fn in one transaction that holds user's lock: first a turn in this process's
// queue for user, then a pooled connection, then the row lock on the user's bundle sequence
// (sequencer.BundleStream), which serialises the user's mutations across nodes and hands fn the
// Block from which a commit takes its bundle_seq. Waiting for the turn and for the database
// lock together is bounded by Config.LockWait; past it the call is refused with 503
// service_unavailable. Callers of other users never wait for this user, and a busy user holds
// at most one pooled connection of this process.
//
// The BEGIN travels with the lock, and fn may end its last batch with the COMMIT
// (queueCommit), so a call costs no round trip beyond its own statements (usertx.go).
//
// fn's error rolls the transaction back and is returned as is. A serialization failure or a
// deadlock re-runs the whole transaction, at most three times. A COMMIT whose outcome cannot
// be known (the connection failed rather than PostgreSQL refusing) becomes 503
// commit_outcome_unknown.
func (s *Store) inUserLock(ctx context.Context, user string, fn func(ctx context.Context, tx pgx.Tx, seq *sequencer.Block) error) error {
	deadline := time.Now().Add(s.cfg.LockWait)
	ok, err := s.queues.acquire(ctx, user, deadline)
	if err != nil {
		return fmt.Errorf("wait for user lock: %w", err)
	}
	if !ok {
		return errBusy()
	}
	defer s.queues.release(user)
	create := false
	for attempt := 1; ; attempt++ {
		err = s.lockedTx(ctx, user, deadline, create, fn)
		if errors.Is(err, errNoSequence) && !create {
			create, attempt = true, attempt-1 // the user's first mutation: not a failure
			continue
		}
		if err == nil || attempt == maxAttempts || !retryable(err) {
			return err
		}
		s.cfg.Logger.Warn("v1 transaction retried", "user", user, "attempt", attempt, "err", err)
	}
}

// lockedTx is one attempt of inUserLock; create inserts the user's bundle sequence row in the
// transaction before locking it.
func (s *Store) lockedTx(ctx context.Context, user string, deadline time.Time, create bool, fn func(ctx context.Context, tx pgx.Tx, seq *sequencer.Block) error) error {
	remaining := time.Until(deadline)
	if remaining <= 0 {
		return errBusy()
	}
	acquireCtx, cancel := context.WithDeadline(ctx, deadline)
	conn, err := s.pool.Acquire(acquireCtx)
	cancel()
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return errBusy()
		}
		return fmt.Errorf("acquire connection: %w", err)
	}
	defer conn.Release()

	// BEGIN and the locks in one round trip.
	batch := &pgx.Batch{}
	batch.Queue("BEGIN")
	// At least one millisecond: lock_timeout 0 would mean "wait forever".
	batch.Queue(lockSQL, fmt.Sprintf("%dms", max(time.Until(deadline).Milliseconds(), 1)))
	seq := sequencer.QueueLock(batch, sequencer.BundleStream(user), create)
	tx := &userTx{conn: conn.Conn()}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		if pgCode(err) == "55P03" { // lock_not_available: the bound passed in the database
			return errBusy()
		}
		return fmt.Errorf("lock user: %w", err)
	}
	if seq.Missing() {
		return errNoSequence // nothing is locked: inUserLock starts again with create
	}
	err = fn(ctx, tx, seq)
	if pgCode(err) == "55P03" {
		return errBusy()
	}
	return tx.finish(ctx, err)
}

// retryable reports whether PostgreSQL ended a transaction in a way a re-run can cure.
func retryable(err error) bool {
	switch pgCode(err) {
	case "40001", "40P01": // serialization_failure, deadlock_detected
		return true
	}
	return false
}

// pgCode returns the SQLSTATE of a PostgreSQL error, or "" for any other error.
func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// wrap returns a protocol refusal as is, so the HTTP layer finds it, and wraps any other error
// with what was being done; nil stays nil.
func wrap(doing string, err error) error {
	if err == nil {
		return nil
	}
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// pgMessage returns the primary message of a PostgreSQL error: what went wrong, without the
// detail lines that may quote whole rows.
func pgMessage(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Message
	}
	return err.Error()
}

// pgConstraint returns the constraint a PostgreSQL error names, or "".
func pgConstraint(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.ConstraintName
	}
	return ""
}
