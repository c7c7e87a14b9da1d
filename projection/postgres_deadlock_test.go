package projection_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/annals/annals/projection"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// A drop of a generation that PostgreSQL picks as a deadlock's victim is
// run again, not failed: after a crash, the new holder of the lease drops
// the dead instance's half-built generation while a statement of the dead
// process's session may still lock the same rows. The test builds that
// cycle: another session locks the generation's checkpoint row, Drop
// takes the generation lock and waits for the row, then the other session
// asks for the generation lock. Drop waited first, so its deadlock check
// runs first and finds the cycle.
func TestPostgresDropRetriesADeadlock(t *testing.T) {
	ctx := context.Background()
	target, pool, _ := pgTarget(t)
	slot := "counts\x011"
	tx, err := target.Begin(ctx, slot)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.SaveCheckpoint(ctx, 0, projection.Checkpoint{Position: 5}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	other, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback(ctx)
	checkpoints := pgx.Identifier{target.Schema(), "projection_checkpoints"}.Sanitize()
	if _, err := other.Exec(ctx, `SELECT 1 FROM `+checkpoints+` WHERE name = $1 FOR UPDATE`, slot); err != nil {
		t.Fatal(err)
	}
	dropped := make(chan error, 1)
	go func() { dropped <- target.Drop(ctx, "counts", 1) }()
	key := generationLockOfWaitingDrop(t, pool, target.Schema())
	// Returns once PostgreSQL has rolled back Drop's transaction.
	if _, err := other.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, key); err != nil {
		if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "40P01" {
			// The machine stalled past deadlock_timeout between Drop's
			// wait and this one: this session was the victim instead.
			t.Log("the other session was the deadlock's victim; Drop's retry is not exercised")
		} else {
			t.Fatal(err)
		}
	}
	if err := other.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-dropped:
		if err != nil {
			t.Fatalf("Drop after a deadlock: %v", err)
		}
	case <-time.After(hangGuard):
		t.Fatal("Drop did not return")
	}
	if cp, err := target.Load(ctx, slot); err != nil || cp != (projection.Checkpoint{}) {
		t.Fatalf("generation 1's checkpoint after Drop: %+v, %v", cp, err)
	}
}

// generationLockOfWaitingDrop waits until a session waits for a lock in a
// statement on schema's checkpoints (Drop, waiting for the row) and
// returns the advisory lock it holds (the generation lock), read from
// pg_locks: the int8 key's high half is classid, its low half objid.
func generationLockOfWaitingDrop(t *testing.T, pool interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, schema string) int64 {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		var key int64
		err := pool.QueryRow(context.Background(), `SELECT (h.classid::bigint << 32) | h.objid::bigint
FROM pg_stat_activity a
JOIN pg_locks w ON w.pid = a.pid AND NOT w.granted
JOIN pg_locks h ON h.pid = a.pid AND h.granted AND h.locktype = 'advisory'
WHERE a.datname = current_database() AND a.query LIKE '%' || $1 || '%projection_checkpoints%'
LIMIT 1`, schema).Scan(&key)
		if err == nil {
			return key
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("Drop never waited for the checkpoint row")
		}
		time.Sleep(time.Millisecond)
	}
}
