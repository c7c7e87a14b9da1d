package projection_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/embedded"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/postgres"
	"github.com/annals/annals/projection"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The crash tests run the projector as a child process (this test binary,
// started with childEnv set) and kill it with SIGKILL at random moments
// while it applies: no deferred code, no Stop, no rollback runs in the
// child, so what survives is what the target committed.
const (
	// childEnv selects the child's target ("postgres" or "pebble"); the
	// other childXxx variables say where its store and target are.
	childEnv       = "ANNALS_PROJECTION_CHILD"
	childStoreEnv  = "ANNALS_PROJECTION_STORE"  // store schema or directory
	childTargetEnv = "ANNALS_PROJECTION_TARGET" // target schema or directory
	childTableEnv  = "ANNALS_PROJECTION_TABLE"  // the PostgreSQL read model's table
	childBatchEnv  = "ANNALS_PROJECTION_BATCH"  // Options.BatchEvents
	childUntilEnv  = "ANNALS_PROJECTION_UNTIL"  // exit 0 once the checkpoint reaches it
	// childRebuildEnv makes the child start a blue/green rebuild once
	// caught up and print the rebuild's position; "finish": exit 0 once
	// it has switched. On PostgreSQL the child then runs pgVersioned, and
	// "build" runs it as follow does (to build generation 0).
	childRebuildEnv = "ANNALS_PROJECTION_REBUILD"
	// childHoldEnv makes the child's handler wait, applying nothing, at
	// the first event past this position: a kill then lands before it
	// however fast the child runs.
	childHoldEnv = "ANNALS_PROJECTION_HOLD"
	// holdMin is the least distance of a hold past the checkpoint the
	// child starts from: two of its largest batches, so that its first
	// transaction commits (a batch holding the held event never does).
	holdMin          = 2 * 64
	childReportEvery = 2 * time.Millisecond // how often the child prints its checkpoint

	// crashKills is how many times each crash test kills its child
	// (crashKillsShort under -short).
	crashKills      = 25
	crashKillsShort = 5
	// maxKillDelay bounds the random pause between the child's first
	// commit and its SIGKILL.
	maxKillDelay = 40 * time.Millisecond
	// postgresEventsPerKill and pebbleEventsPerKill size the logs of the
	// crash tests so that every kill lands before the head: each child is
	// held (childHoldEnv) less than this many events past the checkpoint
	// it starts from, so however fast it runs, n kills stay within the
	// first n times this many events.
	postgresEventsPerKill = 400
	pebbleEventsPerKill   = 5000
	// childTimeout bounds how long the test waits for a child to make
	// progress or to finish: a hang guard, far above a normal run (a
	// child passes its first position in milliseconds, finishes in
	// seconds), so that a loaded machine never fails the test.
	childTimeout = hangGuard
	// dumpTimeout bounds the collection of a hung child's goroutines
	// and of PostgreSQL's sessions.
	dumpTimeout = 10 * time.Second
)

// TestMain lets a crash test start this binary as a projector process:
// with childEnv set, it runs runChild instead of the tests.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		if err := runChild(); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runChild opens the store and target named by the environment and runs
// the tests' counting projection on them, printing its checkpoint as it
// moves, until killed or until it reaches childUntilEnv.
func runChild() error {
	ctx := context.Background()
	batch, err := strconv.Atoi(os.Getenv(childBatchEnv))
	if err != nil {
		return err
	}
	var until uint64
	if s := os.Getenv(childUntilEnv); s != "" {
		if until, err = strconv.ParseUint(s, 10, 64); err != nil {
			return err
		}
	}
	var hold uint64
	if s := os.Getenv(childHoldEnv); s != "" {
		if hold, err = strconv.ParseUint(s, 10, 64); err != nil {
			return err
		}
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	switch os.Getenv(childEnv) {
	case "postgres":
		store, err := postgres.Open(ctx, teststores.PostgresDSN(), postgres.Options{Schema: os.Getenv(childStoreEnv), MaxConns: 4, Logger: quiet})
		if err != nil {
			return err
		}
		pool, err := pgxpool.New(ctx, teststores.PostgresDSN())
		if err != nil {
			return err
		}
		target, err := projection.NewPostgres(ctx, pool, os.Getenv(childTargetEnv))
		if err != nil {
			return err
		}
		if mode := os.Getenv(childRebuildEnv); mode != "" {
			// Blue/green needs the model in the projection's own schema.
			p := holdAt(pgVersioned("1", &effects{}), annals.Position(hold))
			if mode == "build" {
				return follow(store, target, p, batch, annals.Position(until))
			}
			return followRebuild(store, target, p, batch, mode == "finish")
		}
		return follow(store, target, holdAt(pgProjection("counts", os.Getenv(childTableEnv), nil), annals.Position(hold)), batch, annals.Position(until))
	case "pebble":
		store, err := embedded.Open(os.Getenv(childStoreEnv), embedded.Options{Logger: quiet})
		if err != nil {
			return err
		}
		target, err := projection.OpenPebble(os.Getenv(childTargetEnv))
		if err != nil {
			return err
		}
		follow := follow[projection.KV]
		if mode := os.Getenv(childRebuildEnv); mode != "" {
			follow = func(store annals.Store, target projection.Target[projection.KV], p projection.Projection[projection.KV], batch int, until annals.Position) error {
				return followRebuild(store, target, p, batch, mode == "finish")
			}
		}
		if err := follow(store, target, holdAt(kvProjection("counts", nil), annals.Position(hold)), batch, annals.Position(until)); err != nil {
			return err
		}
		// A clean end: the parent opens both directories next.
		if err := target.Close(); err != nil {
			return err
		}
		return store.Close()
	}
	return fmt.Errorf("unknown child %q", os.Getenv(childEnv))
}

// holdAt makes p's handlers wait for the end of the run, applying
// nothing, at the first event past hold (if not 0).
func holdAt[M any](p projection.Projection[M], hold annals.Position) projection.Projection[M] {
	if hold == 0 {
		return p
	}
	handle, batch := p.Handle, p.HandleBatch
	p.Handle = func(ctx context.Context, m M, e annals.Event) error {
		if e.Position > hold {
			<-ctx.Done()
			return ctx.Err()
		}
		return handle(ctx, m, e)
	}
	if batch != nil {
		p.HandleBatch = func(ctx context.Context, m M, events []annals.Event) error {
			if events[len(events)-1].Position > hold {
				<-ctx.Done()
				return ctx.Err()
			}
			return batch(ctx, m, events)
		}
	}
	return p
}

// follow runs p and prints each new checkpoint on stdout; it returns once
// the checkpoint reaches until (if not 0).
func follow[M any](store annals.Store, target projection.Target[M], p projection.Projection[M], batch int, until annals.Position) error {
	pr, err := projection.New(store, target, p, projection.Options{BatchEvents: batch})
	if err != nil {
		return err
	}
	return report(pr, nil, func(ctx context.Context) (annals.Position, bool, error) {
		pos := pr.Position()
		return pos, until > 0 && pos >= until, nil
	})
}

// followRebuild runs p until it has caught up with the log, then starts a
// blue/green rebuild and prints its position as it moves; with finish, it
// returns once the rebuild has switched.
func followRebuild[M any](store annals.Store, target projection.Target[M], p projection.Projection[M], batch int, finish bool) error {
	pr, err := projection.New(store, target, p, projection.Options{BatchEvents: batch})
	if err != nil {
		return err
	}
	var gen uint64
	var last annals.Position
	start := func(ctx context.Context) error {
		for {
			st, err := pr.Status(ctx)
			if err != nil {
				return err
			}
			if st.State == projection.Failed {
				return fmt.Errorf("failed before the rebuild: %s", st.LastError)
			}
			if st.State == projection.Running && st.Lag == 0 {
				gen = st.Generation
				err := pr.Rebuild(ctx)
				if !errors.Is(err, projection.ErrStandby) {
					return err
				}
				// Running before it first asked for the lease, which
				// the killed child's session still held: wait for it.
			}
			time.Sleep(childReportEvery)
		}
	}
	return report(pr, start, func(ctx context.Context) (annals.Position, bool, error) {
		st, err := pr.Status(ctx)
		switch {
		case err != nil:
			return 0, false, err
		case st.Generation != gen:
			// Switched: the new generation holds the whole log. Its
			// position is reported, since a fast rebuild can switch
			// between two polls of its progress, and a parent waiting
			// for the rebuild to near its end must see it has.
			return st.Position, finish, nil
		case st.Rebuild == nil:
			return 0, false, fmt.Errorf("the rebuild ended without a switch: %s", st.LastError)
		}
		last = st.Rebuild.Position
		return last, false, nil
	})
}

// report runs pr, then start (if any), then every childReportEvery asks
// step for a position, printing it on stdout when it changes, until step
// says done (Run is then stopped and its result returned) or fails.
func report[M any](pr *projection.Projector[M], start func(ctx context.Context) error, step func(ctx context.Context) (pos annals.Position, done bool, err error)) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- pr.Run(ctx) }()
	if start != nil {
		if err := start(ctx); err != nil {
			return err
		}
	}
	tick := time.NewTicker(childReportEvery)
	defer tick.Stop()
	var last annals.Position
	for {
		select {
		case err := <-errc:
			return fmt.Errorf("Run returned before the end: %v", err)
		case <-tick.C:
		}
		pos, done, err := step(ctx)
		if err != nil {
			return err
		}
		if pos != last {
			fmt.Println(pos)
			last = pos
		}
		if done {
			cancel()
			return <-errc
		}
	}
}

// child is a running child process and the last checkpoint it printed.
type child struct {
	cmd      *exec.Cmd
	stderr   bytes.Buffer
	reported atomic.Uint64
	read     chan struct{} // closed when its stdout ends
}

func startChild(t *testing.T, env ...string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(os.Args[0], "-test.run=^$"), read: make(chan struct{})}
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.Stderr = &c.stderr
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.read)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if pos, err := strconv.ParseUint(sc.Text(), 10, 64); err == nil {
				c.reported.Store(pos)
			}
		}
	}()
	return c
}

// waitPast waits until the child reports a checkpoint past pos: it has
// committed at least one transaction, so it is applying.
func (c *child) waitPast(t *testing.T, pos annals.Position) {
	t.Helper()
	deadline := time.Now().Add(childTimeout)
	for annals.Position(c.reported.Load()) <= pos {
		select {
		case <-c.read:
			c.cmd.Wait()
			t.Fatalf("child ended before passing position %d: %v\n%s", pos, c.cmd.ProcessState, c.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("child did not pass position %d in %v (last reported %d)\n%s", pos, childTimeout, c.reported.Load(), c.dump(t))
		}
		time.Sleep(time.Millisecond)
	}
}

// dump ends a hung child with SIGQUIT, so that the Go runtime writes its
// goroutines to stderr, and returns that stderr with what PostgreSQL's
// sessions of the test database were doing and waiting for: a hang is
// diagnosed from its first occurrence.
func (c *child) dump(t *testing.T) string {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-c.read:
	case <-time.After(dumpTimeout):
		c.cmd.Process.Signal(syscall.SIGKILL)
		<-c.read
	}
	c.cmd.Wait()
	return c.stderr.String() + "\n" + postgresActivity()
}

// postgresActivity lists the sessions of the test database other than
// its own, with the locks they wait for, for a hang's report.
func postgresActivity() string {
	ctx, cancel := context.WithTimeout(context.Background(), dumpTimeout)
	defer cancel()
	pool, err := pgxpool.New(ctx, teststores.PostgresDSN())
	if err != nil {
		return "pg_stat_activity: " + err.Error()
	}
	defer pool.Close()
	rows, err := pool.Query(ctx, `SELECT a.pid, a.state, coalesce(a.wait_event_type, ''), coalesce(a.wait_event, ''),
	coalesce((SELECT string_agg(l.locktype || ' ' || l.mode || CASE WHEN l.granted THEN ' held' ELSE ' WAITING' END || coalesce(' key ' || l.classid || ':' || l.objid, ''), ', ')
		FROM pg_locks l WHERE l.pid = a.pid AND l.locktype IN ('advisory', 'relation', 'transactionid') AND (NOT l.granted OR l.locktype = 'advisory')), ''),
	left(a.query, 200)
FROM pg_stat_activity a WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() ORDER BY a.pid`)
	if err != nil {
		return "pg_stat_activity: " + err.Error()
	}
	var b strings.Builder
	b.WriteString("PostgreSQL sessions (pid, state, wait, locks, query):\n")
	for rows.Next() {
		var pid int
		var state, waitType, wait, locks, query string
		if err := rows.Scan(&pid, &state, &waitType, &wait, &locks, &query); err != nil {
			return b.String() + err.Error()
		}
		fmt.Fprintf(&b, "%d %s %s/%s [%s] %q\n", pid, state, waitType, wait, locks, query)
	}
	if err := rows.Err(); err != nil {
		b.WriteString(err.Error())
	}
	return b.String()
}

// kill sends SIGKILL and reaps the child.
func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.read
	err := c.cmd.Wait()
	if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed by SIGKILL: %v\n%s", err, c.stderr.String())
	}
}

// finish waits for a child started with childUntilEnv to exit 0.
func (c *child) finish(t *testing.T) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		<-c.read
		done <- c.cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("final child: %v\n%s", err, c.stderr.String())
		}
	case <-time.After(childTimeout):
		t.Fatalf("final child did not finish in %v (last reported %d)\n%s", childTimeout, c.reported.Load(), c.dump(t))
	}
}

// appendBulk appends n events (a multiple of 100) in appends of 100, to
// streams of two categories.
func appendBulk(t *testing.T, store annals.Store, n int) {
	t.Helper()
	batch := make([]annals.EventData, 100)
	for j := range batch {
		batch[j] = annals.EventData{Type: "Added", Data: []byte(`{}`)}
	}
	for i := 0; i < n/len(batch); i++ {
		cat := "order"
		if i%3 == 0 {
			cat = "cart"
		}
		if _, err := store.Append(context.Background(), fmt.Sprintf("%s-%d", cat, i%23), annals.Any, batch...); err != nil {
			t.Fatal(err)
		}
	}
}

func killCount() int {
	if testing.Short() {
		return crashKillsShort
	}
	return crashKills
}

// TestCrashPostgres kills a projector process on the PostgreSQL target
// (and the PostgreSQL store) at random moments while it applies, with
// events still being appended, restarts it after each kill, and compares
// the read model with one built in a single clean run.
func TestCrashPostgres(t *testing.T) {
	storeSchema := teststores.Schema(t)
	store := teststores.Postgres(t, storeSchema)
	target, pool, table := pgTarget(t)
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	// The log is long enough for the kills to land while the child
	// catches up: each child is held within postgresEventsPerKill of
	// the last checkpoint; appends go on meanwhile.
	appendBulk(t, store, postgresEventsPerKill*killCount())

	// An appender keeps the log growing, so that the child applies
	// events appended while it runs as well.
	stop := make(chan struct{})
	appended := make(chan error, 1)
	go func() {
		for i := 1; ; i++ {
			select {
			case <-stop:
				appended <- nil
				return
			default:
			}
			if err := appendSome(store, 20, i); err != nil {
				appended <- err
				return
			}
		}
	}()
	env := []string{childEnv + "=postgres", childStoreEnv + "=" + storeSchema, childTargetEnv + "=" + target.Schema(), childTableEnv + "=" + table}
	start := time.Now()
	var checkpoint annals.Position
	kills, midStream := killCount(), 0
	for i := range kills {
		// Held within postgresEventsPerKill of the last checkpoint: the
		// kills stay inside the initial log, before the head.
		hold := checkpoint + holdMin + annals.Position(rng.Uint64N(postgresEventsPerKill-holdMin))
		c := startChild(t, append(env, fmt.Sprintf("%s=%d", childBatchEnv, 1+rng.IntN(32)), fmt.Sprintf("%s=%d", childHoldEnv, hold))...)
		c.waitPast(t, checkpoint)
		time.Sleep(time.Duration(rng.Int64N(int64(maxKillDelay))))
		c.kill(t)
		cp, err := target.Load(context.Background(), "counts")
		if err != nil {
			t.Fatal(err)
		}
		h := head(t, store)
		if cp.Position < checkpoint {
			t.Fatalf("kill %d: the checkpoint went back from %d to %d", i, checkpoint, cp.Position)
		}
		if cp.Position < h {
			midStream++
		}
		t.Logf("kill %d: checkpoint %d, head %d", i, cp.Position, h)
		checkpoint = cp.Position
	}
	close(stop)
	if err := <-appended; err != nil {
		t.Fatal(err)
	}
	if midStream != kills {
		t.Fatalf("%d of %d kills landed before the head; want all", midStream, kills)
	}
	h := head(t, store)
	startChild(t, append(env, childBatchEnv+"=64", fmt.Sprintf("%s=%d", childUntilEnv, h))...).finish(t)
	t.Logf("%d kills, %d events, %v", kills, h, time.Since(start).Round(time.Millisecond))

	clean, cleanPool, cleanTable := pgTarget(t)
	runToEnd(t, store, clean, pgProjection("counts", cleanTable, nil))
	want := dumpPostgres(t, cleanPool, cleanTable)
	sameModel(t, "clean run", want, fold(t, store, nil))
	sameModel(t, "after the kills", dumpPostgres(t, pool, table), want)
	if cp, err := target.Load(context.Background(), "counts"); err != nil || cp.Position != h {
		t.Fatalf("final checkpoint %+v (%v), want position %d", cp, err, h)
	}
}

// TestCrashPebble is TestCrashPostgres on the pebble target with the
// embedded store. Both directories are exclusive to one process, so the
// test opens them only while no child runs, and the log does not grow
// during the kills: it is made long enough to outlast them.
func TestCrashPebble(t *testing.T) {
	storeDir, targetDir := filepath.Join(t.TempDir(), "store"), filepath.Join(t.TempDir(), "target")
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	store, err := embedded.Open(storeDir, embedded.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	kills := killCount()
	events := uint64(pebbleEventsPerKill * (kills + 1))
	appendBulk(t, store, int(events))
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	env := []string{childEnv + "=pebble", childStoreEnv + "=" + storeDir, childTargetEnv + "=" + targetDir}
	checkpointOf := func() annals.Position {
		target, err := projection.OpenPebble(targetDir)
		if err != nil {
			t.Fatal(err)
		}
		defer target.Close()
		cp, err := target.Load(context.Background(), "counts")
		if err != nil {
			t.Fatal(err)
		}
		return cp.Position
	}
	start := time.Now()
	var checkpoint annals.Position
	for i := range kills {
		// Held within pebbleEventsPerKill of the last checkpoint: the
		// kills stay before the head.
		hold := checkpoint + holdMin + annals.Position(rng.Uint64N(pebbleEventsPerKill-holdMin))
		c := startChild(t, append(env, fmt.Sprintf("%s=%d", childBatchEnv, 1+rng.IntN(32)), fmt.Sprintf("%s=%d", childHoldEnv, hold))...)
		c.waitPast(t, checkpoint)
		if i == 0 {
			// The child holds the target: this process cannot open it.
			p, err := projection.OpenPebble(targetDir)
			if err == nil {
				p.Close()
				c.kill(t)
				t.Fatal("OpenPebble of a directory another process has open succeeded")
			}
			if !strings.Contains(err.Error(), "in use by another process") {
				c.kill(t)
				t.Fatalf("OpenPebble of a directory another process has open: %v; want it to say so", err)
			}
		}
		time.Sleep(time.Duration(rng.Int64N(int64(maxKillDelay))))
		c.kill(t)
		cp := checkpointOf()
		if cp < checkpoint {
			t.Fatalf("kill %d: the checkpoint went back from %d to %d", i, checkpoint, cp)
		}
		if cp >= annals.Position(events) {
			t.Fatalf("kill %d: the child reached the head (%d) before it was killed: lengthen the log", i, cp)
		}
		t.Logf("kill %d: checkpoint %d", i, cp)
		checkpoint = cp
	}
	startChild(t, append(env, childBatchEnv+"=256", fmt.Sprintf("%s=%d", childUntilEnv, events))...).finish(t)
	t.Logf("%d kills, %d events, %v", kills, events, time.Since(start).Round(time.Millisecond))

	store, err = embedded.Open(storeDir, embedded.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	target, err := projection.OpenPebble(targetDir)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	clean := projection.NewMemory()
	runToEnd(t, store, clean, kvProjection("counts", nil))
	want := dumpMemory(clean, "counts")
	sameModel(t, "clean run", want, fold(t, store, nil))
	sameModel(t, "after the kills", dumpPebble(t, target, "counts"), want)
	if cp, err := target.Load(context.Background(), "counts"); err != nil || cp.Position != annals.Position(events) {
		t.Fatalf("final checkpoint %+v (%v), want position %d", cp, err, events)
	}
}

// killRebuilds starts a rebuilding child killCount times and kills it
// with SIGKILL mid-rebuild (every fourth time near its end, around the
// switch); after each kill, check verifies the active generation and
// returns it. Most kills must land before the switch.
func killRebuilds(t *testing.T, env []string, events uint64, rng *rand.Rand, check func(what string) uint64) {
	t.Helper()
	kills, midRebuild := killCount(), 0
	for i := range kills {
		env := append(env, childRebuildEnv+"=kill", fmt.Sprintf("%s=%d", childBatchEnv, 1+rng.IntN(64)))
		if i%4 != 3 {
			// Held before the end: this kill lands mid-rebuild.
			env = append(env, fmt.Sprintf("%s=%d", childHoldEnv, holdMin+rng.Uint64N(events*19/20-holdMin)))
		}
		c := startChild(t, env...)
		if i%4 == 3 {
			c.waitPast(t, annals.Position(events*19/20))
		} else {
			c.waitPast(t, 0)
		}
		time.Sleep(time.Duration(rng.Int64N(int64(maxKillDelay))))
		c.kill(t)
		rebuilt := c.reported.Load()
		if rebuilt < events {
			midRebuild++
		}
		t.Logf("kill %d: rebuild at %d of %d, generation %d", i, rebuilt, events, check(fmt.Sprintf("kill %d", i)))
	}
	if midRebuild < kills/2 {
		t.Fatalf("only %d of %d kills landed mid-rebuild", midRebuild, kills)
	}
}

// TestCrashRebuildPebble kills a projector process with SIGKILL in the
// middle of blue/green rebuilds (every fourth near its end, around the
// switch): after each kill, the active generation is whole (the read
// model equals the fold of the log); a last child rebuilds to the end,
// dropping what the killed rebuilds left.
func TestCrashRebuildPebble(t *testing.T) {
	storeDir, targetDir := filepath.Join(t.TempDir(), "store"), filepath.Join(t.TempDir(), "target")
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := embedded.Open(storeDir, embedded.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	events := uint64(pebbleEventsPerKill * 4)
	appendBulk(t, store, int(events))
	want := fold(t, store, nil)
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	env := []string{childEnv + "=pebble", childStoreEnv + "=" + storeDir, childTargetEnv + "=" + targetDir}
	startChild(t, append(env, childBatchEnv+"=256", fmt.Sprintf("%s=%d", childUntilEnv, events))...).finish(t)

	// check opens the target: its active generation must be whole.
	check := func(what string) uint64 {
		t.Helper()
		target, err := projection.OpenPebble(targetDir)
		if err != nil {
			t.Fatal(err)
		}
		defer target.Close()
		gen, err := target.Generation(context.Background(), "counts")
		if err != nil {
			t.Fatal(err)
		}
		sameModel(t, what, dumpPebble(t, target, "counts"), want)
		return gen
	}
	killRebuilds(t, env, events, rng, check)
	before := check("before the last rebuild")
	startChild(t, append(env, childRebuildEnv+"=finish", childBatchEnv+"=256")...).finish(t)
	if gen := check("after the last rebuild"); gen != before+1 {
		t.Fatalf("generation %d after the last rebuild, want %d", gen, before+1)
	}
	// Nothing is left of the other generations.
	target, err := projection.OpenPebble(targetDir)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	for g := range before + 3 {
		if g == before+1 {
			continue
		}
		slot := "counts"
		if g > 0 {
			slot = fmt.Sprintf("counts\x01%d", g)
		}
		if cp, err := target.Load(context.Background(), slot); err != nil || cp != (projection.Checkpoint{}) {
			t.Errorf("generation %d left a checkpoint %+v (%v)", g, cp, err)
		}
	}
}

// TestCrashRebuildPostgres is TestCrashRebuildPebble on PostgreSQL (store
// and target): after each SIGKILL mid-rebuild the active generation,
// read through Query, is whole; the last rebuild leaves one model schema.
func TestCrashRebuildPostgres(t *testing.T) {
	storeSchema := teststores.Schema(t)
	store := teststores.Postgres(t, storeSchema)
	target, pool, _ := pgTarget(t)
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	events := uint64(postgresEventsPerKill * 10)
	appendBulk(t, store, int(events))
	want := fold(t, store, nil)
	env := []string{childEnv + "=postgres", childStoreEnv + "=" + storeSchema, childTargetEnv + "=" + target.Schema()}
	startChild(t, append(env, childRebuildEnv+"=build", childBatchEnv+"=256", fmt.Sprintf("%s=%d", childUntilEnv, events))...).finish(t)

	check := func(what string) uint64 {
		t.Helper()
		version, _, model, err := pgQuery(target)
		if err != nil || version != "1" {
			t.Fatalf("%s: version %q, %v", what, version, err)
		}
		sameModel(t, what, model, want)
		gen, err := target.Generation(context.Background(), "counts")
		if err != nil {
			t.Fatal(err)
		}
		return gen
	}
	killRebuilds(t, env, events, rng, check)
	before := check("before the last rebuild")
	startChild(t, append(env, childRebuildEnv+"=finish", childBatchEnv+"=256")...).finish(t)
	if gen := check("after the last rebuild"); gen != before+1 {
		t.Fatalf("generation %d after the last rebuild, want %d", gen, before+1)
	}
	var schemas int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM `+target.Schema()+`.projection_schemas`).Scan(&schemas); err != nil {
		t.Fatal(err)
	}
	if schemas != 1 {
		t.Errorf("%d model schemas recorded after the last rebuild, want 1", schemas)
	}
}
