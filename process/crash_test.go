package process_test

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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/embedded"
	"github.com/annals/annals/process"
	"github.com/google/uuid"
)

// The crash test runs the manager as a child process (this test binary,
// started with childEnv set to the embedded store's directory) and kills
// it with SIGKILL at random moments while it sends: no deferred code runs
// in the child, so what survives is what the store acknowledged.
const (
	childEnv        = "ANNALS_PROCESS_CHILD"
	crashKills      = 20
	crashKillsShort = 5
	crashBoxes      = 200
	childDone       = "done"
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

// runChild runs the purge manager on the store in dir until its instance
// is done, printing "sent" before each command it sends.
func runChild(dir string) error {
	s, err := embedded.Open(dir, embedded.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer s.Close()
	var sent atomic.Int64
	d := routes(boxHandler(s), &sent)
	route := d["box"]
	inner := route.Send
	route.Send = func(ctx context.Context, stream string, data json.RawMessage, key uuid.UUID) error {
		fmt.Println("sent")
		return inner(ctx, stream, data, key)
	}
	d["box"] = route
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	// A child killed holding the lease is taken over a time to live
	// after: keep it short.
	go func() {
		done <- purgeManager(process.Policy{InFlight: 8}).Run(ctx, s, d, process.Options{LeaseTTL: 300 * time.Millisecond})
	}()
	// Done once the manager's stream records the instance's end (written
	// after the instance's own Done record).
	for rep, _ := process.Inspect(ctx, s, "purge"); rep.Finished == 0; rep, _ = process.Inspect(ctx, s, "purge") {
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

// TestCrash: killed at random moments while it purges 200 boxes, and run
// again each time, the manager purges every box exactly once and ends
// done.
func TestCrash(t *testing.T) {
	kills := crashKills
	if testing.Short() {
		kills = crashKillsShort
	}
	dir := t.TempDir()
	s, err := embedded.Open(dir, embedded.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	boxes := make([]string, crashBoxes)
	for i := range boxes {
		boxes[i] = fmt.Sprintf("box-%d", i)
	}
	fill(t, boxHandler(s), boxes)
	request(t, s, "crash", boxes)
	s.Close()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	killed := 0
	for killed < kills {
		cmd, lines := startChild(t, dir)
		after, seen, finished := 1+rng.IntN(crashBoxes/kills), 0, false
		for line := range lines {
			if line == childDone {
				finished = true
				break
			}
			if seen++; seen >= after {
				break
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if finished {
			break
		}
		killed++
	}
	t.Logf("killed %d times", killed)
	if killed < kills {
		t.Fatalf("the purge finished after %d kills, before %d", killed, kills)
	}
	s, err = embedded.Open(dir, embedded.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	before := strings.Count(types(t, s, "process.purge-crash"), "process.StepDone")
	s.Close()
	t.Logf("%d of %d steps answered before the last run", before, crashBoxes)
	if before == 0 {
		t.Error("no step was answered in the killed runs")
	}
	cmd, lines := startChild(t, dir) // the last run, to the end
	for range lines {
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the last run: %v", err)
	}
	s, err = embedded.Open(dir, embedded.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, b := range boxes {
		if got := types(t, s, b); got != "ItemsDone BoxPurged" {
			t.Errorf("%s: %s, want one purge", b, got)
		}
	}
	if got := types(t, s, "process.purge-crash"); !strings.HasSuffix(got, "process.Done") || strings.Count(got, "process.StepDone") != crashBoxes {
		t.Errorf("the instance: %d StepDone, ends %q", strings.Count(got, "process.StepDone"), got[max(0, len(got)-40):])
	}
	var ends int
	for ev, err := range s.ReadStream(context.Background(), "process.purge", annals.ReadStreamOptions{}) {
		if err == nil && strings.Contains(string(ev.Data), `"Finished"`) {
			ends++
		}
	}
	if ends != 1 {
		t.Errorf("the manager's stream records %d ends of the instance", ends)
	}
}
