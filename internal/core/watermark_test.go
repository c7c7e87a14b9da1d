package core

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/annals/annals"
)

type waitResult struct {
	pos annals.Position
	err error
}

// waitAsync runs Wait in a goroutine.
func waitAsync(ctx context.Context, w *Watermark, after annals.Position) <-chan waitResult {
	ch := make(chan waitResult, 1)
	go func() {
		p, err := w.Wait(ctx, after)
		ch <- waitResult{p, err}
	}()
	return ch
}

// blocked checks that a waiter has not returned yet.
func blocked(t *testing.T, ch <-chan waitResult) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("Wait returned early: %+v", r)
	case <-time.After(20 * time.Millisecond):
	}
}

func receive(t *testing.T, ch <-chan waitResult) waitResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Minute): // a hang guard
		t.Fatal("Wait did not return")
		return waitResult{}
	}
}

func TestWatermarkLoad(t *testing.T) {
	w := NewWatermark(5)
	if got := w.Load(); got != 5 {
		t.Fatalf("Load = %d, want 5", got)
	}
	w.Advance(5) // no move: fine
	w.Advance(8)
	if got := w.Load(); got != 8 {
		t.Fatalf("Load = %d, want 8", got)
	}
}

func TestWatermarkWaitAlreadyPast(t *testing.T) {
	tests := []struct {
		name  string
		start annals.Position
		after annals.Position
	}{
		{"behind", 5, 3},
		{"just behind", 5, 4},
		{"from zero", 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWatermark(tt.start)
			// A cancelled context must not matter: the position is there.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			p, err := w.Wait(ctx, tt.after)
			if err != nil || p != tt.start {
				t.Fatalf("Wait = %d, %v; want %d, nil", p, err, tt.start)
			}
		})
	}
}

func TestWatermarkAdvanceWakes(t *testing.T) {
	w := NewWatermark(3)
	ctx := context.Background()
	// Several waiters at and after the current position.
	at3 := waitAsync(ctx, w, 3)
	at3b := waitAsync(ctx, w, 3)
	at4 := waitAsync(ctx, w, 4)
	blocked(t, at3)

	w.Advance(4)
	for _, ch := range []<-chan waitResult{at3, at3b} {
		if r := receive(t, ch); r.err != nil || r.pos != 4 {
			t.Fatalf("Wait = %+v, want 4", r)
		}
	}
	// Waiting for more than 4: woken, but not satisfied yet.
	blocked(t, at4)
	w.Advance(6)
	if r := receive(t, at4); r.err != nil || r.pos != 6 {
		t.Fatalf("Wait = %+v, want 6", r)
	}
}

func TestWatermarkContextCancel(t *testing.T) {
	w := NewWatermark(3)
	ctx, cancel := context.WithCancel(context.Background())
	ch := waitAsync(ctx, w, 3)
	blocked(t, ch)
	cancel()
	if r := receive(t, ch); !errors.Is(r.err, context.Canceled) || r.pos != 0 {
		t.Fatalf("Wait = %+v, want context.Canceled", r)
	}

	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer dcancel()
	if _, err := w.Wait(dctx, 3); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v, want context.DeadlineExceeded", err)
	}
}

func TestWatermarkClose(t *testing.T) {
	w := NewWatermark(3)
	ctx := context.Background()
	a, b := waitAsync(ctx, w, 3), waitAsync(ctx, w, 10)
	blocked(t, a)
	w.Close()
	for _, ch := range []<-chan waitResult{a, b} {
		if r := receive(t, ch); !errors.Is(r.err, annals.ErrClosed) {
			t.Fatalf("Wait = %+v, want ErrClosed", r)
		}
	}
	// Later waits fail at once, and Close is idempotent.
	w.Close()
	if _, err := w.Wait(ctx, 3); !errors.Is(err, annals.ErrClosed) {
		t.Fatalf("Wait after Close = %v, want ErrClosed", err)
	}
	// What is durable stays readable.
	if p, err := w.Wait(ctx, 2); err != nil || p != 3 {
		t.Fatalf("Wait(2) after Close = %d, %v; want 3, nil", p, err)
	}
	if got := w.Load(); got != 3 {
		t.Fatalf("Load after Close = %d, want 3", got)
	}
}

func TestWatermarkAdvanceBackwardsPanics(t *testing.T) {
	w := NewWatermark(5)
	defer func() {
		if recover() == nil {
			t.Fatal("Advance backwards did not panic")
		}
		if got := w.Load(); got != 5 {
			t.Fatalf("Load = %d after a refused Advance, want 5", got)
		}
	}()
	w.Advance(4)
}

// TestWatermarkConcurrent has many waiters follow one advancing writer; run
// with -race.
func TestWatermarkConcurrent(t *testing.T) {
	const final = 500
	w := NewWatermark(0)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var seen annals.Position
			for seen < final {
				p, err := w.Wait(ctx, seen)
				if err != nil {
					errs <- err
					return
				}
				if p <= seen {
					errs <- errors.New("Wait returned a position not past after")
					return
				}
				seen = p
			}
		}()
	}
	for p := annals.Position(1); p <= final; p++ {
		w.Advance(p)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Minute): // a hang guard
		t.Fatal("waiters did not reach the final position")
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
