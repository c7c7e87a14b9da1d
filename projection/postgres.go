package projection

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/backoff"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres is the PostgreSQL target: the handler writes its own tables
// through the pgx.Tx it is given, and the checkpoint is a row of
// projection_checkpoints written in that same transaction. Parked events
// are rows of projection_parked. Both tables live in one schema, created
// if missing.
//
// Single instance: Postgres is a Leaser. The lease of a projection is a
// session-level advisory lock (pg_try_advisory_lock) keyed by the schema
// and the projection's name, held on a connection of its own taken out
// of the pool for as long as the lease. A second projector of the same
// name, in any process on the same database, waits in state Standby and
// takes over when the first stops (Release closes the connection) or
// dies (the server ends its session, which frees the lock).
//
// The checkpoint row is updated only where it still holds the position
// the projector read (SaveCheckpoint), and the update takes the row's
// lock until commit: should two writers ever run at once despite the
// lease, the second fails with ErrCheckpointMoved instead of applying an
// event twice.
type Postgres struct {
	pool        *pgxpool.Pool
	schema      string
	checkpoints string // quoted schema.projection_checkpoints
	parked      string // quoted schema.projection_parked
	generations string // quoted schema.projection_generations
	schemas     string // quoted schema.projection_schemas
	// created holds the model schemas this process has created (slot
	// name → struct{}), so Begin creates each one once.
	created sync.Map
}

var (
	_ Target[pgx.Tx] = (*Postgres)(nil)
	_ Leaser         = (*Postgres)(nil)
)

// NewPostgres returns the target on pool, with its tables in schema
// ("public" if empty), creating them if missing.
func NewPostgres(ctx context.Context, pool *pgxpool.Pool, schema string) (*Postgres, error) {
	if schema == "" {
		schema = "public"
	}
	t := &Postgres{
		pool:        pool,
		schema:      schema,
		checkpoints: pgx.Identifier{schema, "projection_checkpoints"}.Sanitize(),
		parked:      pgx.Identifier{schema, "projection_parked"}.Sanitize(),
		generations: pgx.Identifier{schema, "projection_generations"}.Sanitize(),
		schemas:     pgx.Identifier{schema, "projection_schemas"}.Sanitize(),
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
);
CREATE TABLE IF NOT EXISTS ` + t.generations + ` (
	name       text PRIMARY KEY,
	generation bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS ` + t.schemas + ` (
	schema text PRIMARY KEY,
	slot   text NOT NULL
)`
	if _, err := pool.Exec(ctx, ddl); err != nil {
		return nil, fmt.Errorf("projection: creating the tables in %s: %w", schema, err)
	}
	return t, nil
}

// Schema is the schema of the target's tables.
func (t *Postgres) Schema() string { return t.schema }

// Begin opens a transaction (read committed) with search_path at the
// model schema of slot name (created if missing), then public.
func (t *Postgres) Begin(ctx context.Context, name string) (Tx[pgx.Tx], error) {
	schema, err := t.ensureSchema(ctx, name)
	if err != nil {
		return nil, err
	}
	tx, err := t.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `SET LOCAL search_path TO `+schema+`, public`); err != nil {
		tx.Rollback(ctx)
		return nil, err
	}
	return postgresTx{t: t, tx: tx, name: name}, nil
}

// ensureSchema creates the model schema of slot name once per process and
// returns it, quoted.
func (t *Postgres) ensureSchema(ctx context.Context, slot string) (string, error) {
	schema := pgx.Identifier{t.modelSchema(slot)}.Sanitize()
	if _, ok := t.created.Load(slot); ok {
		return schema, nil
	}
	// Recorded first, so that DropModels finds every schema made.
	if _, err := t.pool.Exec(ctx, `INSERT INTO `+t.schemas+` (schema, slot) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
		t.modelSchema(slot), slot); err != nil {
		return "", err
	}
	if _, err := t.pool.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+schema); err != nil {
		if !isUniqueViolation(err) {
			return "", fmt.Errorf("projection: creating schema %s: %w", schema, err)
		}
		// Two sessions created it at once: it exists.
	}
	t.created.Store(slot, struct{}{})
	return schema, nil
}

// modelSchema names the schema of a slot's read model: readable (rm_,
// the name's letters and digits, the generation) and unique (a hash of
// the target's schema and the slot), within PostgreSQL's 63 bytes.
func (t *Postgres) modelSchema(slot string) string {
	name, gen, _ := strings.Cut(slot, string(rune(generationSeparator)))
	base := make([]byte, 0, modelSchemaNameBytes)
	for i := 0; i < len(name) && len(base) < modelSchemaNameBytes; i++ {
		switch c := name[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			base = append(base, c)
		case c >= 'A' && c <= 'Z':
			base = append(base, c+'a'-'A')
		default:
			base = append(base, '_')
		}
	}
	h := fnv.New32a()
	h.Write([]byte(t.schema))
	h.Write([]byte{0})
	h.Write([]byte(slot))
	s := fmt.Sprintf("rm_%s_%08x", base, h.Sum32())
	if gen != "" {
		s += "_g" + gen
	}
	return s
}

// ModelSchema is the schema of the named projection's active read model,
// where its handler's unqualified tables are. Prefer Query, which also
// keeps a blue/green switch from dropping the schema under a reader.
func (t *Postgres) ModelSchema(ctx context.Context, name string) (string, error) {
	gen, err := t.Generation(ctx, name)
	if err != nil {
		return "", err
	}
	return t.modelSchema(slotName(name, gen)), nil
}

// Query runs fn in a read-only transaction on the named projection's
// active read model (search_path at its schema, then public). A
// blue/green switch waits for the queries in progress and the queries
// after it see the new generation: a query never finds its tables
// dropped under it.
func (t *Postgres) Query(ctx context.Context, name string, fn func(ctx context.Context, tx pgx.Tx) error) error {
	tx, err := t.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	// The switch takes this lock exclusively (Switch).
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock_shared($1)`, t.generationKey(name)); err != nil {
		return err
	}
	gen, err := t.generation(ctx, tx, name)
	if err != nil {
		return err
	}
	schema := pgx.Identifier{t.modelSchema(slotName(name, gen))}.Sanitize()
	if _, err := tx.Exec(ctx, `SET LOCAL search_path TO `+schema+`, public`); err != nil {
		return err
	}
	if err := fn(ctx, tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// Load returns the named projection's checkpoint.
func (t *Postgres) Load(ctx context.Context, name string) (Checkpoint, error) {
	var cp Checkpoint
	var pos uint64
	err := t.pool.QueryRow(ctx, `SELECT position, parked FROM `+t.checkpoints+` WHERE name = $1`, name).Scan(&pos, &cp.Parked)
	if errors.Is(err, pgx.ErrNoRows) {
		return Checkpoint{}, nil
	}
	cp.Position = annals.Position(pos)
	return cp, err
}

// TryLease takes the named projection's advisory lock on a connection of
// its own, or returns nil if another session holds it.
func (t *Postgres) TryLease(ctx context.Context, name string) (Lease, error) {
	c, err := t.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	var got bool
	if err := c.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, t.leaseKey(name)).Scan(&got); err != nil {
		// The connection's state is unknown: do not hand it back.
		conn := c.Hijack()
		closeConn(conn)
		return nil, err
	}
	if !got {
		// Nothing is held on the connection: it can serve others.
		c.Release()
		return nil, nil
	}
	// The lock belongs to the session: take the connection out of the
	// pool so that no one else uses it and closing it frees the lock.
	l := &postgresLease{
		conn: c.Hijack(),
		key:  t.leaseKey(name),
		lost: make(chan struct{}),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go l.watch()
	return l, nil
}

// leaseKey is the advisory lock's key: a 64-bit hash of the schema and
// the name. Two projections whose keys collide only wait for each other;
// the checkpoint check keeps the effect exact either way.
func (t *Postgres) leaseKey(name string) int64 {
	return t.lockKey("annals.projection", name)
}

// lockKey is a 64-bit advisory lock key: a hash of what it is for, the
// target's schema and the projection's name.
func (t *Postgres) lockKey(what, name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(what))
	h.Write([]byte{0})
	h.Write([]byte(t.schema))
	h.Write([]byte{0})
	h.Write([]byte(name))
	return int64(h.Sum64())
}

// postgresLease is a held advisory lock and the connection it lives on.
type postgresLease struct {
	conn *pgx.Conn
	key  int64         // the advisory lock's
	lost chan struct{} // closed by watch when the connection fails
	stop chan struct{} // closed by Release
	done chan struct{} // closed when watch returns
	once sync.Once
}

// watch pings the connection every LeaseCheckInterval until Release; a
// failed ping means the session (and so the lock) may be gone.
func (l *postgresLease) watch() {
	defer close(l.done)
	tick := time.NewTicker(LeaseCheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), LeaseCheckInterval)
		err := l.conn.Ping(ctx)
		cancel()
		if err != nil {
			close(l.lost)
			<-l.stop
			return
		}
	}
}

func (l *postgresLease) Lost() <-chan struct{} { return l.lost }

// Release unlocks the lease and closes its connection. The unlock makes
// the lease free when Release returns; closing alone would free it only
// once the server has ended the session, after Release has returned. If
// the unlock fails, the session's end frees it all the same.
func (l *postgresLease) Release() {
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		ctx, cancel := context.WithTimeout(context.Background(), leaseCloseTimeout)
		defer cancel()
		_, _ = l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, l.key)
		closeConn(l.conn)
	})
}

// isUniqueViolation reports PostgreSQL's unique_violation (which CREATE
// SCHEMA IF NOT EXISTS raises when another session creates it at once).
func isUniqueViolation(err error) bool {
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	return ok && pgErr.Code == "23505"
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), leaseCloseTimeout)
	defer cancel()
	conn.Close(ctx)
}

// Generation returns the named projection's active generation.
func (t *Postgres) Generation(ctx context.Context, name string) (uint64, error) {
	return t.generation(ctx, t.pool, name)
}

type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (t *Postgres) generation(ctx context.Context, q queryRower, name string) (uint64, error) {
	var gen int64
	err := q.QueryRow(ctx, `SELECT generation FROM `+t.generations+` WHERE name = $1`, name).Scan(&gen)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return uint64(gen), err
}

// generationKey is the advisory lock that queries take shared and a
// switch or a drop exclusive, so that a schema is never dropped under a
// query (Query).
func (t *Postgres) generationKey(name string) int64 {
	return t.lockKey("annals.projection.generation", name)
}

// Switch makes generation to active, if from still is, and drops
// generation from: its checkpoint, parked events and model schema
// (DROP SCHEMA ... CASCADE), all in one transaction. It first takes the
// projection's generation lock exclusively: queries in progress end
// first, queries after it wait and then read the new generation.
func (t *Postgres) Switch(ctx context.Context, name string, from, to uint64) error {
	return t.generationTx(ctx, name, func(tx pgx.Tx, active uint64) error {
		if active != from {
			return ErrGenerationMoved
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+t.generations+` AS g (name, generation) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET generation = EXCLUDED.generation`, name, int64(to)); err != nil {
			return err
		}
		return t.dropSlot(ctx, tx, slotName(name, from))
	})
}

// Drop deletes generation gen of the named projection (a rebuild given
// up); it refuses the active generation.
func (t *Postgres) Drop(ctx context.Context, name string, gen uint64) error {
	return t.generationTx(ctx, name, func(tx pgx.Tx, active uint64) error {
		if active == gen {
			return ErrActiveGeneration
		}
		return t.dropSlot(ctx, tx, slotName(name, gen))
	})
}

// generationTx runs fn in a transaction holding the projection's
// generation lock exclusively, with the active generation. A transaction
// PostgreSQL rolled back (deadlock victim, serialization failure) is run
// again, up to maxGenerationTxAttempts times: it changed nothing. Such
// deadlocks are expected after a crash, when a new holder of the lease
// drops or switches a generation while a statement of the dead process's
// session, still running in the server, locks the same rows.
func (t *Postgres) generationTx(ctx context.Context, name string, fn func(tx pgx.Tx, active uint64) error) error {
	pause := generationRetryPause
	for attempt := 1; ; attempt++ {
		err := t.generationTxOnce(ctx, name, fn)
		if !isRolledBack(err) || attempt == maxGenerationTxAttempts {
			return err
		}
		if err := backoff.Sleep(ctx, pause); err != nil {
			return err
		}
		pause *= 2
	}
}

// isRolledBack reports PostgreSQL's class 40, transaction rollback: the
// transaction was undone whole and may be run again.
func isRolledBack(err error) bool {
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	return ok && strings.HasPrefix(pgErr.Code, "40")
}

func (t *Postgres) generationTxOnce(ctx context.Context, name string, fn func(tx pgx.Tx, active uint64) error) error {
	tx, err := t.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, t.generationKey(name)); err != nil {
		return err
	}
	active, err := t.generation(ctx, tx, name)
	if err != nil {
		return err
	}
	if err := fn(tx, active); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func (t *Postgres) dropSlot(ctx context.Context, tx pgx.Tx, slot string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM `+t.checkpoints+` WHERE name = $1`, slot); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM `+t.parked+` WHERE name = $1`, slot); err != nil {
		return err
	}
	schema := t.modelSchema(slot)
	if _, err := tx.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM `+t.schemas+` WHERE schema = $1`, schema); err != nil {
		return err
	}
	t.created.Delete(slot)
	return nil
}

// DropModels deletes every read model of the target: the model schemas it
// created (DROP SCHEMA ... CASCADE), and all checkpoints, parked events
// and generations. Its own tables stay, empty. For tests and for taking
// a target out of use; no projector may run on it meanwhile.
func (t *Postgres) DropModels(ctx context.Context) error {
	tx, err := t.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, `SELECT schema FROM `+t.schemas)
	if err != nil {
		return err
	}
	schemas, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, s := range schemas {
		if _, err := tx.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{s}.Sanitize()+` CASCADE`); err != nil {
			return err
		}
	}
	for _, table := range []string{t.schemas, t.checkpoints, t.parked, t.generations} {
		if _, err := tx.Exec(ctx, `DELETE FROM `+table); err != nil {
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	t.created.Clear()
	return nil
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
		var pos uint64
		err := row.Scan(&pos, &pe.EventID, &pe.Stream, &pe.Type, &pe.Error, &pe.Attempts, &pe.ParkedAt)
		pe.Position = annals.Position(pos)
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

func (p postgresTx) SaveCheckpoint(ctx context.Context, prev annals.Position, cp Checkpoint) error {
	// From 0: insert the first checkpoint, or move the one still at 0.
	// From elsewhere: move the one still at prev; none stored (a slot a
	// switch or a drop deleted) is a moved checkpoint too, so that a stale
	// writer cannot bring a dropped slot back. Under read committed a
	// concurrent writer's update makes this one re-read the row after
	// that writer commits, find it moved, and change nothing.
	sql := `UPDATE ` + p.t.checkpoints + ` SET position = $2, parked = $3 WHERE name = $1 AND position = $4`
	if prev == 0 {
		sql = `INSERT INTO ` + p.t.checkpoints + ` AS c (name, position, parked) VALUES ($1, $2, $3)
ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, parked = EXCLUDED.parked WHERE c.position = $4`
	}
	tag, err := p.tx.Exec(ctx, sql, p.name, int64(cp.Position), int64(cp.Parked), int64(prev))
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

func (p postgresTx) Unpark(ctx context.Context, position annals.Position) error {
	_, err := p.tx.Exec(ctx, `DELETE FROM `+p.t.parked+` WHERE name = $1 AND position = $2`, p.name, int64(position))
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
