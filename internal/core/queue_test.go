package core

import (
	"context"
	"errors"
	"testing"

	"github.com/annals/annals"
)

func TestSubmit(t *testing.T) {
	closed := func() chan struct{} { c := make(chan struct{}); close(c); return c }
	ctx := context.Background()

	// Answered: the writer takes the request and closes done.
	queue := make(chan int, 1)
	done := make(chan struct{})
	go func() { <-queue; close(done) }()
	if err := Submit(ctx, queue, 1, done, nil, nil); err != nil {
		t.Fatalf("answered: %v", err)
	}
	// The writer stopped before taking it: ErrClosed.
	if err := Submit(ctx, make(chan int), 1, make(chan struct{}), closed(), nil); !errors.Is(err, annals.ErrClosed) {
		t.Fatalf("quit: %v", err)
	}
	// Queued, then the writer stopped without an answer: ErrClosed; with
	// an answer already given: the answer.
	if err := Submit(ctx, make(chan int, 1), 1, make(chan struct{}), nil, closed()); !errors.Is(err, annals.ErrClosed) {
		t.Fatalf("writer done, no answer: %v", err)
	}
	if err := Submit(ctx, make(chan int, 1), 1, closed(), nil, closed()); err != nil {
		t.Fatalf("writer done after answering: %v", err)
	}
	// The caller gave up, before and after queueing.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := Submit(cctx, make(chan int), 1, make(chan struct{}), nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("gave up before queueing: %v", err)
	}
	if err := Submit(cctx, make(chan int, 1), 1, make(chan struct{}), nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("gave up after queueing: %v", err)
	}
}

// A caller that gives up before its request is queued knows nothing was
// written; once the writer may have taken it, the outcome is unknown, and
// the error still says that the caller gave up.
func TestSubmitOutcomeUnknown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Submit(ctx, make(chan int), 1, make(chan struct{}), nil, nil); !errors.Is(err, context.Canceled) || errors.Is(err, annals.ErrOutcomeUnknown) {
		t.Fatalf("gave up before queueing: %v, want context.Canceled alone", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	queue := make(chan int)
	errc := make(chan error, 1)
	go func() { errc <- Submit(ctx, queue, 1, make(chan struct{}), nil, nil) }()
	<-queue // the writer took it into a group
	cancel()
	if err := <-errc; !errors.Is(err, annals.ErrOutcomeUnknown) || !errors.Is(err, context.Canceled) {
		t.Fatalf("gave up after the writer took it: %v, want ErrOutcomeUnknown and context.Canceled", err)
	}
}

func TestCollectAndRefuse(t *testing.T) {
	size := func(n int) int { return n }
	queue := make(chan int, 8)
	for _, n := range []int{1, 1, 1, 1, 5} {
		queue <- n
	}
	// The op bound: first plus two.
	if got := Collect(queue, 9, size, 3, 1000); len(got) != 3 || got[0] != 9 {
		t.Fatalf("op bound: %v", got)
	}
	// The byte bound: stops once the sizes reach it.
	if got := Collect(queue, 1, size, 100, 3); len(got) != 3 {
		t.Fatalf("byte bound: %v", got)
	}
	// Never waits for more.
	if got := Collect(queue, 0, size, 100, 1000); len(got) != 2 {
		t.Fatalf("what is queued: %v", got)
	}
	queue <- 7
	queue <- 8
	var refused []int
	Refuse(queue, func(n int) { refused = append(refused, n) })
	if len(refused) != 2 || len(queue) != 0 {
		t.Fatalf("refused %v, %d left", refused, len(queue))
	}
}

func TestAdmit(t *testing.T) {
	limits := annals.Limits{}.WithDefaults()
	op := &Op{Kind: OpAppend, Stream: "s", Expected: annals.Any, Events: []annals.EventData{
		{Type: "A", Data: []byte("12345")}, {Type: "BB", Data: []byte("1"), Metadata: []byte("{}")},
	}}
	if size, err := Admit(context.Background(), limits, op); err != nil || size != 1+5+2+1+2 {
		t.Fatalf("Admit = %d, %v; want 11 bytes", size, err)
	}
	bad := &Op{Kind: OpAppend, Stream: "", Expected: annals.Any, Events: op.Events}
	if _, err := Admit(context.Background(), limits, bad); !errors.Is(err, annals.ErrInvalidInput) {
		t.Fatalf("Admit of a nameless stream = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Admit(ctx, limits, op); !errors.Is(err, context.Canceled) {
		t.Fatalf("Admit with a cancelled context = %v", err)
	}
}

// A queue's writer answers what it took; once it has stopped, a write
// fails with ErrClosed instead of waiting.
func TestQueueStop(t *testing.T) {
	q := NewQueue(annals.Limits{}.WithDefaults(), 4, 2, 1<<20)
	op := func() *Op { return &Op{Kind: OpAppend, Stream: "s", Expected: annals.Any} }
	go func() {
		for {
			select {
			case first := <-q.Requests():
				group := q.Collect(first)
				for _, r := range group {
					r.Result.LastPosition = 7
				}
				AnswerAll(group)
			case <-q.Quit():
				q.Stopped()
				return
			}
		}
	}()
	if res, err := q.Write(context.Background(), op()); err != nil || res.LastPosition != 7 {
		t.Fatalf("answered write = %+v, %v", res, err)
	}
	q.Stop()
	q.Stop() // again: no panic
	if _, err := q.Write(context.Background(), op()); !errors.Is(err, annals.ErrClosed) {
		t.Fatalf("write after Stop = %v, want ErrClosed", err)
	}
}
