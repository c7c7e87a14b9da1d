package persistent

import (
	"fmt"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/google/uuid"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func testSettings() Settings {
	s := DefaultSettings()
	s.StartFrom = 0
	s.LiveBufferSize, s.HistoryBufferSize = 4, 4
	s.MessageTimeoutMs = 1000
	s.MaxRetryCount = 1
	s.CheckpointLowerBound, s.CheckpointUpperBound, s.CheckpointAfterMs = 1, 2, 0
	return s
}

func ev(stream string, rev annals.Revision) annals.Event {
	return annals.Event{ID: uuid.New(), Stream: stream, Type: "T", Revision: rev, Position: annals.Position(rev) + 1}
}

func newConsumer(name string, buffer int) *consumer {
	return &consumer{id: name, name: name, bufferSize: buffer, wake: make(chan struct{}, 1)}
}

// takeAll drains a consumer's deliveries.
func takeAll(c *core, k *consumer) []Delivery {
	var out []Delivery
	for {
		d, ok := c.take(k)
		if !ok {
			return out
		}
		out = append(out, d)
	}
}

func revs(ds []Delivery) string {
	s := ""
	for _, d := range ds {
		s += fmt.Sprintf("%d/%d ", d.Event.Revision, d.RetryCount)
	}
	return s
}

// check asserts the invariants of doc.go.
func check(t *testing.T, c *core) {
	t.Helper()
	perConsumer := map[*consumer]int{}
	for m := range c.inFlight {
		if m.state != stateInFlight || m.consumer == nil {
			t.Fatalf("in-flight set holds a message in state %d", m.state)
		}
		perConsumer[m.consumer]++
	}
	for _, k := range c.consumers {
		if k.inFlight != perConsumer[k] || k.inFlight > k.bufferSize {
			t.Fatalf("consumer %s: %d in flight, %d counted, buffer %d", k.id, k.inFlight, perConsumer[k], k.bufferSize)
		}
	}
	p := c.resumePoint()
	for _, m := range c.window {
		if m.seq < p && m.state != stateFinished {
			t.Fatalf("checkpoint %d passes unfinished message %d", p, m.seq)
		}
	}
	for id, m := range c.byID {
		if m.state == stateFinished || m.event.ID != id {
			t.Fatalf("index holds a finished or misfiled message %d", m.seq)
		}
	}
	if len(c.buffer) > c.settings.bufferCap() {
		t.Fatalf("buffer holds %d, cap %d", len(c.buffer), c.settings.bufferCap())
	}
}

func TestRoundRobinHonoursBufferSizes(t *testing.T) {
	c := newCore(testSettings(), false, 0)
	a, b := newConsumer("a", 2), newConsumer("b", 1)
	c.connect(a)
	c.connect(b)
	var evs []annals.Event
	for i := range 4 {
		evs = append(evs, ev("s", annals.Revision(i)))
		c.add(evs[i])
	}
	c.dispatch(t0)
	check(t, c)
	if got := revs(takeAll(c, a)); got != "0/0 2/0 " {
		t.Fatalf("a got %s", got)
	}
	if got := revs(takeAll(c, b)); got != "1/0 " {
		t.Fatalf("b got %s", got)
	}
	if c.hasRoom() != true || len(c.buffer) != 1 {
		t.Fatalf("buffer %d", len(c.buffer))
	}
	c.ack([]uuid.UUID{evs[1].ID})
	c.dispatch(t0)
	check(t, c)
	if got := revs(takeAll(c, b)); got != "3/0 " {
		t.Fatalf("b got %s after its ack", got)
	}
	// Out of order acks: the checkpoint waits for the first.
	c.ack([]uuid.UUID{evs[2].ID, evs[3].ID})
	if p := c.resumePoint(); p != 0 {
		t.Fatalf("resume point %d with revision 0 unacknowledged", p)
	}
	c.ack([]uuid.UUID{evs[0].ID})
	check(t, c)
	if p := c.resumePoint(); p != 4 {
		t.Fatalf("resume point %d, want 4", p)
	}
}

func TestDispatchToSingleFillsTheFirst(t *testing.T) {
	s := testSettings()
	s.Strategy = DispatchToSingle
	c := newCore(s, false, 0)
	a, b := newConsumer("a", 2), newConsumer("b", 5)
	c.connect(a)
	c.connect(b)
	for i := range 3 {
		c.add(ev("s", annals.Revision(i)))
	}
	c.dispatch(t0)
	check(t, c)
	if got, gotB := revs(takeAll(c, a)), revs(takeAll(c, b)); got != "0/0 1/0 " || gotB != "2/0 " {
		t.Fatalf("a got %s, b got %s", got, gotB)
	}
}

func TestPinnedKeepsAStreamOnOneConsumer(t *testing.T) {
	s := testSettings()
	s.Strategy = Pinned
	s.LiveBufferSize = 100
	c := newCore(s, true, 0)
	a, b := newConsumer("a", 100), newConsumer("b", 100)
	c.connect(a)
	c.connect(b)
	pos := annals.Position(1)
	for i := range 40 {
		e := ev(fmt.Sprintf("s-%d", i%8), annals.Revision(i/8))
		e.Position = pos
		pos++
		c.add(e)
	}
	c.dispatch(t0)
	check(t, c)
	owner := map[string]string{}
	for _, k := range []*consumer{a, b} {
		for _, d := range takeAll(c, k) {
			if o, ok := owner[d.Event.Stream]; ok && o != k.id {
				t.Fatalf("stream %s went to %s and %s", d.Event.Stream, o, k.id)
			}
			owner[d.Event.Stream] = k.id
		}
	}
	if len(owner) != 8 {
		t.Fatalf("%d streams delivered", len(owner))
	}
}

func TestTimeoutRetriesThenParks(t *testing.T) {
	c := newCore(testSettings(), false, 0) // one retry allowed
	a := newConsumer("a", 1)
	c.connect(a)
	e := ev("s", 0)
	c.add(e)
	c.dispatch(t0)
	if got := revs(takeAll(c, a)); got != "0/0 " {
		t.Fatalf("got %s", got)
	}
	c.tick(t0.Add(999 * time.Millisecond))
	if len(c.retry) != 0 {
		t.Fatal("retried before its timeout")
	}
	c.tick(t0.Add(time.Second))
	check(t, c)
	c.dispatch(t0.Add(time.Second))
	if got := revs(takeAll(c, a)); got != "0/1 " {
		t.Fatalf("redelivery: %s", got)
	}
	c.tick(t0.Add(2 * time.Second))
	check(t, c)
	p := c.takeParking()
	if len(p) != 1 || p[0].event.ID != e.ID {
		t.Fatalf("parking %d messages", len(p))
	}
	if c.resumePoint() != 0 {
		t.Fatal("checkpoint passed a message being parked")
	}
	c.parkDone(p[0], true)
	check(t, c)
	if c.resumePoint() != 1 || c.parked != 1 {
		t.Fatalf("resume point %d, parked %d", c.resumePoint(), c.parked)
	}
}

func TestNackActions(t *testing.T) {
	c := newCore(testSettings(), false, 0)
	a, b := newConsumer("a", 4), newConsumer("b", 4)
	c.connect(a)
	var evs []annals.Event
	for i := range 4 {
		evs = append(evs, ev("s", annals.Revision(i)))
		c.add(evs[i])
	}
	c.dispatch(t0)
	takeAll(c, a)
	// Another consumer cannot nack what it does not hold.
	c.connect(b)
	if c.nack(b, NackSkip, []uuid.UUID{evs[0].ID}); c.byID[evs[0].ID] == nil {
		t.Fatal("a nack from the wrong consumer took effect")
	}
	c.nack(a, NackSkip, []uuid.UUID{evs[0].ID})
	c.nack(a, NackPark, []uuid.UUID{evs[1].ID})
	c.nack(a, NackRetry, []uuid.UUID{evs[2].ID})
	if !c.nack(a, NackStop, []uuid.UUID{evs[3].ID}) {
		t.Fatal("stop not reported")
	}
	check(t, c)
	if len(c.parking) != 1 || c.parking[0].event.ID != evs[1].ID {
		t.Fatal("park not queued")
	}
	c.disconnect(a, ErrStopped)
	c.dispatch(t0)
	check(t, c)
	// The retry counts; the stopped one does not.
	if got := revs(takeAll(c, b)); got != "2/1 3/0 " {
		t.Fatalf("b got %s", got)
	}
	if a.dropped != ErrStopped {
		t.Fatalf("a dropped with %v", a.dropped)
	}
}

func TestDisconnectRedeliversAndStaleDeliveriesAreSkipped(t *testing.T) {
	c := newCore(testSettings(), false, 0)
	a, b := newConsumer("a", 2), newConsumer("b", 2)
	c.connect(a)
	c.add(ev("s", 0))
	c.add(ev("s", 1))
	c.dispatch(t0)
	// a never takes its deliveries; it times out and b connects.
	c.connect(b)
	c.tick(t0.Add(time.Second))
	c.dispatch(t0.Add(time.Second))
	check(t, c)
	gotA, gotB := takeAll(c, a), takeAll(c, b)
	if len(gotA)+len(gotB) != 2 {
		t.Fatalf("a took %s, b took %s: want each event once", revs(gotA), revs(gotB))
	}
	c.disconnect(b, ErrClosed)
	c.dispatch(t0)
	check(t, c)
	if got := takeAll(c, a); len(got)+len(gotA) != 2 {
		t.Fatalf("after b left a got %s", revs(got))
	}
}

func TestReadingStopsWhenFull(t *testing.T) {
	c := newCore(testSettings(), false, 0)
	for i := 0; c.hasRoom(); i++ {
		if i > 100 {
			t.Fatal("no bound")
		}
		c.add(ev("s", annals.Revision(i)))
	}
	if len(c.buffer) != 4 {
		t.Fatalf("stopped at %d, want the buffer size 4", len(c.buffer))
	}
	// With a consumer that never acks, the buffer refills and stops again.
	k := newConsumer("a", 3)
	c.connect(k)
	c.dispatch(t0)
	for c.hasRoom() {
		c.add(ev("s", annals.Revision(c.next)))
	}
	check(t, c)
	if len(c.buffer) != 4 || k.inFlight != 3 {
		t.Fatalf("buffer %d, in flight %d", len(c.buffer), k.inFlight)
	}
}

func TestWindowBoundsOneStuckMessage(t *testing.T) {
	s := testSettings()
	s.MessageTimeoutMs = 0 // never times out
	c := newCore(s, false, 0)
	k := newConsumer("a", 1000)
	c.connect(k)
	stuck := ev("s", 0)
	c.add(stuck)
	c.dispatch(t0)
	takeAll(c, k)
	for c.hasRoom() {
		e := ev("s", annals.Revision(c.next))
		c.add(e)
		c.dispatch(t0)
		takeAll(c, k)
		c.ack([]uuid.UUID{e.ID})
	}
	if len(c.window) != MaxWindowMessages || c.resumePoint() != 0 {
		t.Fatalf("window %d, resume %d", len(c.window), c.resumePoint())
	}
	c.ack([]uuid.UUID{stuck.ID})
	if len(c.window) != 0 || c.resumePoint() != MaxWindowMessages {
		t.Fatalf("after the ack: window %d, resume %d", len(c.window), c.resumePoint())
	}
}

func TestCheckpointCounts(t *testing.T) {
	s := testSettings()
	s.CheckpointLowerBound, s.CheckpointUpperBound, s.CheckpointAfterMs = 2, 3, 1000
	c := newCore(s, false, 0)
	k := newConsumer("a", 10)
	c.connect(k)
	var ids []uuid.UUID
	for i := range 4 {
		e := ev("s", annals.Revision(i))
		ids = append(ids, e.ID)
		c.add(e)
	}
	c.dispatch(t0)
	c.checkpointed(0, 0, t0)
	c.ack(ids[:2])
	if _, _, due := c.checkpointDue(t0.Add(500 * time.Millisecond)); due {
		t.Fatal("due before CheckpointAfterMs")
	}
	p, counted, due := c.checkpointDue(t0.Add(time.Second))
	if !due || p != 2 || counted != 2 {
		t.Fatalf("due %v at %d covering %d, want 2 covering 2", due, p, counted)
	}
	// Acks while the checkpoint is written count towards the next.
	c.ack(ids[2:3])
	c.checkpointed(p, counted, t0)
	if p, _, due := c.checkpointDue(t0.Add(time.Second)); due {
		t.Fatalf("one finished since, below the lower bound: due at %d", p)
	}
	c.ack(ids[3:4])
	if p, _, due := c.checkpointDue(t0.Add(time.Second)); !due || p != 4 {
		t.Fatalf("due %v at %d, want 4", due, p)
	}
	c.checkpointed(4, 2, t0)
	if _, _, due := c.checkpointDue(t0.Add(time.Hour)); due {
		t.Fatal("due with nothing finished since")
	}
}

func TestCorrelationID(t *testing.T) {
	if id := correlationID([]byte(`{"$correlationId":"x-1"}`)); id != "x-1" {
		t.Fatalf("got %q", id)
	}
	if id := correlationID([]byte(`not json`)); id != "" {
		t.Fatalf("got %q", id)
	}
}

func TestGroupCheckpointsAreNotDelivered(t *testing.T) {
	c := newCore(testSettings(), true, 0)
	k := newConsumer("a", 10)
	c.connect(k)
	cp := annals.Event{ID: uuid.New(), Stream: "$persistentsubscription-$all::g-checkpoint", Type: eventTypeCheckpoint, Position: 5}
	c.add(cp)
	user := annals.Event{ID: uuid.New(), Stream: "s", Type: "T", Position: 6}
	c.add(user)
	c.dispatch(t0)
	if got := takeAll(c, k); len(got) != 1 || got[0].Event.ID != user.ID {
		t.Fatalf("delivered %d events", len(got))
	}
	if c.resumePoint() != 6 {
		t.Fatalf("resume point %d, want 6", c.resumePoint())
	}
}
