package dcb_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/demo/dcb"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/memory"
)

// race runs n calls of fn at once and returns their errors.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = fn(i) }()
	}
	wg.Wait()
	return errs
}

func count(errs []error, target error) (ok, matched int, other error) {
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, target):
			matched++
		default:
			other = err
		}
	}
	return ok, matched, other
}

// slowAppends holds each append back a moment, so that racing decisions
// all read before the first of them appends: without the condition
// checked at the append, more than one would win.
type slowAppends struct{ annals.Store }

func (s slowAppends) AppendMulti(ctx context.Context, m annals.MultiAppend) (annals.MultiAppendResult, error) {
	time.Sleep(5 * time.Millisecond)
	return s.Store.AppendMulti(ctx, m)
}

// TestExamples races each example's decisions on every store.
func TestExamples(t *testing.T) {
	for _, kind := range teststores.Kinds {
		t.Run(kind, func(t *testing.T) {
			s := slowAppends{teststores.Open(t, kind)}
			t.Run("CourseCapacity", func(t *testing.T) { testCourseCapacity(t, s) })
			t.Run("StudentLimit", func(t *testing.T) { testStudentLimit(t, s) })
			t.Run("Username", func(t *testing.T) { testUsername(t, s) })
			t.Run("Invoices", func(t *testing.T) { testInvoices(t, s) })
		})
	}
}

func testCourseCapacity(t *testing.T, s annals.Store) {
	ctx := context.Background()
	if err := dcb.DefineCourse(ctx, s, "c1", 5); err != nil {
		t.Fatal(err)
	}
	errs := race(20, func(i int) error {
		_, err := dcb.Subscribe(ctx, s, "c1", fmt.Sprintf("s%d", i))
		return err
	})
	if ok, full, other := count(errs, dcb.ErrCourseFull); ok != 5 || full != 15 || other != nil {
		t.Fatalf("20 students for 5 places: %d subscribed, %d refused as full, other error %v", ok, full, other)
	}
}

func testStudentLimit(t *testing.T, s annals.Store) {
	ctx := context.Background()
	courses := []string{"m1", "m2", "m3", "m4", "m5"}
	for _, c := range courses {
		if err := dcb.DefineCourse(ctx, s, c, 100); err != nil {
			t.Fatal(err)
		}
	}
	errs := race(len(courses), func(i int) error {
		_, err := dcb.Subscribe(ctx, s, courses[i], "busy")
		return err
	})
	if ok, limited, other := count(errs, dcb.ErrTooManyCourse); ok != dcb.StudentCourseLimit || limited != 2 || other != nil {
		t.Fatalf("one student, 5 courses at once: %d subscribed, %d refused, other error %v", ok, limited, other)
	}
}

func testUsername(t *testing.T, s annals.Store) {
	ctx := context.Background()
	errs := race(16, func(i int) error {
		_, err := dcb.ClaimUsername(ctx, s, fmt.Sprintf("u%d", i), "ann")
		return err
	})
	if ok, taken, other := count(errs, dcb.ErrUsernameTaken); ok != 1 || taken != 15 || other != nil {
		t.Fatalf("16 claims of one name: %d won, %d refused, other error %v", ok, taken, other)
	}
}

func testInvoices(t *testing.T, s annals.Store) {
	ctx := context.Background()
	const n = 30
	numbers := make([]int, n)
	errs := race(n, func(i int) (err error) {
		numbers[i], err = dcb.CreateInvoice(ctx, s, fmt.Sprintf("customer-%d", i))
		return err
	})
	if _, _, other := count(errs, nil); other != nil {
		t.Fatal(other)
	}
	slices.Sort(numbers)
	for i, got := range numbers {
		if got != i+1 {
			t.Fatalf("invoice numbers %v: want 1..%d, each once", numbers, n)
		}
	}
}

func Example() {
	ctx := context.Background()
	s := memory.New(memory.Options{})
	defer s.Close()

	dcb.DefineCourse(ctx, s, "go-101", 1)
	_, err := dcb.Subscribe(ctx, s, "go-101", "ann")
	fmt.Println("ann:", err)
	_, err = dcb.Subscribe(ctx, s, "go-101", "bob")
	fmt.Println("bob:", err)

	_, err = dcb.ClaimUsername(ctx, s, "user-1", "ann")
	fmt.Println("claim ann:", err)
	_, err = dcb.ClaimUsername(ctx, s, "user-2", "ann")
	fmt.Println("claim ann again:", err)

	for _, customer := range []string{"acme", "globex"} {
		n, _ := dcb.CreateInvoice(ctx, s, customer)
		fmt.Println("invoice", n, "for", customer)
	}
	// Output:
	// ann: <nil>
	// bob: dcb: the course is full
	// claim ann: <nil>
	// claim ann again: dcb: the username is taken
	// invoice 1 for acme
	// invoice 2 for globex
}
