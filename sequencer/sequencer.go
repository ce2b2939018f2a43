package sequencer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Querier is the part of a pgx pool, connection or transaction the sequencer needs.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Block is a user's sequence, locked inside one upload transaction. Ids taken from it are dense
// and start right after the user's last committed id.
type Block struct {
	user    string
	missing bool  // the user has no sequence row yet: nothing is locked
	last    int64 // last committed id when the lock was taken
	next    int64 // next id to hand out
}

// lockSQL locks the user's sequence row and reads the newest committed value after any wait. A
// row lock writes no new row version, which the upsert that used to create and lock the row in
// one statement did on every upload; the row is created once, by the user's first upload
// (QueueLock with create).
const lockSQL = `SELECT last_seq FROM sync.user_seq WHERE user_id = $1 FOR NO KEY UPDATE`

// createSQL inserts the user's sequence row. Inside the transaction that then locks it, so the
// row exists only if that transaction commits; a concurrent insert of the same user waits for
// this transaction to end.
const createSQL = `INSERT INTO sync.user_seq (user_id, last_seq) VALUES ($1, 0) ON CONFLICT (user_id) DO NOTHING`

// QueueLock queues, as the next statements of batch, the lock of user's sequence row, and returns
// the Block it fills when the batch's results are read. The lock is held until the transaction
// ends, so ids of one user become visible in the order they were taken (invariant I1), and every
// statement queued after it sees everything committed by the user's earlier uploads. It locks no
// row of another user, so uploads of different users never wait for each other.
//
// A user without a sequence row (before their first upload) gets a Block that is Missing: it
// locked nothing, and statements queued after it may not have seen a concurrent first upload of
// the same user, so the caller must roll back and run the transaction again with create set.
// Create queues the row's insert first, in the same transaction, so the Block is never Missing
// and a transaction that rolls back (a refused upload) leaves no sequence row behind. Every
// upload but a user's first runs without it: the plain lock writes nothing.
//
// This is docs/architecture.md's "UPDATE … SET last_seq = last_seq + n" split in two: the upload learns how
// many ids it needs only after judging its changes under the lock, so ids stay dense.
func QueueLock(batch *pgx.Batch, user string, create bool) *Block {
	if create {
		batch.Queue(createSQL, user)
	}
	b := &Block{user: user}
	batch.Queue(lockSQL, user).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&b.last)
		if errors.Is(err, pgx.ErrNoRows) {
			b.missing = true
			return nil
		}
		if err != nil {
			return fmt.Errorf("lock sequence of user: %w", err)
		}
		b.next = b.last + 1
		return nil
	})
	return b
}

// Missing reports whether the user had no sequence row, so that the lock took nothing.
func (b *Block) Missing() bool { return b.missing }

// Take reserves the next n ids and returns the first of them.
func (b *Block) Take(n int) (first int64) {
	first = b.next
	b.next += int64(n)
	return first
}

// Last is the highest id taken so far, or the user's last committed id if none was.
func (b *Block) Last() int64 { return b.next - 1 }

// StoreStatement returns the UPDATE that records the ids taken from a Block, with user and last
// the placeholders of the user and of Last in the enclosing statement, so a caller can fold it
// into a statement of its own as a data-modifying CTE and save a statement per transaction.
func StoreStatement(user, last string) string {
	return `UPDATE sync.user_seq SET last_seq = ` + last + ` WHERE user_id = ` + user
}

var storeSQL = StoreStatement("$1", "$2")

// QueueStore queues into batch the statement that records the ids taken from b. It must run in
// the transaction that holds the lock, after the changes carrying those ids. A block from which
// nothing was taken queues nothing.
func (b *Block) QueueStore(batch *pgx.Batch) {
	if b.next-1 > b.last {
		batch.Queue(storeSQL, b.user, b.Last())
	}
}

const watermarkSQL = `SELECT last_seq FROM sync.user_seq WHERE user_id = $1`

// Watermark returns user's last committed id, or 0 for a user who never uploaded. Every id at or
// below it is visible to any later snapshot, and no id above it is (invariant I1), which makes
// it the value for highest_server_seq, window_until and push notifications alike.
func Watermark(ctx context.Context, q Querier, user string) (int64, error) {
	var last int64
	err := q.QueryRow(ctx, watermarkSQL, user).Scan(&last)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read watermark of user: %w", err)
	}
	return last, nil
}

// Advance announces that User's committed sequence reached Seq. Advances are idempotent and
// monotonic: receiving one twice, or an older one late, changes nothing.
//
// From, Source and Schemas describe the commits the advance carries, so that a device is not
// woken by its own upload: ids From…Seq were committed by Source and touched Schemas. Any of
// them may be unknown (zero), as for an advance found by reconciliation; a receiver must then
// assume the commits concern everybody. At is when the commit was announced, for measuring the
// commit-to-notification lag; zero when unknown.
type Advance struct {
	User    string
	Seq     int64
	From    int64
	Source  string
	Schemas []string
	At      time.Time
}
