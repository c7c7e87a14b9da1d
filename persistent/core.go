package persistent

import (
	"cmp"
	"encoding/json"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/annals/annals"
	"github.com/google/uuid"
)

// NackAction is what a consumer asks for an event it could not handle, with
// KurrentDB's numbering.
type NackAction int32

const (
	// NackUnknown lets the server decide: it retries.
	NackUnknown NackAction = 0
	// NackPark parks the event: it is not delivered again until the
	// parked messages are replayed.
	NackPark NackAction = 1
	// NackRetry delivers the event again (it counts against MaxRetryCount).
	NackRetry NackAction = 2
	// NackSkip drops the event: it counts as handled.
	NackSkip NackAction = 3
	// NackStop puts the event back for redelivery and disconnects the
	// consumer that sent the nack.
	NackStop NackAction = 4
)

// state is where a message is (see the invariants in doc.go).
type state uint8

const (
	stateBuffered state = iota // read from the store, never delivered
	stateRetry                 // waiting in the retry queue
	stateInFlight              // with one consumer
	stateParking               // waiting for its link to be written
	stateFinished              // acknowledged, skipped or parked
)

// message is one event on its way through a group.
type message struct {
	event   annals.Event
	seq     uint64 // revision (stream group) or position ($all group): either, so neither type
	retries int
	// replayed messages come from the parked stream: they are behind the
	// checkpoint and not in the window.
	replayed bool
	state    state
	consumer *consumer // stateInFlight
	// attempt counts the hand-outs; a consumer's outbox entry is stale
	// when the message has been handed out again since.
	attempt   uint64
	deadline  time.Time // stateInFlight with a timeout
	sizeBytes int
}

type delivery struct {
	msg     *message
	attempt uint64
}

// consumer is one connected consumer as the core sees it.
type consumer struct {
	id          string
	name        string
	bufferSize  int
	inFlight    int
	out         []delivery // handed out, not yet taken by the consumer
	delivered   uint64
	connectedAt time.Time
	// dropped is why the consumer was cut off, nil while it is connected.
	dropped error
	// wake is signalled (never blocking) when out grows or dropped is set.
	wake chan struct{}
}

func (c *consumer) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// core is a group's delivery state: no I/O, no clock, no locking. The
// group serialises calls and passes the time.
type core struct {
	settings Settings
	all      bool // an $all group: seq is a position

	buffer []*message // read, not yet delivered, in store order
	retry  []*message // to deliver again, before the buffer
	// window holds every message read from the store and not yet
	// released by the checkpoint, in store order; finished ones stay until
	// everything before them is finished.
	window   []*message
	byID     map[uuid.UUID]*message // every unfinished message
	parking  []*message             // waiting for the group to write their links
	inFlight map[*message]struct{}

	consumers []*consumer // in connection order
	rr        int         // round-robin cursor

	next        uint64 // the next seq to read from the store
	checkpoint  uint64 // the resume point last written
	lastCheckAt time.Time
	// finishedSinceCheckpoint counts events finished since the last
	// checkpoint, for the checkpoint counts.
	finishedSinceCheckpoint int

	lastKnown    uint64 // the last seq read from the store
	readAny      bool
	bufferedSize int // payload bytes held by unfinished messages
	delivered    uint64
	parked       int64 // messages in the parked stream not yet replayed
	replaying    int   // replayed messages not yet finished
}

func newCore(s Settings, all bool, resume uint64) *core {
	return &core{
		settings: s, all: all, next: resume, checkpoint: resume,
		byID: make(map[uuid.UUID]*message), inFlight: make(map[*message]struct{}),
	}
}

// hasRoom reports whether the group may read one more event.
func (c *core) hasRoom() bool {
	return len(c.buffer) < c.settings.bufferCap() && len(c.window) < MaxWindowMessages &&
		c.bufferedSize < MaxGroupBufferedBytes
}

func eventSize(e *annals.Event) int {
	return len(e.Data) + len(e.Metadata) + len(e.Type) + len(e.Stream) + 64
}

// add takes an event read from the store.
func (c *core) add(e annals.Event) {
	seq := uint64(e.Revision)
	if c.all {
		seq = uint64(e.Position)
	}
	if seq < c.next {
		return // already read: a resubscription overlaps
	}
	c.next, c.lastKnown, c.readAny = seq+1, seq, true
	if _, dup := c.byID[e.ID]; dup || isBookkeeping(&e) {
		// Skipped, as finished: the same id in flight twice would make
		// acks ambiguous (the store's ids are unique, so this is a
		// replayed copy); and checkpoints of groups delivered to $all
		// groups would make every checkpoint cause the next.
		if len(c.window) > 0 {
			c.window = append(c.window, &message{seq: seq, state: stateFinished})
		}
		return
	}
	m := &message{event: e, seq: seq, sizeBytes: eventSize(&e)}
	c.byID[e.ID] = m
	c.bufferedSize += m.sizeBytes
	c.buffer = append(c.buffer, m)
	c.window = append(c.window, m)
}

// isBookkeeping reports a checkpoint event of a group.
func isBookkeeping(e *annals.Event) bool {
	return e.Type == eventTypeCheckpoint && strings.HasPrefix(e.Stream, streamPrefix)
}

// advance records that the store has nothing for the group before pos (a
// filtered $all subscription's checkpoint).
func (c *core) advance(next uint64) {
	if next > c.next {
		c.next = next
	}
}

// addReplayed queues a parked event brought back by a replay. It reports
// false when the event is already in the group (then it is not queued).
func (c *core) addReplayed(e annals.Event) bool {
	if _, dup := c.byID[e.ID]; dup {
		return false
	}
	m := &message{event: e, replayed: true, state: stateRetry, sizeBytes: eventSize(&e)}
	c.byID[e.ID] = m
	c.bufferedSize += m.sizeBytes
	c.retry = append(c.retry, m)
	c.replaying++
	return true
}

// connect adds a consumer.
func (c *core) connect(k *consumer) { c.consumers = append(c.consumers, k) }

// disconnect removes a consumer; its messages go back for redelivery
// (without counting a retry: the consumer failed, not the event).
func (c *core) disconnect(k *consumer, why error) {
	for i, x := range c.consumers {
		if x == k {
			c.consumers = append(c.consumers[:i], c.consumers[i+1:]...)
			break
		}
	}
	for _, m := range c.inFlightOrdered(func(m *message) bool { return m.consumer == k }) {
		c.takeBack(m)
		c.requeue(m)
	}
	k.out = nil
	if k.dropped == nil {
		k.dropped = why
	}
	k.signal()
}

// takeBack removes an in-flight message from its consumer.
func (c *core) takeBack(m *message) {
	delete(c.inFlight, m)
	m.consumer.inFlight--
	m.consumer = nil
}

func (c *core) requeue(m *message) {
	m.state = stateRetry
	c.retry = append(c.retry, m)
}

// retryOrPark counts a retry, or parks the message past MaxRetryCount.
func (c *core) retryOrPark(m *message) {
	if m.retries >= c.settings.MaxRetryCount {
		c.park(m)
		return
	}
	m.retries++
	c.requeue(m)
}

func (c *core) park(m *message) {
	m.state = stateParking
	c.parking = append(c.parking, m)
}

// finish releases a message: acknowledged, skipped or parked.
func (c *core) finish(m *message) {
	if m.state == stateFinished {
		return
	}
	m.state = stateFinished
	delete(c.byID, m.event.ID)
	c.bufferedSize -= m.sizeBytes
	if m.replayed {
		c.replaying--
	} else {
		c.finishedSinceCheckpoint++
	}
	// Keep only what the window needs.
	m.event = annals.Event{}
	for len(c.window) > 0 && c.window[0].state == stateFinished {
		c.window[0] = nil
		c.window = c.window[1:]
	}
}

// ack finishes the messages with these ids (in flight or waiting for a
// retry: a late acknowledgement still counts). Unknown ids are ignored:
// they were finished already.
func (c *core) ack(ids []uuid.UUID) {
	for _, id := range ids {
		m := c.byID[id]
		if m == nil || m.state != stateInFlight && m.state != stateRetry {
			continue // never delivered, or already being parked
		}
		if m.state == stateInFlight {
			c.takeBack(m)
		}
		c.finish(m)
	}
}

// nack applies action to the messages with these ids that are in flight to
// k. It reports whether k must be stopped (NackStop).
func (c *core) nack(k *consumer, action NackAction, ids []uuid.UUID) (stop bool) {
	for _, id := range ids {
		m := c.byID[id]
		if m == nil || m.state != stateInFlight || m.consumer != k {
			continue
		}
		c.takeBack(m)
		switch action {
		case NackPark:
			c.park(m)
		case NackSkip:
			c.finish(m)
		case NackStop:
			c.requeue(m)
			stop = true
		default: // NackRetry, NackUnknown
			c.retryOrPark(m)
		}
	}
	return stop
}

// tick retries the in-flight messages whose timeout passed.
func (c *core) tick(now time.Time) {
	expired := c.inFlightOrdered(func(m *message) bool { return !m.deadline.IsZero() && !now.Before(m.deadline) })
	for _, m := range expired {
		c.takeBack(m)
		c.retryOrPark(m)
	}
}

// inFlightOrdered returns the in-flight messages that match, in store
// order, so that what goes back to the retry queue goes in a determined
// order.
func (c *core) inFlightOrdered(match func(*message) bool) []*message {
	var out []*message
	for m := range c.inFlight {
		if match(m) {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b *message) int { return cmp.Compare(a.event.Position, b.event.Position) })
	return out
}

// takeParking hands the messages waiting to be parked to the caller, who
// writes their links and calls parked.
func (c *core) takeParking() []*message {
	p := c.parking
	c.parking = nil
	return p
}

// parkDone records the outcome of writing a message's link: finished, or
// back for redelivery if it could not be written.
func (c *core) parkDone(m *message, ok bool) {
	if !ok {
		c.requeue(m)
		return
	}
	c.parked++
	c.finish(m)
}

// dispatch hands out what it can: retries first, then the buffer.
func (c *core) dispatch(now time.Time) {
	for {
		var m *message
		var fromRetry bool
		for len(c.retry) > 0 && c.retry[0].state != stateRetry {
			c.retry = c.retry[1:] // finished while waiting (a late ack)
		}
		switch {
		case len(c.retry) > 0:
			m, fromRetry = c.retry[0], true
		case len(c.buffer) > 0:
			m = c.buffer[0]
		default:
			return
		}
		k := c.pick(m)
		if k == nil {
			return
		}
		if fromRetry {
			c.retry[0] = nil
			c.retry = c.retry[1:]
		} else {
			c.buffer[0] = nil
			c.buffer = c.buffer[1:]
		}
		m.state, m.consumer = stateInFlight, k
		m.attempt++
		m.deadline = time.Time{}
		if c.settings.MessageTimeoutMs > 0 {
			m.deadline = now.Add(time.Duration(c.settings.MessageTimeoutMs) * time.Millisecond)
		}
		c.inFlight[m] = struct{}{}
		k.inFlight++
		k.delivered++
		c.delivered++
		k.out = append(k.out, delivery{m, m.attempt})
		k.signal()
	}
}

// pick chooses the consumer for m, nil if the one it must go to is full.
func (c *core) pick(m *message) *consumer {
	n := len(c.consumers)
	if n == 0 {
		return nil
	}
	free := func(k *consumer) bool { return k.inFlight < k.bufferSize }
	switch c.settings.Strategy {
	case DispatchToSingle:
		for _, k := range c.consumers {
			if free(k) {
				return k
			}
		}
		return nil
	case Pinned, PinnedByCorrelation:
		key := m.event.Stream
		if c.settings.Strategy == PinnedByCorrelation {
			if id := correlationID(m.event.Metadata); id != "" {
				key = id
			}
		}
		h := fnv.New32a()
		h.Write([]byte(key))
		k := c.consumers[h.Sum32()%uint32(n)]
		if free(k) {
			return k
		}
		return nil // wait for this consumer: a stream's events stay with one consumer
	}
	for i := range n {
		k := c.consumers[(c.rr+i)%n]
		if free(k) {
			c.rr = (c.rr + i + 1) % n
			return k
		}
	}
	return nil
}

// correlationID reads $correlationId from JSON metadata, "" if none.
func correlationID(metadata []byte) string {
	if len(metadata) == 0 || metadata[0] != '{' {
		return ""
	}
	var md struct {
		ID string `json:"$correlationId"`
	}
	if json.Unmarshal(metadata, &md) != nil {
		return ""
	}
	return md.ID
}

// take gives a consumer its next delivery, skipping stale ones.
func (c *core) take(k *consumer) (Delivery, bool) {
	for len(k.out) > 0 {
		d := k.out[0]
		k.out[0] = delivery{}
		k.out = k.out[1:]
		if d.msg.state == stateInFlight && d.msg.consumer == k && d.msg.attempt == d.attempt {
			return Delivery{Event: d.msg.event, RetryCount: d.msg.retries}, true
		}
	}
	return Delivery{}, false
}

// resumePoint is the checkpoint the group could write now: the first
// unfinished event read, or the next one to read.
func (c *core) resumePoint() uint64 {
	if len(c.window) > 0 {
		return c.window[0].seq
	}
	return c.next
}

// checkpointDue reports whether a checkpoint should be written now, which,
// and how many finished events it covers.
func (c *core) checkpointDue(now time.Time) (p uint64, counted int, due bool) {
	p = c.resumePoint()
	if p == c.checkpoint {
		return 0, 0, false
	}
	// At least one event finished: progress over filtered-out events alone
	// waits for the next finished one (or the group's stop), so a group
	// whose checkpoints are events it reads does not feed itself.
	n, s := c.finishedSinceCheckpoint, c.settings
	after := time.Duration(s.CheckpointAfterMs) * time.Millisecond
	if n == 0 {
		return 0, 0, false
	}
	if n >= s.CheckpointUpperBound || n >= s.CheckpointLowerBound && now.Sub(c.lastCheckAt) >= after {
		return p, n, true
	}
	return 0, 0, false
}

// checkpointed records a written checkpoint that covered counted finished
// events; events finished while it was being written count towards the
// next one.
func (c *core) checkpointed(p uint64, counted int, now time.Time) {
	c.checkpoint, c.lastCheckAt = p, now
	c.finishedSinceCheckpoint = max(c.finishedSinceCheckpoint-counted, 0)
}
