package persistent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"sync"
	"time"

	"github.com/annals/annals"
	"github.com/google/uuid"
)

// Event types the engine writes.
const (
	eventTypeConfig     = "$PersistentConfig"
	eventTypeCheckpoint = "$SubscriptionCheckpoint"
	eventTypeLink       = "$>"
)

// checkpointStream and parkedStream name a group's streams as KurrentDB
// does.
func checkpointStream(stream, group string) string {
	return streamPrefix + stream + "::" + group + "-checkpoint"
}

// ParkedStream names the stream of links to the events a group parked.
func ParkedStream(stream, group string) string {
	return streamPrefix + stream + "::" + group + "-parked"
}

const streamPrefix = "$persistentsubscription-"

// checkpointDoc is a checkpoint event's data. Incarnation ties it to one
// creation of the group: a group deleted and created again under the same
// name starts afresh.
type checkpointDoc struct {
	Incarnation string `json:"incarnation"`
	ResumeFrom  uint64 `json:"resumeFrom"`
}

// linkMeta is a parked link's metadata: where the event is in $all, so a
// replay finds it whatever its stream's metadata now hides.
type linkMeta struct {
	Position annals.Position `json:"position"`
	EventID  uuid.UUID       `json:"eventId"`
}

// group runs one subscription group: a reader filling the core from the
// store, a housekeeper for timeouts, parking and checkpoints, and the
// consumers.
type group struct {
	m   *Manager
	def groupDef

	mu        sync.Mutex
	core      *core
	started   bool
	stopped   error // why the group stopped, nil while it runs
	caughtUp  bool
	readErr   error
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	hasCheck  bool            // a checkpoint exists (loaded or written)
	parkedAt  annals.Revision // first parked-stream revision no replay has loaded
	tbPending bool            // replayed links to truncate once they are finished
	mdSet     bool            // the checkpoint stream's max count is set
	replayMu  sync.Mutex      // one replay at a time: each reads from parkedAt

	room chan struct{} // the reader waits here for buffer room
	kick chan struct{} // wakes the housekeeper (messages to park)
}

// loadGroup builds a group from its definition and the state the store
// holds for it: its checkpoint and its parked messages.
func loadGroup(ctx context.Context, m *Manager, def groupDef) (*group, error) {
	g := &group{m: m, def: def, room: make(chan struct{}, 1), kick: make(chan struct{}, 1)}
	resume := def.Settings.StartFrom
	cp, ok, err := g.readCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	if ok {
		resume, g.hasCheck = cp, true
	}
	g.core = newCore(def.Settings, def.Stream == annals.AllStream, resume)
	next, tb, err := streamTail(ctx, m.store, ParkedStream(def.Stream, def.Group))
	if err != nil {
		return nil, err
	}
	g.parkedAt = max(tb, def.ParkedFrom)
	if next >= g.parkedAt {
		g.core.parked = int64(next - g.parkedAt)
	}
	return g, nil
}

// streamTail returns the revision after stream's last event (0 if none)
// and its truncate-before.
func streamTail(ctx context.Context, store annals.Store, stream string) (next, tb annals.Revision, err error) {
	for e, err := range store.ReadStream(ctx, stream, annals.ReadStreamOptions{Direction: annals.Backwards, From: annals.End, Limit: 1}) {
		if errors.Is(err, annals.ErrStreamNotFound) {
			break
		}
		if err != nil {
			return 0, 0, err
		}
		next = e.Revision + 1
	}
	md, _, err := store.StreamMetadata(ctx, stream)
	if err != nil && !errors.Is(err, annals.ErrStreamNotFound) {
		return 0, 0, err
	}
	return next, md.TruncateBefore, nil
}

func (g *group) readCheckpoint(ctx context.Context) (uint64, bool, error) {
	stream := checkpointStream(g.def.Stream, g.def.Group)
	for e, err := range g.m.store.ReadStream(ctx, stream, annals.ReadStreamOptions{Direction: annals.Backwards, From: annals.End, Limit: 1}) {
		if errors.Is(err, annals.ErrStreamNotFound) {
			return 0, false, nil
		}
		if err != nil {
			return 0, false, err
		}
		var doc checkpointDoc
		if err := json.Unmarshal(e.Data, &doc); err != nil {
			return 0, false, fmt.Errorf("persistent: checkpoint of %s: %w", stream, err)
		}
		if doc.Incarnation == g.def.Incarnation {
			return doc.ResumeFrom, true, nil
		}
	}
	return 0, false, nil
}

// start runs the reader and the housekeeper; g.mu is held.
func (g *group) start() {
	if g.started {
		return
	}
	g.started = true
	ctx, cancel := context.WithCancel(g.m.ctx)
	g.cancel = cancel
	g.wg.Add(2)
	go func() { defer g.wg.Done(); g.read(ctx) }()
	go func() { defer g.wg.Done(); g.housekeep(ctx) }()
}

// stop drops every consumer with why, stops the goroutines and, if
// saveCheckpoint, writes where the group got to.
func (g *group) stop(why error, saveCheckpoint bool) {
	g.mu.Lock()
	if g.stopped != nil {
		g.mu.Unlock()
		return
	}
	g.stopped = why
	for _, k := range append([]*consumer(nil), g.core.consumers...) {
		g.core.disconnect(k, why)
	}
	if g.cancel != nil {
		g.cancel()
	}
	g.mu.Unlock()
	g.wg.Wait()
	if !saveCheckpoint {
		return
	}
	g.mu.Lock()
	p, changed, counted := g.core.resumePoint(), g.core.resumePoint() != g.core.checkpoint, g.core.finishedSinceCheckpoint
	g.mu.Unlock()
	if changed {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := g.writeCheckpoint(ctx, p, counted); err != nil {
			g.m.log.Warn("persistent subscription: final checkpoint not written", "stream", g.def.Stream, "group", g.def.Group, "err", err)
		}
	}
}

func (g *group) signalRoom() {
	select {
	case g.room <- struct{}{}:
	default:
	}
}

func (g *group) signalKick() {
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// read follows the store from the group's next event, putting events into
// the core as it has room, and subscribes again after a failure.
func (g *group) read(ctx context.Context) {
	for ctx.Err() == nil {
		g.mu.Lock()
		from := g.core.next
		g.mu.Unlock()
		var msgs iter.Seq2[annals.Message, error]
		if g.core.all {
			msgs = g.m.store.SubscribeToAll(ctx, annals.SubscribeAllOptions{From: annals.Position(from), Filter: g.def.filter})
		} else {
			msgs = g.m.store.SubscribeToStream(ctx, g.def.Stream, annals.SubscribeStreamOptions{From: annals.Revision(from)})
		}
		for msg, err := range msgs {
			if err != nil {
				if ctx.Err() == nil {
					g.mu.Lock()
					g.readErr = err
					g.mu.Unlock()
					g.m.log.Warn("persistent subscription: reading failed, retrying", "stream", g.def.Stream, "group", g.def.Group, "err", err)
				}
				break
			}
			switch msg.Kind {
			case annals.MessageEvent:
				if !g.put(ctx, msg.Event) {
					return
				}
			case annals.MessageCheckpoint:
				g.mu.Lock()
				g.core.advance(uint64(annals.After(msg.Position)))
				g.mu.Unlock()
			case annals.MessageCaughtUp:
				g.mu.Lock()
				g.caughtUp, g.readErr = true, nil
				g.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(resubscribeDelay):
		}
	}
}

// put waits for room in the core, then adds e and hands it out: a full
// group reads no further.
func (g *group) put(ctx context.Context, e annals.Event) bool {
	g.mu.Lock()
	for !g.core.hasRoom() {
		g.mu.Unlock()
		select {
		case <-g.room:
		case <-ctx.Done():
			return false
		}
		g.mu.Lock()
	}
	g.core.add(e)
	g.core.dispatch(time.Now())
	g.mu.Unlock()
	return true
}

// housekeep retries timed-out messages, writes parked links, checkpoints
// and replay truncations, every tick and when kicked.
func (g *group) housekeep(ctx context.Context) {
	t := time.NewTicker(tickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-g.kick:
		}
		g.housekeepOnce(ctx, time.Now())
	}
}

func (g *group) housekeepOnce(ctx context.Context, now time.Time) {
	g.mu.Lock()
	g.core.tick(now)
	parks := g.core.takeParking()
	g.core.dispatch(now)
	g.mu.Unlock()
	if len(parks) > 0 {
		err := g.writeParked(ctx, parks)
		if err != nil && ctx.Err() == nil {
			g.m.log.Warn("persistent subscription: parking failed, retrying the events", "stream", g.def.Stream, "group", g.def.Group, "err", err)
		}
		g.mu.Lock()
		for _, m := range parks {
			g.core.parkDone(m, err == nil)
		}
		g.core.dispatch(now)
		g.mu.Unlock()
	}
	g.signalRoom()

	g.mu.Lock()
	p, counted, due := g.core.checkpointDue(now)
	truncate := g.tbPending && g.core.replaying == 0
	parkedAt := g.parkedAt
	g.mu.Unlock()
	if due {
		if err := g.writeCheckpoint(ctx, p, counted); err != nil {
			if ctx.Err() == nil {
				g.m.log.Warn("persistent subscription: checkpoint not written", "stream", g.def.Stream, "group", g.def.Group, "err", err)
			}
		}
	}
	if truncate {
		// Every replayed message is finished: the links before parkedAt
		// are no longer needed, even after a restart.
		md := annals.StreamMetadata{TruncateBefore: parkedAt}
		if _, err := g.m.store.SetStreamMetadata(ctx, ParkedStream(g.def.Stream, g.def.Group), annals.Any, md); err == nil {
			g.mu.Lock()
			g.tbPending = g.parkedAt != parkedAt || g.core.replaying != 0
			g.mu.Unlock()
		}
	}
}

// writeParked appends a link to each message to the parked stream.
func (g *group) writeParked(ctx context.Context, parks []*message) error {
	events := make([]annals.EventData, len(parks))
	for i, m := range parks {
		meta, err := json.Marshal(linkMeta{Position: m.event.Position, EventID: m.event.ID})
		if err != nil {
			return err
		}
		events[i] = annals.EventData{
			Type: eventTypeLink, ContentType: annals.ContentTypeBinary,
			Data:     []byte(strconv.FormatUint(uint64(m.event.Revision), 10) + "@" + m.event.Stream),
			Metadata: meta,
		}
	}
	_, err := g.m.store.Append(ctx, ParkedStream(g.def.Stream, g.def.Group), annals.Any, events...)
	return err
}

// writeCheckpoint records p as where the group resumes; it covers counted
// finished events.
func (g *group) writeCheckpoint(ctx context.Context, p uint64, counted int) error {
	stream := checkpointStream(g.def.Stream, g.def.Group)
	g.mu.Lock()
	mdSet := g.mdSet
	g.mu.Unlock()
	if !mdSet {
		// Only the last checkpoint matters.
		if _, err := g.m.store.SetStreamMetadata(ctx, stream, annals.Any, annals.StreamMetadata{MaxCount: 1}); err != nil {
			return err
		}
		g.mu.Lock()
		g.mdSet = true
		g.mu.Unlock()
	}
	data, err := json.Marshal(checkpointDoc{Incarnation: g.def.Incarnation, ResumeFrom: p})
	if err != nil {
		return err
	}
	if _, err := g.m.store.Append(ctx, stream, annals.Any, annals.EventData{Type: eventTypeCheckpoint, Data: data}); err != nil {
		return err
	}
	g.mu.Lock()
	g.core.checkpointed(p, counted, time.Now())
	g.hasCheck = true
	g.mu.Unlock()
	return nil
}

// replay brings parked messages back for delivery, at most
// MaxReplayMessages in flight at once; stopAt, if not zero, stops before
// that revision of the parked stream.
func (g *group) replay(ctx context.Context, stopAt annals.Revision) error {
	g.replayMu.Lock()
	defer g.replayMu.Unlock()
	g.mu.Lock()
	from, room := g.parkedAt, MaxReplayMessages-g.core.replaying
	g.mu.Unlock()
	if room <= 0 {
		return nil
	}
	stream := ParkedStream(g.def.Stream, g.def.Group)
	var links []annals.Event
	for e, err := range g.m.store.ReadStream(ctx, stream, annals.ReadStreamOptions{From: from, Limit: uint64(room)}) {
		if errors.Is(err, annals.ErrStreamNotFound) {
			break
		}
		if err != nil {
			return err
		}
		if stopAt > 0 && e.Revision >= stopAt {
			break
		}
		links = append(links, e)
	}
	for _, link := range links {
		var meta linkMeta
		var target annals.Event
		found := false
		if json.Unmarshal(link.Metadata, &meta) == nil && meta.Position > 0 {
			for e, err := range g.m.store.ReadAll(ctx, annals.ReadAllOptions{From: meta.Position, Limit: 1}) {
				if err != nil {
					return err
				}
				target, found = e, e.ID == meta.EventID
			}
		}
		g.mu.Lock()
		if found {
			g.core.addReplayed(target)
		} else {
			g.m.log.Warn("persistent subscription: parked event no longer in the store", "stream", g.def.Stream, "group", g.def.Group, "link", string(link.Data))
		}
		g.parkedAt = link.Revision + 1
		if g.core.parked > 0 {
			g.core.parked--
		}
		g.tbPending = true
		g.core.dispatch(time.Now())
		g.mu.Unlock()
	}
	g.signalKick()
	return nil
}
