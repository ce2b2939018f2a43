package pgv1

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// commitSQL ends a user's transaction. A call queues it (queueCommit) as the last statement of
// its last batch, so the COMMIT costs no round trip of its own.
const commitSQL = "COMMIT"

// queueCommit queues the COMMIT of the user's transaction at the end of batch. The batch must
// be the call's last: inUserLock sees the transaction ended and sends no COMMIT itself, and a
// connection failure while the batch's results are read becomes 503 commit_outcome_unknown,
// since the COMMIT may have been applied.
func queueCommit(batch *pgx.Batch) { batch.Queue(commitSQL) }

// userTx is the transaction inUserLock hands to its function: a pooled connection on which a
// BEGIN was sent in the same batch as the user's lock (pgx's own Tx spends a round trip on
// its BEGIN), and which notices a COMMIT queued into a batch by queueCommit. Every statement
// runs on the connection, inside the transaction.
type userTx struct {
	conn *pgx.Conn
	// commitSent is set when a batch ending in commitSQL was sent: from then on the
	// transaction's outcome is PostgreSQL's, whatever the batch's results say.
	commitSent bool
}

var _ pgx.Tx = (*userTx)(nil)

// errNested refuses savepoints: no v1 call needs them.
var errNested = errors.New("nested transactions are not supported in a user's transaction")

// Begin refuses: a user's transaction has no savepoints.
func (t *userTx) Begin(context.Context) (pgx.Tx, error) { return nil, errNested }

// Commit commits the transaction. A transaction PostgreSQL already aborted answers ROLLBACK,
// which is reported as pgx.ErrTxCommitRollback, as pgx's own Tx does.
func (t *userTx) Commit(ctx context.Context) error {
	tag, err := t.conn.Exec(ctx, commitSQL)
	if err != nil {
		return err
	}
	if tag.String() == "ROLLBACK" {
		return pgx.ErrTxCommitRollback
	}
	return nil
}

// Rollback rolls the transaction back unless it already ended. A connection left in a
// transaction by a failed ROLLBACK is discarded by the pool when released.
func (t *userTx) Rollback(ctx context.Context) error {
	if t.conn.PgConn().TxStatus() == 'I' {
		return nil
	}
	_, err := t.conn.Exec(ctx, "ROLLBACK")
	return err
}

// CopyFrom runs COPY FROM on the transaction's connection.
func (t *userTx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	return t.conn.CopyFrom(ctx, table, columns, src)
}

// SendBatch sends batch on the transaction's connection, noting a trailing COMMIT.
func (t *userTx) SendBatch(ctx context.Context, batch *pgx.Batch) pgx.BatchResults {
	if n := len(batch.QueuedQueries); n > 0 && batch.QueuedQueries[n-1].SQL == commitSQL {
		t.commitSent = true
	}
	return t.conn.SendBatch(ctx, batch)
}

// LargeObjects is not available in a user's transaction: the v1 store keeps no large objects,
// and pgx offers no way to build them over another transaction type. It panics.
func (t *userTx) LargeObjects() pgx.LargeObjects {
	panic("pgv1: large objects are not available in a user's transaction")
}

// Prepare prepares a statement on the transaction's connection.
func (t *userTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	return t.conn.Prepare(ctx, name, sql)
}

// Exec runs sql in the transaction.
func (t *userTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return t.conn.Exec(ctx, sql, args...)
}

// Query runs sql in the transaction.
func (t *userTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return t.conn.Query(ctx, sql, args...)
}

// QueryRow runs sql in the transaction.
func (t *userTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return t.conn.QueryRow(ctx, sql, args...)
}

// Conn returns the transaction's connection.
func (t *userTx) Conn() *pgx.Conn { return t.conn }

// finish ends the transaction after fn returned fnErr: a COMMIT fn queued already ended it;
// otherwise it is committed here when fn succeeded. A COMMIT whose outcome cannot be known —
// the connection failed rather than PostgreSQL answering — becomes 503 commit_outcome_unknown.
func (t *userTx) finish(ctx context.Context, fnErr error) error {
	switch {
	case fnErr != nil && t.commitSent && !isPgError(fnErr) && !isRefusal(fnErr):
		return errCommitUnknown()
	case fnErr != nil || t.commitSent:
		return fnErr
	}
	if err := t.Commit(ctx); err != nil {
		if isPgError(err) {
			return fmt.Errorf("commit: %w", err)
		}
		return errCommitUnknown()
	}
	return nil
}

// errCommitUnknown is the 503 of a commit whose outcome the connection's failure hid.
func errCommitUnknown() *Error {
	return &Error{Code: "commit_outcome_unknown", Message: "the database connection failed during commit; create the push session again to learn the outcome"}
}

// isPgError reports whether PostgreSQL answered err, so the transaction surely did not commit.
func isPgError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr)
}

// isRefusal reports whether err is a protocol refusal.
func isRefusal(err error) bool {
	var pe *Error
	return errors.As(err, &pe)
}
