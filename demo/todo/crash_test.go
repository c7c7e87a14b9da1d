package todo_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/command"
	"github.com/annals/annals/demo/todo"
	"github.com/annals/annals/embedded"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/process"
	"github.com/google/uuid"
)

// The crash test runs the purge's manager as a child process (this test
// binary, started with childEnv set to the embedded store's directory)
// and kills it with SIGKILL at random moments while it sends: no deferred
// code runs in the child, so what survives is what the store acknowledged.
const (
	childEnv        = "ANNALS_TODO_CHILD"
	crashKills      = 20
	crashKillsShort = 5
	crashUsers      = 200
	crashTodos      = 4
	crashRequest    = "crash"
	childDone       = "done"
	// childLeaseTTL is short: each child killed holds the lease, and the
	// next waits that long to take it over.
	childLeaseTTL = 200 * time.Millisecond
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		if err := runChild(dir); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func openStore(dir string) (*embedded.Store, error) {
	return embedded.Open(dir, embedded.Options{Logger: slog.New(slog.DiscardHandler)})
}

// runChild runs the purges manager on the store in dir until the crash
// request is done, printing "sent" before each command it sends.
func runChild(dir string) error {
	s, err := openStore(dir)
	if err != nil {
		return err
	}
	defer s.Close()
	routes := todo.PurgeRoutes(&command.Handler[todo.List, todo.Command, todo.Event]{Store: s, Codec: todo.Codec, Decider: todo.Decider})
	route := routes[todo.PurgeCommand]
	inner := route.Send
	route.Send = func(ctx context.Context, stream string, data json.RawMessage, key uuid.UUID) error {
		fmt.Println("sent")
		return inner(ctx, stream, data, key)
	}
	routes[todo.PurgeCommand] = route
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- todo.Purges(8).Run(ctx, s, routes, process.Options{LeaseTTL: childLeaseTTL})
	}()
	// Done once the manager's stream records the instance's end (written
	// after the instance's own Done record).
	for rep, _ := process.Inspect(ctx, s, "purges"); rep.Finished == 0; rep, _ = process.Inspect(ctx, s, "purges") {
		select {
		case err := <-done:
			return err
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		return err
	}
	fmt.Println(childDone)
	return nil
}

// startChild starts the child on dir; lines carries what it prints.
func startChild(t *testing.T, dir string) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		io.Copy(io.Discard, out)
	}()
	return cmd, lines
}

// completeLate stands for users who complete a todo after their list was
// purged: between two runs, each list purged and not yet touched gets its
// todo "1" completed. A purge command applied twice would purge it too
// and show as a second purge event; applied once, it stays completed. It
// returns the lists purged whose step the instance has not recorded as
// answered: those the next run sends again.
func completeLate(t *testing.T, dir string, users []string, late map[string]bool) (unanswered int) {
	t.Helper()
	s, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	h := &command.Handler[todo.List, todo.Command, todo.Event]{Store: s, Codec: todo.Codec, Decider: todo.Decider}
	purged := 0
	for _, user := range users {
		if _, _, err := todo.VerifyPurged(ctx, s, user, crashTodos); err != nil {
			continue // not purged yet
		}
		purged++
		if !late[user] {
			if _, err := h.Handle(ctx, todo.Stream(user), todo.CompleteTodo{ID: "1"}); err != nil {
				t.Fatal(err)
			}
			late[user] = true
		}
	}
	return purged - strings.Count(teststores.Types(t, s, "process.purges-"+crashRequest), "process.StepDone")
}

// killRuns runs the child kills times, killing each at a random send, and
// completes todos late after each kill. It returns how many purges the
// runs killed had applied without recording their answer.
func killRuns(t *testing.T, dir string, users []string, kills int, late map[string]bool) (unanswered int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for killed := 0; killed < kills; killed++ {
		cmd, lines := startChild(t, dir)
		after, seen := 1+rng.IntN(crashUsers/kills), 0
		for line := range lines {
			if line == childDone {
				cmd.Wait()
				t.Fatalf("the purge finished after %d kills, before %d", killed, kills)
			}
			if seen++; seen >= after {
				break
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		unanswered += completeLate(t, dir, users, late)
	}
	return unanswered
}

// TestCrash: killed at random moments while it purges 200 users' lists,
// and run again each time, the manager purges every list exactly once
// (users complete todos after their purge meanwhile, which a purge
// applied twice would take), and the instance ends done, once.
func TestCrash(t *testing.T) {
	kills := crashKills
	if testing.Short() {
		kills = crashKillsShort
	}
	dir := t.TempDir()
	s, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	users := make([]string, crashUsers)
	for i := range users {
		users[i] = fmt.Sprintf("user%03d", i)
	}
	if err := todo.Seed(context.Background(), s, users, crashTodos); err != nil {
		t.Fatal(err)
	}
	if err := todo.Request(context.Background(), s, crashRequest, users); err != nil {
		t.Fatal(err)
	}
	s.Close()
	late := map[string]bool{}
	unanswered := killRuns(t, dir, users, kills, late)
	t.Logf("killed %d times: %d lists purged before the last run (todos completed late in each), %d purges applied but not yet answered at a kill, summed over the kills", kills, len(late), unanswered)
	if len(late) == 0 {
		t.Error("no list was purged in the killed runs")
	}
	cmd, lines := startChild(t, dir) // the last run, to the end
	for range lines {
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the last run: %v", err)
	}
	verifyCrash(t, dir, users, late)
}

// verifyCrash replays every list and the manager's streams after the
// last run.
func verifyCrash(t *testing.T, dir string, users []string, late map[string]bool) {
	t.Helper()
	s, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, user := range users {
		_, left, err := todo.VerifyPurged(context.Background(), s, user, crashTodos)
		if err != nil {
			t.Error(err)
		} else if want := map[bool]int{true: 1}[late[user]]; left != want {
			t.Errorf("%s: %d todos left completed, want %d", user, left, want)
		}
	}
	got := teststores.Types(t, s, "process.purges-"+crashRequest)
	if !strings.HasSuffix(got, "process.Done") || strings.Count(got, "process.StepDone") != len(users) {
		t.Errorf("the instance: %d StepDone, ends %q", strings.Count(got, "process.StepDone"), got[max(0, len(got)-40):])
	}
	var ends int
	for ev, err := range s.ReadStream(context.Background(), "process.purges", annals.ReadStreamOptions{}) {
		if err == nil && strings.Contains(string(ev.Data), `"Finished"`) {
			ends++
		}
	}
	if ends != 1 {
		t.Errorf("the manager's stream records %d ends of the instance", ends)
	}
}
