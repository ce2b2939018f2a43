package pg

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// conn is what the upload and retry transactions need from a connection or a transaction.
type conn interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// pipeline is a batch of statements sent in one round trip whose results are read in order,
// so that the caller learns which statement failed first: a projection's failure is recovered
// from, a failure of the sync writes is not.
type pipeline struct {
	batch   pgx.Batch
	readers map[int]func(pgx.BatchResults) error // by statement index; absent = read as Exec
}

// query queues a statement whose rows scan reads.
func (p *pipeline) query(scan func(pgx.Rows) error, sql string, args ...any) {
	if p.readers == nil {
		p.readers = map[int]func(pgx.BatchResults) error{}
	}
	p.readers[p.batch.Len()] = func(br pgx.BatchResults) error {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		defer rows.Close()
		if err := scan(rows); err != nil {
			return err
		}
		return rows.Err()
	}
	p.batch.Queue(sql, args...)
}

// exec queues a statement whose result is only its success.
func (p *pipeline) exec(sql string, args ...any) { p.batch.Queue(sql, args...) }

// len is the number of statements queued so far: the index the next one gets.
func (p *pipeline) len() int { return p.batch.Len() }

// send runs the statements and reads their results in order. It returns the index of the
// first statement that failed and its error, or -1 and nil.
func (p *pipeline) send(ctx context.Context, c conn) (failed int, err error) {
	br := c.SendBatch(ctx, &p.batch)
	failed = -1
	for i := range p.batch.Len() {
		if read, ok := p.readers[i]; ok {
			err = read(br)
		} else {
			_, err = br.Exec()
		}
		if err != nil {
			failed = i
			break
		}
	}
	if closeErr := br.Close(); err == nil && closeErr != nil {
		failed, err = p.batch.Len()-1, closeErr
	}
	return failed, err
}
