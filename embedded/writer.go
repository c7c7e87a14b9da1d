package embedded

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/core"
	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

// The write path. Invariants:
//
//  1. Only the writer goroutine assigns positions and changes stream heads,
//     so positions are gapless and expectations are checked against every
//     write before them.
//  2. Groups are applied to pebble in position order, and pebble syncs its
//     WAL in apply order, so once a group's fsync returns, every earlier
//     group is durable too. The writer syncs groups in that same order
//     (syncAndAnswer): it advances the durable watermark to the group's
//     last position, then answers the group's requests. While one group's
//     fsync runs, the writer plans and applies the next (planAndApply: a
//     two-stage pipeline).
//  3. No answer (success, conflict or retry) leaves before the state it
//     was decided on is durable: a caller never learns of a write that a
//     crash could undo.
//  4. A failed fsync crashes the process. After a failed fsync the kernel
//     may have dropped the dirty pages; retrying would acknowledge writes
//     that are not on disk.
//  5. A group is admitted only while the disk keeps its reserve (space.go);
//     a refused group wrote nothing and is answered at once.
//
// Built with -tags invariants, the writer asserts 1 (each planned event
// takes the next position), 2 (the group synced is the one right after the
// durable watermark) and 3 (no group is answered while the watermark is
// below its last position).

// Append implements annals.Store: it writes events to stream if the stream
// is at expected, all or none, and returns once they are durable (the
// fsync of the group commit they joined). An event whose id is already
// recorded in the stream makes the call an idempotent retry, answered with
// the original result. On a disk short of its reserve it fails with
// annals.ErrDiskFull and writes nothing. If ctx ends once the append is
// queued for the writer, it fails with annals.ErrOutcomeUnknown (retry
// with the same event ids); before that, with ctx's error alone.
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
// metastream if the metastream is at expected, durably, as Append does.
func (s *Store) SetStreamMetadata(ctx context.Context, stream string, expected annals.ExpectedRevision, md annals.StreamMetadata) (annals.AppendResult, error) {
	return s.writes.SetStreamMetadata(ctx, stream, expected, md)
}

// Delete implements annals.Store: a soft delete, durable when it returns.
// The stream's events stay in $all; a later append continues its
// revisions.
func (s *Store) Delete(ctx context.Context, stream string, expected annals.ExpectedRevision) (annals.DeleteResult, error) {
	return s.writes.Delete(ctx, stream, expected)
}

// Tombstone implements annals.Store: a hard delete, durable when it
// returns; the stream can never be written again.
func (s *Store) Tombstone(ctx context.Context, stream string, expected annals.ExpectedRevision) (annals.DeleteResult, error) {
	return s.writes.Tombstone(ctx, stream, expected)
}

type writer struct {
	s        *Store
	next     annals.Position // position of the next event
	lastTime time.Time       // recorded times never go backwards
	heads    *headCache
	ids      *idFilter // every recorded id (idfilter.go)
	tags     *tagCache // where each recent tag was last written (query.go)
	indexes  *indexHeads
	scratch  []byte // reused encoding buffers
	arena    []byte
}

// group is one group commit: its batch (nil if it writes nothing) and the
// requests to answer once it is durable. lastPos is the log's end once it
// is applied: the state its requests were decided on.
type group struct {
	batch    *pebble.Batch
	reqs     []*core.Request
	firstPos annals.Position // its first event's position, if batch is set
	lastPos  annals.Position
	events   int       // written by the batch
	applied  time.Time // when the batch went to pebble
}

func newWriter(s *Store, last annals.Position, lastTime time.Time, ids *idFilter) *writer {
	return &writer{
		s: s, next: last + 1, lastTime: lastTime,
		heads:   newHeadCache(s.opts.StreamCacheEntries),
		ids:     ids,
		tags:    newTagCache(last),
		indexes: &indexHeads{db: func() *pebble.DB { return s.db }, next: map[string]annals.Revision{}, limit: IndexHeadCacheEntries},
	}
}

func (w *writer) run() {
	// unsynced is the group applied last, whose fsync may still be
	// running: the writer plans and applies the next group meanwhile, then
	// waits for unsynced's fsync and answers it. The queue hears of a
	// normal stop only, never while a panic (a failed fsync) unwinds
	// (core.Queue.Stopped).
	q := w.s.queue
	var unsynced *group
	for {
		var first *core.Request
		if unsynced == nil {
			select {
			case first = <-q.Requests():
			case <-q.Quit():
				q.Stopped()
				return
			}
		} else {
			select {
			case first = <-q.Requests():
			default:
				w.syncAndAnswer(unsynced)
				unsynced = nil
				continue
			}
		}
		reqs := q.Collect(first)
		if err := w.admit(core.GroupBytes(reqs)); err != nil {
			// Refused before planning: nothing written, no state revealed,
			// so the answer need not wait for unsynced's fsync.
			core.FailAll(reqs, err)
			continue
		}
		g := w.planAndApply(reqs)
		if unsynced != nil {
			w.syncAndAnswer(unsynced)
		}
		unsynced = g
	}
}

// planAndApply decides every request of a group against the log so far
// (applied groups included, synced or not) and hands the group's batch to
// pebble without waiting for its fsync: nothing is durable, nothing
// answered yet.
func (w *writer) planAndApply(reqs []*core.Request) *group {
	now := w.s.opts.Now().UTC()
	if now.Before(w.lastTime) {
		now = w.lastTime
	}
	ov := &overlay{w: w, states: map[string]core.StreamState{}}
	firstPos := w.next
	for _, r := range reqs {
		p := core.PlanOp(ov, r.Op, w.next, now)
		r.Result, r.Err = p.Result, p.Err
		if p.Err != nil || p.Duplicate || len(p.Events) == 0 {
			continue
		}
		for i := range p.Events {
			if core.Invariants {
				core.Assert(p.Events[i].Position == w.next+annals.Position(i), "embedded: event %d of a plan at position %d, want %d (invariant 1)", i, p.Events[i].Position, w.next+annals.Position(i))
			}
			ov.add(&p.Events[i])
		}
		for _, u := range p.Updates {
			if prev, err := ov.State(u.Stream); err != nil || !prev.Exists || hasLifecycle(prev) || hasLifecycle(u.State) {
				ov.dirtyHeads = append(ov.dirtyHeads, u.Stream)
			}
			ov.states[u.Stream] = u.State
		}
		w.next += annals.Position(len(p.Events))
		w.lastTime = now
	}
	batch := w.s.db.NewBatch()
	heads := make(map[string]core.StreamState, len(ov.dirtyHeads))
	for _, stream := range ov.dirtyHeads {
		heads[stream] = ov.states[stream]
	}
	w.writeSorted(batch, ov.events, heads)
	g := &group{reqs: reqs, firstPos: firstPos, lastPos: w.next - 1, events: len(ov.events)}
	if batch.Empty() {
		batch.Close()
	} else {
		if w.s.opts.OnGroupCommit != nil {
			g.applied = time.Now()
		}
		if err := w.applyNoSync(batch); err != nil {
			panic(fmt.Sprintf("embedded: applying a group commit failed, stopping so nothing unsynced is acknowledged: %v", err))
		}
		g.batch = batch
		for stream, st := range ov.states {
			w.heads.put(stream, st)
		}
		for _, e := range ov.events {
			w.ids.add(e.Stream, e.ID)
			w.tags.wrote(e)
		}
	}
	return g
}

// writeSorted writes a group's keys table by table, each in key order. The
// memtable then inserts each key next to the previous one instead of
// searching its skiplist from the top: log keys are consecutive, generated
// ids (version 7) are time-ordered, and a stream's index keys are adjacent.
func (w *writer) writeSorted(b *pebble.Batch, events []*annals.Event, heads map[string]core.StreamState) {
	// The log, in chunks; chunkOf[i] is the key of event i's chunk.
	chunkOf := make([]annals.Position, len(events))
	rec := w.scratch[:0]
	from := 0
	for _, to := range chunkSplits(events) {
		first := events[from].Position
		rec = appendChunk(rec[:0], events[from:to])
		mustSet(b, eventKey(first), rec)
		for i := from; i < to; i++ {
			chunkOf[i] = first
		}
		from = to
	}
	w.scratch = rec
	// Index entries share one arena: entry i is arena[offs[i]:offs[i+1]],
	// its last 16 bytes the value.
	arena := w.arena[:0]
	var offs []int
	for i, e := range events {
		if e.Revision != annals.RevisionTombstone {
			offs = append(offs, len(arena))
			arena = appendStreamKey(arena, e.Stream, e.Revision)
			arena = appendLocation(arena, e.Position, chunkOf[i])
		}
	}
	nIndex := len(offs)
	for i, e := range events {
		offs = append(offs, len(arena))
		arena = appendIDKey(arena, e.Stream, e.ID)
		arena = appendLocation(arena, e.Position, chunkOf[i])
	}
	offs = append(offs, len(arena))
	entry := func(i int) (k, v []byte) {
		kv := arena[offs[i]:offs[i+1]]
		return kv[:len(kv)-16], kv[len(kv)-16:]
	}
	order := make([]int, len(offs)-1)
	for i := range order {
		order[i] = i
	}
	byKey := func(x, y int) int {
		kx, _ := entry(x)
		ky, _ := entry(y)
		return bytes.Compare(kx, ky)
	}
	slices.SortFunc(order[:nIndex], byKey)
	slices.SortFunc(order[nIndex:], byKey)
	for _, i := range order {
		k, v := entry(i)
		mustSet(b, k, v)
	}
	w.arena = arena
	w.writeTags(b, events, chunkOf)
	if err := w.indexes.write(b, events, chunkOf); err != nil {
		panic(fmt.Sprintf("embedded: reading an index head failed, stopping so no index is written wrong: %v", err))
	}
	hs := make([]string, 0, len(heads))
	for stream := range heads {
		hs = append(hs, stream)
	}
	slices.Sort(hs)
	for _, stream := range hs {
		mustSet(b, headKey(stream), encodeHead(heads[stream]))
	}
}

// writeTags writes the tag index entries of a group's events, in key
// order.
func (w *writer) writeTags(b *pebble.Batch, events []*annals.Event, chunkOf []annals.Position) {
	type entry struct{ k, v []byte }
	var entries []entry
	for i, e := range events {
		for _, t := range e.Tags {
			v := appendLocation(nil, e.Position, chunkOf[i])
			entries = append(entries, entry{appendTagKey(nil, t, e.Position), append(v, e.Type...)})
		}
	}
	slices.SortFunc(entries, func(x, y entry) int { return bytes.Compare(x.k, y.k) })
	for _, en := range entries {
		mustSet(b, en.k, en.v)
	}
}

// hasLifecycle reports a state only a head record can tell.
func hasLifecycle(s core.StreamState) bool { return s.SoftDeleted || s.Tombstoned }

func mustSet(b *pebble.Batch, k, v []byte) {
	if err := b.Set(k, v, nil); err != nil {
		panic(fmt.Sprintf("embedded: batch set: %v", err))
	}
}

// applyNoSync hands batch to pebble without waiting for its fsync. Pebble
// panics when its WAL writer has failed before (a write that hit ENOSPC):
// the process stops either way, with a message that says why.
func (w *writer) applyNoSync(batch *pebble.Batch) error {
	defer func() {
		if r := recover(); r != nil {
			if err, ok := r.(error); ok && noSpace(err) {
				w.s.opts.Logger.Error("embedded: the WAL hit a full disk; stopping so nothing unsynced is acknowledged (a restart opens read-only while the disk stays full)", "err", err)
			}
			panic(r)
		}
	}()
	return w.s.db.ApplyNoSyncWait(batch, pebble.Sync)
}

// syncAndAnswer waits for g's fsync, where its writes become durable,
// publishes them (the watermark) and answers g's requests. Groups are
// synced in the order they were applied.
func (w *writer) syncAndAnswer(g *group) {
	if g.batch != nil {
		if core.Invariants {
			core.Assert(g.firstPos == w.s.wm.Load()+1, "embedded: syncing a group from position %d with the watermark at %d (invariant 2)", g.firstPos, w.s.wm.Load())
		}
		if err := g.batch.SyncWait(); err != nil {
			w.s.opts.Logger.Error("fsync failed; crashing so nothing unsynced is acknowledged", "err", err, "disk-full", noSpace(err))
			panic(fmt.Sprintf("embedded: WAL fsync failed: %v", err))
		}
		g.batch.Close()
		w.s.wm.Advance(g.lastPos)
	}
	if fn := w.s.opts.OnGroupCommit; fn != nil && g.batch != nil {
		fn(annals.GroupCommit{Writes: len(g.reqs), Events: g.events, Bytes: core.GroupBytes(g.reqs), Sync: time.Since(g.applied)})
	}
	if core.Invariants {
		core.Assert(w.s.wm.Load() >= g.lastPos, "embedded: answering a group decided at position %d with the watermark at %d (invariant 3)", g.lastPos, w.s.wm.Load())
	}
	core.AnswerAll(g.reqs)
}

// overlay is the planner's view during a group: the writes planned earlier
// in the group, over the head cache, over pebble (which already shows every
// applied group, synced or not — the writer's own past).
type overlay struct {
	w          *writer
	states     map[string]core.StreamState
	dirtyHeads []string         // streams whose head record must be written
	events     []*annals.Event  // planned so far, in position order
	ids        map[streamID]int // index into events; built on first Lookup
}

// streamID keys the ids planned in a group: ids are scoped to their stream.
type streamID struct {
	stream string
	id     uuid.UUID
}

func (o *overlay) add(e *annals.Event) {
	o.events = append(o.events, e)
	if o.ids != nil {
		o.ids[streamID{e.Stream, e.ID}] = len(o.events) - 1
	}
}

// planned returns the event planned at pos in this group, if any.
func (o *overlay) planned(pos annals.Position) *annals.Event {
	if len(o.events) == 0 || pos < o.events[0].Position {
		return nil
	}
	if i := uint64(pos - o.events[0].Position); i < uint64(len(o.events)) {
		return o.events[i]
	}
	return nil
}

func (o *overlay) State(stream string) (core.StreamState, error) {
	if st, ok := o.states[stream]; ok {
		return st, nil
	}
	if st, ok := o.w.heads.get(stream); ok {
		return st, nil
	}
	st, err := getHead(o.w.s.db, stream)
	if err != nil {
		return st, err
	}
	o.w.heads.put(stream, st)
	return st, nil
}

func (o *overlay) Lookup(stream string, id uuid.UUID) (core.Recorded, error) {
	if o.ids == nil {
		o.ids = make(map[streamID]int, len(o.events))
		for i, e := range o.events {
			o.ids[streamID{e.Stream, e.ID}] = i
		}
	}
	if i, ok := o.ids[streamID{stream, id}]; ok {
		e := o.events[i]
		return core.Recorded{Found: true, Stream: e.Stream, Revision: e.Revision, Position: e.Position}, nil
	}
	if !o.w.ids.mayContain(stream, id) {
		return core.Recorded{}, nil // never recorded: no engine read
	}
	v, ok, err := getValue(o.w.s.db, idKey(stream, id))
	if err != nil || !ok {
		return core.Recorded{}, err
	}
	pos, chunk, err := decodeLocation(v)
	if err != nil {
		return core.Recorded{}, err
	}
	e, err := getEvent(o.w.s.db, pos, chunk)
	if err != nil {
		return core.Recorded{}, err
	}
	return core.Recorded{Found: true, Stream: e.Stream, Revision: e.Revision, Position: pos}, nil
}

func (o *overlay) Metadata(stream string) (annals.StreamMetadata, error) {
	ms, err := o.State(annals.MetastreamOf(stream))
	if err != nil || !ms.Exists {
		return annals.StreamMetadata{}, err
	}
	if e := o.planned(ms.LastPosition); e != nil {
		return annals.ParseStreamMetadata(e.Data)
	}
	e, err := findEvent(o.w.s.db, ms.LastPosition)
	if err != nil {
		return annals.StreamMetadata{}, err
	}
	return annals.ParseStreamMetadata(e.Data)
}
