package projection

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres is the PostgreSQL target: the handler writes its own tables
// through the pgx.Tx it is given, and the checkpoint is a row of
// projection_checkpoints written in that same transaction. Parked events
// are rows of projection_parked. Both tables live in one schema, created
// if missing.
//
// The checkpoint row is updated only where it still holds the position
// the projector read (SaveCheckpoint), and the update takes the row's
// lock until commit: a second projector of the same name, in any process,
// fails with ErrCheckpointMoved instead of applying an event twice. (It
// does not wait its turn: single-instance leases are not done yet.)
type Postgres struct {
	pool        *pgxpool.Pool
	checkpoints string // quoted schema.projection_checkpoints
	parked      string // quoted schema.projection_parked
}

var _ Target[pgx.Tx] = (*Postgres)(nil)

// NewPostgres returns the target on pool, with its tables in schema
// ("public" if empty), creating them if missing.
func NewPostgres(ctx context.Context, pool *pgxpool.Pool, schema string) (*Postgres, error) {
	if schema == "" {
		schema = "public"
	}
	t := &Postgres{
		pool:        pool,
		checkpoints: pgx.Identifier{schema, "projection_checkpoints"}.Sanitize(),
		parked:      pgx.Identifier{schema, "projection_parked"}.Sanitize(),
	}
	ddl := `CREATE SCHEMA IF NOT EXISTS ` + pgx.Identifier{schema}.Sanitize() + `;
CREATE TABLE IF NOT EXISTS ` + t.checkpoints + ` (
	name     text PRIMARY KEY,
	position bigint NOT NULL,
	parked   bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS ` + t.parked + ` (
	name      text NOT NULL,
	position  bigint NOT NULL,
	event_id  uuid NOT NULL,
	stream    text NOT NULL,
	type      text NOT NULL,
	error     text NOT NULL,
	attempts  integer NOT NULL,
	parked_at timestamptz NOT NULL,
	PRIMARY KEY (name, position)
)`
	if _, err := pool.Exec(ctx, ddl); err != nil {
		return nil, fmt.Errorf("projection: creating the tables in %s: %w", schema, err)
	}
	return t, nil
}

// Begin opens a transaction (read committed).
func (t *Postgres) Begin(ctx context.Context, name string) (Tx[pgx.Tx], error) {
	tx, err := t.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return postgresTx{t: t, tx: tx, name: name}, nil
}

// Load returns the named projection's checkpoint.
func (t *Postgres) Load(ctx context.Context, name string) (Checkpoint, error) {
	var cp Checkpoint
	err := t.pool.QueryRow(ctx, `SELECT position, parked FROM `+t.checkpoints+` WHERE name = $1`, name).Scan(&cp.Position, &cp.Parked)
	if errors.Is(err, pgx.ErrNoRows) {
		return Checkpoint{}, nil
	}
	return cp, err
}

// ParkedEvents lists the named projection's parked events.
func (t *Postgres) ParkedEvents(ctx context.Context, name string, limit int) ([]ParkedEvent, error) {
	rows, err := t.pool.Query(ctx, `SELECT position, event_id, stream, type, error, attempts, parked_at FROM `+t.parked+
		` WHERE name = $1 ORDER BY position LIMIT $2`, name, clampLimit(limit))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (ParkedEvent, error) {
		var pe ParkedEvent
		err := row.Scan(&pe.Position, &pe.EventID, &pe.Stream, &pe.Type, &pe.Error, &pe.Attempts, &pe.ParkedAt)
		pe.ParkedAt = pe.ParkedAt.UTC()
		return pe, err
	})
}

type postgresTx struct {
	t    *Postgres
	tx   pgx.Tx
	name string
}

func (p postgresTx) Model() pgx.Tx { return p.tx }

func (p postgresTx) SaveCheckpoint(ctx context.Context, prev uint64, cp Checkpoint) error {
	// Insert the first checkpoint, or move the one still at prev. Under
	// read committed a concurrent writer's update makes this one re-read
	// the row after that writer commits, find it moved, and change
	// nothing.
	tag, err := p.tx.Exec(ctx, `INSERT INTO `+p.t.checkpoints+` AS c (name, position, parked) VALUES ($1, $2, $3)
ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, parked = EXCLUDED.parked WHERE c.position = $4`,
		p.name, int64(cp.Position), int64(cp.Parked), int64(prev))
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return ErrCheckpointMoved
	}
	return nil
}

func (p postgresTx) Park(ctx context.Context, pe ParkedEvent) error {
	_, err := p.tx.Exec(ctx, `INSERT INTO `+p.t.parked+` (name, position, event_id, stream, type, error, attempts, parked_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
		p.name, int64(pe.Position), pe.EventID, pe.Stream, pe.Type, pe.Error, pe.Attempts, pe.ParkedAt)
	return err
}

func (p postgresTx) ClearParked(ctx context.Context) error {
	_, err := p.tx.Exec(ctx, `DELETE FROM `+p.t.parked+` WHERE name = $1`, p.name)
	return err
}

func (p postgresTx) Commit(ctx context.Context) error { return p.tx.Commit(ctx) }

// Rollback ignores pgx.ErrTxClosed: rolling back after Commit does nothing.
func (p postgresTx) Rollback(ctx context.Context) error {
	if err := p.tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		return err
	}
	return nil
}
