package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/core"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The write path. Invariants:
//
//  1. Every write transaction, of every Store on the schema, first locks the
//     head row of $all and holds the lock until its COMMIT. So transactions
//     that write events are serialised, positions are assigned gapless in
//     commit order, and stream states read after taking the lock are the
//     latest: the expectation checks (core.PlanOp, in Go) see every write
//     before them.
//  2. PostgreSQL makes a commit visible before it releases the commit's
//     locks, so the next holder of the head lock, and every snapshot taken
//     after that holder's commit, sees the earlier commit too: positions
//     become visible in position order, and a reader that met position P
//     will never meet a position before P that it has not seen.
//  3. One transaction per group: either every accepted append of the group
//     is committed or none is. An append that fails its expectation fails
//     alone, decided in Go against the heads read in the transaction plus
//     the writes planned before it in the group; no savepoints.
//  4. No answer leaves before the state it was decided on is committed
//     (with synchronous_commit on, durable): a success, a conflict or a
//     retry result never reveals a write a crash could undo.
//  5. A group that fails before COMMIT wrote nothing and is planned afresh
//     on the next attempt. A COMMIT whose answer is lost is resolved by
//     looking up the group's first event id; if that cannot be done, its
//     appends fail with annals.ErrOutcomeUnknown, never with a false "not
//     written".
//  6. Two groups are in flight at most: while one group's rows and COMMIT
//     travel, the next group's first round trip is sent on a second
//     connection and waits in the database for the head lock. It reads the
//     stream heads only once the earlier transaction has ended, committed
//     or rolled back (invariant 1), so its plan is as sound as if it had
//     waited in Go. If the earlier group rolled back, the later one is
//     rolled back too and both run again, the earlier first. The groups'
//     COMMITs finish in lock order, so the watermark advances in order.
//
// Built with -tags invariants, the writer asserts 4 (answer: a result in
// what a group wrote leaves only once the watermark covers it) and 6
// (openAndPlan: at most two group transactions open; committed: each
// commit starts past the one before). Invariant 1's gapless positions are
// checked in every build (groupView.write); 2, 3 and 5 are the database's
// to keep, which the tests show (order_test.go, group_test.go,
// outage_test.go).

// Append implements annals.Store: it writes events to stream if the stream
// is at expected, all or none, and returns once the transaction of the
// group commit they joined has committed (synchronous_commit on: durable).
// An event whose id is already recorded in the stream makes the call an
// idempotent retry, answered with the original result. If the connection
// is lost during COMMIT and the outcome cannot be learnt, or ctx ends once
// the append is queued, it fails with annals.ErrOutcomeUnknown (retry with
// the same event ids); if nothing was written, with ErrNotWritten.
func (s *Store) Append(ctx context.Context, stream string, expected annals.ExpectedRevision, events ...annals.EventData) (annals.AppendResult, error) {
	return s.writes.Append(ctx, stream, expected, events...)
}

// AppendMulti implements annals.Store: the records of m, to several
// streams, in one atomic write decided as Append's are (see
// annals.MultiAppend), with the same durability and errors.
func (s *Store) AppendMulti(ctx context.Context, m annals.MultiAppend) (annals.MultiAppendResult, error) {
	return s.writes.AppendMulti(ctx, m)
}

// Ready implements annals.ReadyChecker: an append of no events to
// annals.ReadinessStream, which the writer decides and writes nothing for.
func (s *Store) Ready(ctx context.Context) error {
	_, err := s.writes.Append(ctx, annals.ReadinessStream, annals.Any)
	return err
}

// SetStreamMetadata implements annals.Store: it appends md to stream's
// metastream if the metastream is at expected, committed as Append is.
func (s *Store) SetStreamMetadata(ctx context.Context, stream string, expected annals.ExpectedRevision, md annals.StreamMetadata) (annals.AppendResult, error) {
	return s.writes.SetStreamMetadata(ctx, stream, expected, md)
}

// Delete implements annals.Store: a soft delete, committed when it
// returns. The stream's events stay in $all; a later append continues its
// revisions.
func (s *Store) Delete(ctx context.Context, stream string, expected annals.ExpectedRevision) (annals.DeleteResult, error) {
	return s.writes.Delete(ctx, stream, expected)
}

// Tombstone implements annals.Store: a hard delete, committed when it
// returns; the stream can never be written again.
func (s *Store) Tombstone(ctx context.Context, stream string, expected annals.ExpectedRevision) (annals.DeleteResult, error) {
	return s.writes.Tombstone(ctx, stream, expected)
}

// The writer's verbs, by round trip: openAndPlan sends BEGIN, takes the
// head lock and plans (round trip 1); commitTxn sends the rows and COMMIT
// (round trip 2), the one place a group commits. commitOnce is the two in
// a row; commitRetrying repeats commitOnce until the group has an outcome;
// commitAsync runs commitTxn beside the writer (invariant 6) and
// awaitCommit collects it. resolveLostCommit learns the outcome of a
// COMMIT whose answer was lost.

type writer struct {
	s *Store
	// openTxns counts the group transactions open (invariant 6); kept
	// only with -tags invariants.
	openTxns atomic.Int32
	// lastCommitted is the last position of the writer's latest commit
	// (invariant 6: commits finish in lock order); only with -tags
	// invariants.
	lastCommitted atomic.Uint64
}

func (w *writer) run() {
	q := w.s.queue
	var prev *inFlight // the group whose COMMIT is on its way, if any
	for {
		var first *core.Request
		var prevDone <-chan struct{}
		if prev != nil {
			prevDone = prev.done
		}
		select {
		case first = <-q.Requests():
		case <-prevDone:
			w.awaitCommit(prev)
			prev = nil
			continue
		case <-q.Quit():
			w.awaitCommit(prev)
			q.Stopped()
			return
		}
		reqs := q.Collect(first)
		// Round trip 1 of this group while the previous group commits: its
		// head-lock request waits in the database and is granted the
		// moment that COMMIT releases the lock (invariant 6).
		t, err := w.openAndPlan(reqs)
		if prev != nil {
			<-prev.done
			if prev.retry {
				// The previous group rolled back: it goes first, and this
				// one is planned again after it.
				if t != nil {
					t.release()
				}
				w.awaitCommit(prev)
				prev = nil
				w.answer(reqs, w.commitRetrying(reqs)...)
				continue
			}
			prev = nil
		}
		switch {
		case err != nil:
			// Nothing written: the synchronous path retries.
			w.answer(reqs, w.commitRetrying(reqs)...)
		case t == nil:
			w.answer(reqs) // nothing to write: every request has its answer
		default:
			prev = w.commitAsync(t)
		}
	}
}

// inFlight is a group between its last round trip and its answers.
type inFlight struct {
	reqs []*core.Request
	done chan struct{}
	// retry: the group rolled back and its requests have no answer yet.
	retry bool
}

// commitAsync sends t's rows and COMMIT, and answers its requests, in a
// goroutine of its own; a group that rolled back is left to the writer.
func (w *writer) commitAsync(t *openTxn) *inFlight {
	f := &inFlight{reqs: t.reqs, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		ws, err := w.commitTxn(t)
		var ce *commitError
		switch {
		case err == nil:
		case errors.As(err, &ce) && !w.resolveLostCommit(t.reqs, ws, ce):
		default:
			f.retry = true
			return
		}
		w.answer(t.reqs, ws)
	}()
	return f
}

// awaitCommit waits for f's COMMIT and, if the group rolled back, commits
// it again (with the retries of commitRetrying) and answers it.
func (w *writer) awaitCommit(f *inFlight) {
	if f == nil {
		return
	}
	<-f.done
	if f.retry {
		w.answer(f.reqs, w.commitRetrying(f.reqs)...)
	}
}

// answer answers reqs, whose transactions wrote written (nil: nothing).
// Invariant 4: a result that points into what they wrote leaves only once
// it is committed, which the watermark shows.
func (w *writer) answer(reqs []*core.Request, written ...*writeSet) {
	if core.Invariants {
		wm := w.s.wm.Load()
		for _, r := range reqs {
			for _, ws := range written {
				if ws == nil {
					continue
				}
				pos := r.Result.LastPosition
				core.Assert(r.Err != nil || pos < ws.firstPos || pos > ws.lastPos || pos <= wm,
					"postgres: answering with position %d, written in a group of %d..%d, while the watermark is at %d (invariant 4)", pos, ws.firstPos, ws.lastPos, wm)
			}
		}
	}
	core.AnswerAll(reqs)
}

// commitRetrying runs one group until each of its requests has its
// answer (not yet given), retrying a transaction that failed before
// COMMIT. It returns what its committed transactions wrote.
func (w *writer) commitRetrying(reqs []*core.Request) []*writeSet {
	deadline := time.Now().Add(w.s.opts.RetryWindow)
	backoff := 50 * time.Millisecond
	for {
		ws, err := w.commitOnce(reqs)
		if err == nil {
			return []*writeSet{ws} // nil if the group had nothing to write
		}
		var ce *commitError
		if errors.As(err, &ce) {
			if retry := w.resolveLostCommit(reqs, ws, ce); !retry {
				return []*writeSet{ws}
			}
			if time.Now().After(deadline) {
				failAll(reqs, fmt.Errorf("%w (rolled back at COMMIT): %w", ErrNotWritten, hideOwnDeadline(err)))
				return nil
			}
			// Rolled back: nothing was written, so the group may run
			// again, planned afresh.
			w.s.opts.Logger.Warn("postgres: the connection was lost before COMMIT took effect; retrying", "err", err, "requests", len(reqs))
			continue
		}
		if isUniqueViolation(err) && len(reqs) > 1 {
			// The database refused what the planner allowed (invariant 2
			// of schema.go): one request is wrong; give each its own
			// transaction so only that one fails.
			w.s.opts.Logger.Error("postgres: a group commit broke a unique key; committing its appends one by one", "err", err)
			var written []*writeSet
			for _, r := range reqs {
				written = append(written, w.commitRetrying([]*core.Request{r})...)
			}
			return written
		}
		if !retryable(err) || time.Now().Add(backoff).After(deadline) {
			failAll(reqs, fmt.Errorf("%w: %w", ErrNotWritten, hideOwnDeadline(err)))
			return nil
		}
		w.s.opts.Logger.Warn("postgres: group commit failed before COMMIT; retrying", "err", err, "requests", len(reqs))
		time.Sleep(backoff)
		backoff = min(2*backoff, time.Second)
	}
}

// hideOwnDeadline keeps the group transaction's own deadline (it follows
// no caller's context, and gives up after RetryWindow) out of an append's
// error chain: context.DeadlineExceeded there reads as the caller's
// deadline, which a server answers as a client timeout.
func hideOwnDeadline(err error) error {
	if !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("no answer from the database within the retry window: %v", err)
}

// failAll gives every request of a group err as its answer, to be sent.
func failAll(reqs []*core.Request, err error) {
	for _, r := range reqs {
		r.Result, r.Err = annals.AppendResult{}, err
	}
}

// commitError is a COMMIT whose outcome is unknown.
type commitError struct{ err error }

func (e *commitError) Error() string { return "commit: " + e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

// resolveLostCommit finds out whether a group whose COMMIT failed was
// committed, by looking up its first event id on another connection. The
// old backend's transaction may still be finishing, so an answer of
// "absent" is trusted only once that backend is gone; until then, and if
// the database stays unreachable, the appends fail with
// annals.ErrOutcomeUnknown.
// If the group was committed its planned answers stand; if it was rolled
// back, resolveLostCommit reports that the group may be retried.
func (w *writer) resolveLostCommit(reqs []*core.Request, ws *writeSet, ce *commitError) (retry bool) {
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(w.s.opts.RetryWindow))
	defer cancel()
	var (
		committed bool
		err       error
	)
	for {
		err = func() error {
			conn, err := w.s.pool.Acquire(ctx)
			if err != nil {
				return err
			}
			defer conn.Release()
			var gone bool
			if err := conn.QueryRow(ctx, `SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)`, ws.backendPID).Scan(&gone); err != nil {
				return err
			}
			if err := conn.QueryRow(ctx, w.s.q.hasID, int64(ws.firstPos), pgtype.UUID{Bytes: ws.firstID, Valid: true}).Scan(&committed); err != nil {
				return err
			}
			if !committed && !gone {
				return errors.New("the committing backend is still running")
			}
			return nil
		}()
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	switch {
	case err != nil:
		w.s.opts.Logger.Error("postgres: commit outcome unknown", "commit-err", ce.err, "err", err)
		failAll(reqs, annals.OutcomeUnknown(fmt.Errorf("the connection was lost during COMMIT: %w", ce.err)))
	case committed:
		w.s.opts.Logger.Warn("postgres: the connection was lost during COMMIT, which succeeded", "err", ce.err)
		w.committed(ws)
	default:
		return true
	}
	return false
}

// writeSet is what a group transaction writes: the positions, and what
// resolveLostCommit needs to learn whether it committed.
type writeSet struct {
	// The group's first event: its id alone could be recorded in another
	// stream (ids are scoped to their stream), so resolveLostCommit looks
	// for both.
	firstPos   annals.Position
	firstID    uuid.UUID
	lastPos    annals.Position
	backendPID uint32
}

// commitOnce runs one group transaction, both round trips. On success
// every request has its answer. A *commitError means COMMIT was sent and
// its outcome is unknown; any other error means nothing was written.
func (w *writer) commitOnce(reqs []*core.Request) (*writeSet, error) {
	t, err := w.openAndPlan(reqs)
	if err != nil || t == nil {
		return nil, err
	}
	return w.commitTxn(t)
}

// openTxn is a group between its two round trips: planned, in an open
// transaction that holds the head lock, on a connection of its own.
type openTxn struct {
	w      *writer
	reqs   []*core.Request
	ctx    context.Context
	cancel context.CancelFunc
	conn   *pgxpool.Conn
	v      *groupView
	head   annals.Position
	now    time.Time
	ws     *writeSet
}

// release rolls back a transaction left open and returns the connection;
// if the rollback fails too, the pool drops the connection (it never
// reuses one that is not idle).
func (t *openTxn) release() {
	if c := t.conn.Conn(); c.PgConn().TxStatus() != 'I' && !c.IsClosed() {
		c.Exec(t.ctx, "ROLLBACK")
	}
	t.conn.Release()
	t.cancel()
	if core.Invariants {
		t.w.openTxns.Add(-1)
	}
}

// openAndPlan runs a group's first round trip, which opens its
// transaction and takes the head lock, and plans its appends. It returns
// nil and no error when no request has anything to write: then every
// request has its answer and the transaction is rolled back.
func (w *writer) openAndPlan(reqs []*core.Request) (*openTxn, error) {
	s := w.s
	// The group's transaction does not follow any caller's context: once
	// planned, a request is written with its group or not at all.
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.RetryWindow)
	conn, err := s.writePool.Acquire(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	t := &openTxn{w: w, reqs: reqs, ctx: ctx, cancel: cancel, conn: conn}
	if core.Invariants {
		n := w.openTxns.Add(1)
		core.Assert(n <= 2, "postgres: %d group transactions open (invariant 6)", n)
	}
	keep := false
	defer func() {
		if !keep {
			t.release()
		}
	}()
	c := conn.Conn()
	v := &groupView{ctx: ctx, conn: c, q: &s.q, states: map[string]core.StreamState{}}
	// Round trip 1: open the transaction, lock the head of $all, read the
	// heads and ids the group needs.
	head, lastTime, err := v.begin(reqs)
	if err != nil {
		return nil, err
	}
	// Recorded times: microseconds (PostgreSQL's resolution), never before
	// the last event's, whichever process wrote it.
	now := s.opts.Now().UTC().Truncate(time.Microsecond)
	if now.Before(lastTime) {
		now = lastTime.UTC()
	}
	next := head + 1
	for _, r := range reqs {
		r.Result, r.Err = annals.AppendResult{}, nil
		if err := r.Ctx.Err(); err != nil {
			// Not planned yet, so not written: the caller gave up.
			r.Err = err
			continue
		}
		pl := core.PlanOp(v, r.Op, next, now)
		if v.err != nil {
			return nil, v.err
		}
		r.Result, r.Err = pl.Result, pl.Err
		if pl.Err != nil || pl.Duplicate || len(pl.Events) == 0 {
			continue
		}
		for i := range pl.Events {
			v.add(&pl.Events[i])
		}
		for _, u := range pl.Updates {
			v.dirty[u.Stream] = struct{}{}
			v.states[u.Stream] = u.State
		}
		next += annals.Position(len(pl.Events))
	}
	if len(v.events) == 0 {
		// Only conflicts, retries and checks: they were decided on
		// committed state, so they may be answered now. Rollback releases
		// the head lock.
		_, err := c.Exec(ctx, "ROLLBACK")
		return nil, err
	}
	t.v, t.head, t.now = v, head, now
	t.ws = &writeSet{firstPos: v.events[0].Position, firstID: v.events[0].ID, lastPos: next - 1, backendPID: c.PgConn().PID()}
	keep = true
	return t, nil
}

// commitTxn runs a planned group's second round trip: the rows and
// COMMIT, where the group becomes durable. On success every request has
// its answer. A *commitError means COMMIT was sent and its outcome is
// unknown; any other error means nothing was written.
func (w *writer) commitTxn(t *openTxn) (*writeSet, error) {
	defer t.release()
	s, c, ws := w.s, t.conn.Conn(), t.ws
	// A test hook holding the transaction open needs COMMIT on its own.
	hook := s.opts.beforeCommit
	start := time.Now()
	err := t.v.write(t.head, ws.lastPos, t.now, hook == nil)
	if err == nil && hook != nil {
		hook()
		_, err = c.Exec(t.ctx, "COMMIT")
	}
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Severity == "ERROR" {
			// The server answered: a statement failed, and COMMIT, if it
			// was reached, rolled the transaction back. (A FATAL answer
			// ends the connection, maybe after the commit: unknown.)
			return nil, err
		}
		return ws, &commitError{err}
	}
	if st := c.PgConn().TxStatus(); st != 'I' {
		return nil, fmt.Errorf("postgres: after COMMIT the connection is in transaction state %q", st)
	}
	w.committed(ws)
	if fn := s.opts.OnGroupCommit; fn != nil {
		c := annals.GroupCommit{Writes: len(t.reqs), Bytes: core.GroupBytes(t.reqs), Sync: time.Since(start)}
		if ws.firstPos > 0 {
			c.Events = int(ws.lastPos - ws.firstPos + 1)
		}
		fn(c)
	}
	return ws, nil
}

// committed publishes a group the writer committed: the watermark, and a
// notification for other Stores.
func (w *writer) committed(ws *writeSet) {
	if core.Invariants {
		last := annals.Position(w.lastCommitted.Swap(uint64(ws.lastPos)))
		core.Assert(ws.firstPos > last, "postgres: a commit from position %d after one up to %d (invariant 6)", ws.firstPos, last)
	}
	w.s.advance(ws.lastPos)
	w.signalNotify()
}

// signalNotify asks the notifier to tell other Stores; it never blocks.
func (w *writer) signalNotify() {
	select {
	case w.s.notify <- struct{}{}:
	default:
	}
}

// groupView is the planner's view during a group: the writes planned earlier
// in the group over the database as the transaction sees it (with the head
// locked, the latest committed state).
type groupView struct {
	ctx    context.Context
	conn   *pgx.Conn // in the group's transaction
	q      *queries
	states map[string]core.StreamState // read from the database or planned
	dirty  map[string]struct{}         // streams whose row the group writes
	ids    map[streamID]core.Recorded  // recorded ids: looked up, or planned
	looked map[streamID]struct{}       // ids already looked up
	events []*annals.Event             // planned, in position order
	err    error                       // the first database error
	// first holds, by firstKey, the first committed event after a
	// position that one query item matches (0: none), read with the
	// group's other reads in begin, so that conditions cost no round
	// trip of their own while the head is locked.
	first map[string]annals.Position
	head  annals.Position // of $all when the group began
}

// begin opens the group's transaction, locks the head of $all, and reads
// the heads of the streams the group writes and where its caller-given ids
// are recorded: one round trip. It returns the head's position and
// recorded time.
func (v *groupView) begin(reqs []*core.Request) (head annals.Position, lastTime time.Time, err error) {
	v.dirty = map[string]struct{}{}
	v.ids = map[streamID]core.Recorded{}
	v.looked = map[streamID]struct{}{}
	k := v.groupKeys(reqs)
	for _, n := range k.names {
		v.states[n] = core.StreamState{} // absent unless a row says otherwise
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	// The lock first: the reads after it see every commit before it.
	b.Queue(v.q.lockHead)
	b.Queue(v.q.streamStates, k.names)
	if len(k.ids) > 0 {
		b.Queue(v.q.lookupIDs, k.idStreams, k.ids)
	}
	firstKeys := v.queueConditions(b, reqs)
	br := v.conn.SendBatch(v.ctx, b)
	defer func() {
		if cerr := br.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err := br.Exec(); err != nil {
		return 0, time.Time{}, err
	}
	var h int64
	if err := br.QueryRow().Scan(&h, &lastTime); err != nil {
		return 0, time.Time{}, err
	}
	if err := v.readStates(br); err != nil {
		return 0, time.Time{}, err
	}
	if len(k.ids) > 0 {
		if err := v.readIDs(br); err != nil {
			return 0, time.Time{}, err
		}
	}
	if err := v.readConditions(br, firstKeys); err != nil {
		return 0, time.Time{}, err
	}
	v.head = annals.Position(h)
	return v.head, lastTime, nil
}

// keys are what a group reads before it plans: the streams it writes or
// checks, and the caller-given ids it writes (each with its stream).
type keys struct {
	names, idStreams []string
	ids              []pgtype.UUID
}

func (v *groupView) groupKeys(reqs []*core.Request) keys {
	var k keys
	seen := map[string]struct{}{}
	name := func(stream string) {
		if _, ok := seen[stream]; !ok {
			seen[stream] = struct{}{}
			k.names = append(k.names, stream)
		}
	}
	id := func(stream string, id uuid.UUID) {
		if id == (uuid.UUID{}) {
			return
		}
		if key := (streamID{stream, id}); !hasKey(v.looked, key) {
			v.looked[key] = struct{}{}
			k.idStreams = append(k.idStreams, stream)
			k.ids = append(k.ids, pgtype.UUID{Bytes: id, Valid: true})
		}
	}
	for _, r := range reqs {
		if m := r.Op.Multi; m != nil {
			for i := range m.Records {
				name(m.Records[i].Stream)
				id(m.Records[i].Stream, m.Records[i].Event.ID)
			}
			for i := range m.Checks {
				name(m.Checks[i].Stream)
			}
			continue
		}
		name(r.Op.Stream)
		for i := range r.Op.Events {
			id(r.Op.Stream, r.Op.Events[i].ID)
		}
	}
	return k
}

// readStates reads the streams' rows begin asked for.
func (v *groupView) readStates(br pgx.BatchResults) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var st streamRow
		if err := rows.Scan(&name, &st.hasEvents, &st.lastRevision, &st.lastPosition, &st.softDeleted, &st.tombstoned); err != nil {
			return err
		}
		v.states[name] = st.state()
	}
	return rows.Err()
}

// readIDs reads where the ids begin looked up are recorded.
func (v *groupView) readIDs(br pgx.BatchResults) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id pgtype.UUID
		var rec core.Recorded
		var rev, pos int64
		if err := rows.Scan(&id, &rec.Stream, &rev, &pos); err != nil {
			return err
		}
		rec.Found, rec.Revision, rec.Position = true, annals.Revision(rev), annals.Position(pos)
		v.ids[streamID{rec.Stream, uuid.UUID(id.Bytes)}] = rec
	}
	return rows.Err()
}

func (v *groupView) add(e *annals.Event) {
	v.events = append(v.events, e)
	v.ids[streamID{e.Stream, e.ID}] = core.Recorded{Found: true, Stream: e.Stream, Revision: e.Revision, Position: e.Position}
}

func (v *groupView) fail(err error) error {
	if v.err == nil {
		v.err = err
	}
	return err
}

func (v *groupView) State(stream string) (core.StreamState, error) {
	if st, ok := v.states[stream]; ok {
		return st, nil
	}
	st, err := readState(v.ctx, v.conn, v.q, stream)
	if err != nil {
		return st, v.fail(err)
	}
	v.states[stream] = st
	return st, nil
}

func (v *groupView) Lookup(stream string, id uuid.UUID) (core.Recorded, error) {
	k := streamID{stream, id}
	if rec, ok := v.ids[k]; ok {
		return rec, nil
	}
	if hasKey(v.looked, k) {
		return core.Recorded{}, nil
	}
	var rec core.Recorded
	var rev, pos int64
	err := v.conn.QueryRow(v.ctx, v.q.lookupIDs, []string{stream}, []pgtype.UUID{{Bytes: id, Valid: true}}).Scan(new(pgtype.UUID), &rec.Stream, &rev, &pos)
	v.looked[k] = struct{}{}
	if errors.Is(err, pgx.ErrNoRows) {
		return core.Recorded{}, nil
	}
	if err != nil {
		return rec, v.fail(err)
	}
	rec.Found, rec.Revision, rec.Position = true, annals.Revision(rev), annals.Position(pos)
	v.ids[k] = rec
	return rec, nil
}

// streamID keys the ids a group looks up: ids are scoped to their stream.
type streamID struct {
	stream string
	id     uuid.UUID
}

func hasKey[K comparable, V any](m map[K]V, k K) bool {
	_, ok := m[k]
	return ok
}

func (v *groupView) Metadata(stream string) (annals.StreamMetadata, error) {
	ms, err := v.State(annals.MetastreamOf(stream))
	if err != nil || !ms.Exists {
		return annals.StreamMetadata{}, err
	}
	if n := len(v.events); n > 0 && ms.LastPosition >= v.events[0].Position {
		return annals.ParseStreamMetadata(v.events[ms.LastPosition-v.events[0].Position].Data)
	}
	var data []byte
	if err := v.conn.QueryRow(v.ctx, v.q.eventData, int64(ms.LastPosition)).Scan(&data); err != nil {
		return annals.StreamMetadata{}, v.fail(err)
	}
	return annals.ParseStreamMetadata(data)
}

// write sends the group's rows in one round trip: the events, the stream
// heads it changed, the head of $all, and COMMIT if commit is set.
func (v *groupView) write(head, last annals.Position, now time.Time, commit bool) error {
	n := len(v.events)
	var (
		positions = make([]int64, n)
		ids       = make([]pgtype.UUID, n)
		streams   = make([]string, n)
		revisions = make([]int64, n)
		types     = make([]string, n)
		cts       = make([]string, n)
		data      = make([][]byte, n)
		metadata  = make([][]byte, n)
		tags      = make([]*string, n) // JSON, nil (NULL) for none
		tagRows   tagRows
	)
	for i, e := range v.events {
		if e.Position != head+1+annals.Position(i) {
			panic("postgres: a group's positions must follow the head, gapless")
		}
		positions[i] = int64(e.Position)
		ids[i] = pgtype.UUID{Bytes: e.ID, Valid: true}
		streams[i], revisions[i], types[i], cts[i] = e.Stream, int64(e.Revision), e.Type, e.ContentType
		// The columns are NOT NULL; a nil payload is stored empty.
		data[i], metadata[i] = nonNil(e.Data), nonNil(e.Metadata)
		if len(e.Tags) > 0 {
			js, _ := json.Marshal(e.Tags)
			tags[i] = new(string)
			*tags[i] = string(js)
			tagRows.add(e)
		}
	}
	var (
		names                    []string
		has, softDel, tombstoned []bool
		lastRevs, lastPoss       []int64
	)
	for name := range v.dirty {
		st := v.states[name]
		names = append(names, name)
		has = append(has, st.Exists)
		lastRevs = append(lastRevs, int64(st.LastRevision))
		lastPoss = append(lastPoss, int64(st.LastPosition))
		softDel = append(softDel, st.SoftDeleted)
		tombstoned = append(tombstoned, st.Tombstoned)
	}
	b := &pgx.Batch{}
	b.Queue(v.q.insertEvents, positions, ids, streams, revisions, types, cts, data, metadata, now, tags)
	if len(tagRows.tags) > 0 {
		b.Queue(v.q.insertTags, tagRows.tags, tagRows.positions, tagRows.types)
	}
	b.Queue(v.q.upsertStreams, names, has, lastRevs, lastPoss, softDel, tombstoned)
	b.Queue(v.q.moveHead, int64(last), now)
	if commit {
		b.Queue("COMMIT")
	}
	return v.conn.SendBatch(v.ctx, b).Close()
}

// tagRows are the tag index rows of a group, as columns.
type tagRows struct {
	tags, types []string
	positions   []int64
}

func (t *tagRows) add(e *annals.Event) {
	for _, tag := range e.Tags {
		t.tags = append(t.tags, tag)
		t.positions = append(t.positions, int64(e.Position))
		t.types = append(t.types, e.Type)
	}
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// isUniqueViolation reports PostgreSQL's unique_violation.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// retryable reports an error after which the same transaction may succeed:
// the connection or the server went away, or the server is starting or
// shutting down, or it chose this transaction as a deadlock victim, or it
// refused a new connection for now (too many connections, the database not
// accepting connections). A connection refused for good (authentication,
// no such database or role) is not retried.
func retryable(err error) bool {
	var connectErr *pgconn.ConnectError
	var pgErr *pgconn.PgError
	if errors.As(err, &connectErr) {
		// Checked first: a refused connection wraps the server's PgError,
		// whose class alone would read as final.
		if errors.As(err, &pgErr) {
			switch pgErr.Code[:2] {
			case "28", "3D": // invalid authorization, invalid catalog name
				return false
			}
		}
		return true
	}
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", "57", "40": // connection exception, operator intervention, transaction rollback
			return true
		}
		return false
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || pgconn.SafeToRetry(err)
}
