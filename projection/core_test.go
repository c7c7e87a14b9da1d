package projection

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// move is one input of a scenario and what the core must answer: the
// phase after it, the refusal (nil: accepted) and whether a failed
// projector is to be run again.
type move struct {
	in     input
	want   phase
	refuse error
	retry  bool
}

// play runs moves from phase from and checks each answer.
func play(t *testing.T, from phase, moves []move) {
	t.Helper()
	m := machine{ph: from}
	for i, mv := range moves {
		before := m.ph
		e := m.on(mv.in)
		if !errors.Is(e.refuse, mv.refuse) || (mv.refuse == nil) != (e.refuse == nil) {
			t.Fatalf("move %d: %s in %s refused with %v, want %v", i, mv.in, before, e.refuse, mv.refuse)
		}
		if e.refused() && m.ph != before {
			t.Fatalf("move %d: %s in %s refused, but moved to %s", i, mv.in, before, m.ph)
		}
		if m.ph != mv.want || e.retry != mv.retry {
			t.Fatalf("move %d: %s in %s: %s (retry %v), want %s (retry %v)", i, mv.in, before, m.ph, e.retry, mv.want, mv.retry)
		}
	}
}

// scenario is a run of moves from a phase.
type scenario struct {
	name  string
	from  phase
	moves []move
}

// playAll plays each scenario as a subtest.
func playAll(t *testing.T, scenarios []scenario) {
	for _, tc := range scenarios {
		t.Run(tc.name, func(t *testing.T) { play(t, tc.from, tc.moves) })
	}
}

// The races of the projector's actions, as the core sees them: each
// scenario is an interleaving the I/O can produce.
func TestCoreScenarios(t *testing.T) {
	playAll(t, []scenario{
		{"start, lease, stop", phStopped, []move{
			{in: inRun, want: phRunning}, {in: inWait, want: phStandby}, {in: inLease, want: phRunning},
			{in: inEnd, want: phStopped}}},
		{"a reset during a rebuild gives the rebuild up and replays", phBuilding, []move{
			// Reset gives the rebuild up before its transaction.
			{in: inGiveUp, want: phRunning}, {in: inReset, want: phReplaying},
			{in: inRebuild, want: phReplaying, refuse: ErrRebuilding},
			{in: inCaughtUp, want: phRunning}, {in: inRebuild, want: phBuilding}}},
		{"a reset committed while a rebuild was being asked refuses it in the applier", phRunning, []move{
			// RebuildWith checked in running; the applier served the reset first.
			{in: inReset, want: phReplaying}, {in: inRebuild, want: phReplaying, refuse: ErrRebuilding}}},
		{"a rebuild of a paused projector switches only after resume", phRunning, []move{
			{in: inPause, want: phPaused}, {in: inRebuild, want: phPausedBuilding},
			{in: inRebuild, want: phPausedBuilding, refuse: ErrRebuilding},
			{in: inResume, want: phBuilding}, {in: inSwitch, want: phRunning}}},
		{"a pause while the switch is under way", phBuilding, []move{
			{in: inPause, want: phPausedBuilding}, {in: inSwitch, want: phPaused}, {in: inResume, want: phRunning}}},
		{"the lease lost mid-rebuild gives the rebuild up and waits", phBuilding, []move{
			{in: inLeaseLost, want: phRunning}, {in: inGiveUp, want: phRunning},
			{in: inWait, want: phStandby}, {in: inRebuild, want: phStandby, refuse: ErrStandby},
			{in: inLease, want: phRunning}}},
		{"the lease lost while paused mid-rebuild", phPausedBuilding, []move{
			{in: inGiveUp, want: phPaused}, {in: inLeaseLost, want: phRunning}}},
		{"the lease lost mid-replay keeps the replay", phReplaying, []move{
			{in: inLeaseLost, want: phReplaying}, {in: inWait, want: phStandbyReset},
			{in: inReset, want: phStandbyReset, refuse: ErrStandby}, {in: inLease, want: phReplaying}}},
		{"a paused projector waiting for the lease is on standby", phPaused, []move{
			{in: inWait, want: phStandby}, {in: inResume, want: phStandby, refuse: ErrStandby}}},
		{"pause, resume and rebuild of a failed projector", phFailed, []move{
			{in: inPause, want: phFailed, refuse: ErrFailed}, {in: inRebuild, want: phFailed, refuse: ErrFailed},
			{in: inResume, want: phFailed, retry: true}, {in: inRun, want: phRunning}}},
		{"a reset of a failed projector runs it again from the start", phFailed, []move{
			{in: inReset, want: phFailedReset, retry: true}, {in: inPause, want: phFailedReset, refuse: ErrFailed},
			{in: inRun, want: phReplaying}, {in: inCaughtUp, want: phRunning}}},
		{"a resume of a failed replay replays again", phReplaying, []move{
			{in: inFail, want: phFailedReset}, {in: inEnd, want: phFailedReset},
			{in: inResume, want: phFailedReset, retry: true}, {in: inRun, want: phReplaying}}},
		{"a rebuild failing with the run", phBuilding, []move{
			{in: inFail, want: phFailed}, {in: inGiveUp, want: phFailed}, {in: inEnd, want: phFailed}}},
		{"a reset of a stopped projector replays when it runs", phStopped, []move{
			{in: inPause, want: phStopped, refuse: ErrNotRunning}, {in: inReset, want: phStoppedReset},
			{in: inRun, want: phReplaying}, {in: inEnd, want: phStoppedReset}, {in: inRun, want: phReplaying}}},
		{"a reset of a paused projector waits for resume", phPaused, []move{
			{in: inReset, want: phPausedReplaying}, {in: inRebuild, want: phPausedReplaying, refuse: ErrRebuilding},
			{in: inResume, want: phReplaying}, {in: inReset, want: phReplaying}}},
		{"a stop forgets the pause", phPausedReplaying, []move{
			{in: inEnd, want: phStoppedReset}, {in: inResume, want: phStoppedReset, refuse: ErrNotRunning}}},
	})
}

// The applier switches only between two batches: with a batch in hand
// it applies it first; paused, it applies nothing, switch included.
func TestCoreSwitchWaitsForTheBatch(t *testing.T) {
	for _, tc := range []struct {
		ph      phase
		inHand  int
		want    work
		builder bool
	}{
		{phBuilding, 3, workApply, true},
		{phBuilding, 0, workIdle, true},
		{phPausedBuilding, 0, workPaused, false},
		{phPausedBuilding, 3, workPaused, false},
		{phRunning, 0, workIdle, false},
		{phPausedReplaying, 1, workPaused, false},
		{phReplaying, 1, workApply, false},
	} {
		m := machine{ph: tc.ph}
		if got := m.work(tc.inHand); got != tc.want || m.awaitsBuilder() != tc.builder {
			t.Errorf("%s with %d in hand: work %d, awaits the builder %v; want %d, %v",
				tc.ph, tc.inHand, got, m.awaitsBuilder(), tc.want, tc.builder)
		}
	}
}

// The table answers the actions as docs/projections.md ("Actions by
// state") says, by the state Status reports.
func TestCoreActionsByState(t *testing.T) {
	ok := error(nil)
	want := map[State]map[input]error{
		Running:    {inPause: ok, inResume: ok, inReset: ok, inRebuild: ok, inReplayParked: ok},
		Paused:     {inPause: ok, inResume: ok, inReset: ok, inReplayParked: ok},
		Rebuilding: {inPause: ok, inResume: ok, inReset: ok, inRebuild: ErrRebuilding, inReplayParked: ok},
		Standby: {inPause: ErrStandby, inResume: ErrStandby, inReset: ErrStandby, inRebuild: ErrStandby,
			inReplayParked: ErrStandby},
		Stopped: {inPause: ErrNotRunning, inResume: ErrNotRunning, inReset: ok, inRebuild: ErrNotRunning,
			inReplayParked: ok},
		Failed: {inPause: ErrFailed, inResume: ok, inReset: ok, inRebuild: ErrFailed, inReplayParked: ok},
	}
	for ph := range phases {
		for in, refuse := range want[ph.public()] {
			if ph.public() == Paused && in == inRebuild {
				// Paused: a rebuild starts, except during the replay
				// after a reset or a rebuild.
				refuse = map[phase]error{phPausedReplaying: ErrRebuilding, phPausedBuilding: ErrRebuilding}[ph]
			}
			got := step(ph, in).refuse
			if !errors.Is(got, refuse) || (got == nil) != (refuse == nil) {
				t.Errorf("%s in %s (%s): refused with %v, want %v", in, ph, ph.public(), got, refuse)
			}
		}
	}
}

// Invariants of the table: a run's end leaves no phase of a run; a run
// begun (where none runs: runMu) is in a phase of a run; an action
// asked of a failed projector runs it again only if it stays failed; a
// rebuild ends (switch, give-up) only where one is in progress.
func TestCoreTable(t *testing.T) {
	notRun := map[phase]bool{phStopped: true, phStoppedReset: true, phFailed: true, phFailedReset: true}
	for ph := range phases {
		if ph.String() == "" || ph.public().String() == "unknown" {
			t.Errorf("phase %d has no name or state", ph)
		}
		if to := step(ph, inEnd).to; !notRun[to] {
			t.Errorf("end in %s: %s, a phase of a run", ph, to)
		}
		if e := step(ph, inRun); notRun[ph] && notRun[e.to] {
			t.Errorf("run in %s: %s", ph, e.to)
		}
		for in := range inputs {
			e := step(ph, in)
			if e.retry && !notRun[e.to] {
				t.Errorf("%s in %s retries, but moves to %s", in, ph, e.to)
			}
			building := ph == phBuilding || ph == phPausedBuilding
			if (in == inSwitch || in == inGiveUp) && !building && e.to != ph {
				t.Errorf("%s in %s, with no rebuild, moved to %s", in, ph, e.to)
			}
		}
	}
}

// docs/design.md ("The projector") shows the table as it is.
func TestCoreTableDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/design.md")
	if err != nil {
		t.Fatal(err)
	}
	columns := [][]input{{inRun}, {inAwait}, {inWait}, {inLease}, {inLeaseLost}, {inEnd}, {inFail}, {inPause},
		{inResume}, {inReset}, {inRebuild}, {inCaughtUp}, {inSwitch, inGiveUp}}
	names := map[error]string{ErrNotRunning: "ErrNotRunning", ErrStandby: "ErrStandby",
		ErrRebuilding: "ErrRebuilding", errReplaying: "ErrRebuilding", ErrFailed: "ErrFailed"}
	cell := func(ph phase, in input) string {
		e := step(ph, in)
		switch {
		case e.refused():
			return names[e.refuse]
		case e.retry && e.to == ph:
			return "run again"
		case e.retry:
			return e.to.String() + ", run again"
		case e.to == ph:
			return ""
		}
		return e.to.String()
	}
	rows := 0
	for line := range strings.Lines(string(doc)) {
		for ph := range phases {
			prefix := fmt.Sprintf("| %s (`%s`) |", ph, ph.public())
			if !strings.HasPrefix(line, prefix) {
				continue
			}
			rows++
			got := strings.Split(strings.TrimSuffix(strings.TrimSpace(line[len(prefix):]), "|"), "|")
			if len(got) != len(columns) {
				t.Fatalf("row %s has %d cells, want %d", ph, len(got), len(columns))
			}
			for i, ins := range columns {
				for _, in := range ins {
					if want := cell(ph, in); strings.TrimSpace(got[i]) != want {
						t.Errorf("%s, %s: the table says %q, the code %q", ph, in, strings.TrimSpace(got[i]), want)
					}
				}
			}
		}
	}
	if rows != int(phases) {
		t.Fatalf("%d rows of phases documented, want %d", rows, phases)
	}
}

// A run on a target with leases is on standby until its first lease is
// held: a caller that sees it running may act on it as the writer.
func TestCoreStandbyUntilLease(t *testing.T) {
	playAll(t, []scenario{
		{"a run begins on standby and runs with the lease", phStopped, []move{
			{in: inAwait, want: phStandby}, {in: inRebuild, want: phStandby, refuse: ErrStandby},
			{in: inPause, want: phStandby, refuse: ErrStandby}, {in: inLease, want: phRunning},
			{in: inRebuild, want: phBuilding}}},
		{"another holds the lease: still on standby", phStopped, []move{
			{in: inAwait, want: phStandby}, {in: inWait, want: phStandby}, {in: inEnd, want: phStopped}}},
		{"a reset waits for the lease to replay", phStoppedReset, []move{
			{in: inAwait, want: phStandbyReset}, {in: inReset, want: phStandbyReset, refuse: ErrStandby},
			{in: inLease, want: phReplaying}}},
		{"a failed projector run again waits for the lease", phFailed, []move{
			{in: inAwait, want: phStandby}, {in: inLease, want: phRunning}}},
		{"a failed reset one run again waits for the lease", phFailedReset, []move{
			{in: inAwait, want: phStandbyReset}, {in: inLease, want: phReplaying}}},
		{"a lease taken before the applier starts, then a pause", phStopped, []move{
			// Start takes the lease; the run's loop reports it again.
			{in: inAwait, want: phStandby}, {in: inLease, want: phRunning},
			{in: inPause, want: phPaused}, {in: inLease, want: phPaused}}},
	})
	for ph := range phases {
		notRun := ph == phStopped || ph == phStoppedReset || ph == phFailed || ph == phFailedReset
		if to := step(ph, inAwait).to; notRun && to.public() != Standby {
			t.Errorf("await in %s: %s (%s), want a standby", ph, to, to.public())
		}
	}
}
