package projection

import (
	"fmt"
	"maps"
	"time"

	"github.com/annals/annals"
)

// The projector's core: what state it is in and what each input does to
// it, with no I/O, no clock and no locking (the Projector serialises the
// calls under its mutex and passes the time). The I/O around it (the
// subscription, the target's transactions, the lease, the builder of a
// rebuild) reports what happened as inputs; the core answers with the
// next state, or refuses the input with the error the caller returns.
//
// Every transition is in the table transitions; docs/design.md
// ("The projector") shows it, and docs/projections.md ("Actions by
// state") is its user's view. The applier's own decisions (which events
// a transaction takes, when to retry, park or give up) are the pure
// functions of plan.go.

// phase is the projector's state: one explicit value, of which State is
// the public view (see public).
type phase uint8

const (
	// phStopped: no run in progress.
	phStopped phase = iota
	// phStoppedReset: no run; a Reset emptied the model, and the next
	// run replays the log (as phReplaying).
	phStoppedReset
	// phStandby: a run waits for the lease another instance holds.
	phStandby
	// phStandbyReset: phStandby, then replaying.
	phStandbyReset
	// phRunning: following the log.
	phRunning
	// phReplaying: following the log from 0 after a Reset, until the
	// subscription has delivered all history.
	phReplaying
	// phBuilding: following the log while a builder builds the next
	// generation (a blue/green rebuild).
	phBuilding
	// phPaused, phPausedReplaying, phPausedBuilding: the same, applying
	// nothing until Resume.
	phPaused
	phPausedReplaying
	phPausedBuilding
	// phFailed: the error policy gave up; no run applies.
	phFailed
	// phFailedReset: phFailed, reset: the next run replays.
	phFailedReset

	phases // how many
)

var phaseNames = [phases]string{"stopped", "stopped-reset", "standby", "standby-reset",
	"running", "replaying", "building", "paused", "paused-replaying", "paused-building",
	"failed", "failed-reset"}

func (ph phase) String() string {
	if ph < phases {
		return phaseNames[ph]
	}
	return fmt.Sprintf("phase(%d)", uint8(ph))
}

// public is the state Status reports.
func (ph phase) public() State {
	switch ph {
	case phStopped, phStoppedReset:
		return Stopped
	case phStandby, phStandbyReset:
		return Standby
	case phRunning:
		return Running
	case phReplaying, phBuilding:
		return Rebuilding
	case phPaused, phPausedReplaying, phPausedBuilding:
		return Paused
	}
	return Failed
}

// input is what happened, or what is asked, as the core sees it.
type input uint8

const (
	// inRun: a run begins (Run, Start, or a failed one run again) on a
	// target without leases: it applies at once.
	inRun input = iota
	// inAwait: a run begins on a target with leases (Leaser): it is on
	// standby until its first lease is held (inLease), so that no caller
	// sees it running, and acts on it, before it is the writer.
	inAwait
	// inWait: the target's lease is held by another instance.
	inWait
	// inLease: this run holds the lease (or the target needs none) and
	// applies.
	inLease
	// inLeaseLost: the lease was lost; the run waits for it again.
	inLeaseLost
	// inEnd: the run ended (its context did).
	inEnd
	// inFail: the error policy gave up (or the store closed).
	inFail
	// inPause, inResume: the actions.
	inPause
	inResume
	// inReset: asked to reset (check), then the reset committed.
	inReset
	// inRebuild: asked to rebuild (check), then the builder started.
	inRebuild
	// inReplayParked: asked to replay the parked events.
	inReplayParked
	// inCaughtUp: the subscription has delivered all history.
	inCaughtUp
	// inSwitch: the rebuild switched to its generation.
	inSwitch
	// inGiveUp: the rebuild was given up (its builder failed, the run
	// ended, a reset came).
	inGiveUp

	inputs // how many
)

var inputNames = [inputs]string{"run", "await", "wait", "lease", "lease-lost", "end", "fail", "pause",
	"resume", "reset", "rebuild", "replay-parked", "caught-up", "switch", "give-up"}

func (in input) String() string {
	if in < inputs {
		return inputNames[in]
	}
	return fmt.Sprintf("input(%d)", uint8(in))
}

// edge is what an input does in a phase: move to to, or, if refuse is
// set, change nothing and answer refuse. retry asks the I/O to run a
// failed projector again (if it owns the run: Start's).
type edge struct {
	to     phase
	refuse error
	retry  bool
}

// go_ and no build the table's cells.
func go_(to phase) edge      { return edge{to: to} }
func no(err error) edge      { return edge{refuse: err} }
func again(to phase) edge    { return edge{to: to, retry: true} }
func (e edge) refused() bool { return e.refuse != nil }

// The refusals shared by the phases of a projector that does not apply.
var (
	notRunning = cells{inPause: no(ErrNotRunning), inResume: no(ErrNotRunning), inRebuild: no(ErrNotRunning)}
	onStandby  = cells{inPause: no(ErrStandby), inResume: no(ErrStandby), inReset: no(ErrStandby),
		inRebuild: no(ErrStandby), inReplayParked: no(ErrStandby)}
	hasFailed = cells{inPause: no(ErrFailed), inRebuild: no(ErrFailed)}
)

// cells is a row of the table: what each input does in one phase.
type cells map[input]edge

// and is the row with the cells of more added.
func (c cells) and(more cells) cells {
	out := make(cells, len(c)+len(more))
	maps.Copy(out, c)
	maps.Copy(out, more)
	return out
}

// transitions is every transition of the projector. A missing cell keeps
// the phase: the input changes nothing there (a resume of a running
// projector, a caught-up while not replaying, a give-up with no rebuild).
var transitions = [phases]cells{
	phStopped: notRunning.and(cells{inRun: go_(phRunning), inAwait: go_(phStandby),
		inReset: go_(phStoppedReset)}),
	phStoppedReset: notRunning.and(cells{inRun: go_(phReplaying), inAwait: go_(phStandbyReset)}),
	phStandby:      onStandby.and(cells{inLease: go_(phRunning), inEnd: go_(phStopped)}),
	phStandbyReset: onStandby.and(cells{inLease: go_(phReplaying), inEnd: go_(phStoppedReset)}),
	phRunning: {
		inWait: go_(phStandby), inEnd: go_(phStopped), inFail: go_(phFailed),
		inPause: go_(phPaused), inReset: go_(phReplaying), inRebuild: go_(phBuilding),
	},
	phReplaying: {
		inWait: go_(phStandbyReset), inEnd: go_(phStoppedReset), inFail: go_(phFailedReset),
		inPause: go_(phPausedReplaying), inRebuild: no(errReplaying), inCaughtUp: go_(phRunning),
	},
	phBuilding: {
		inLeaseLost: go_(phRunning), inEnd: go_(phStopped), inFail: go_(phFailed),
		inPause: go_(phPausedBuilding), inReset: go_(phReplaying), inRebuild: no(ErrRebuilding),
		inSwitch: go_(phRunning), inGiveUp: go_(phRunning),
	},
	phPaused: {
		inWait: go_(phStandby), inLeaseLost: go_(phRunning), inEnd: go_(phStopped), inFail: go_(phFailed),
		inResume: go_(phRunning), inReset: go_(phPausedReplaying), inRebuild: go_(phPausedBuilding),
	},
	phPausedReplaying: {
		inWait: go_(phStandbyReset), inLeaseLost: go_(phReplaying), inEnd: go_(phStoppedReset),
		inFail: go_(phFailedReset), inResume: go_(phReplaying), inRebuild: no(errReplaying),
		inCaughtUp: go_(phPaused),
	},
	phPausedBuilding: {
		inLeaseLost: go_(phRunning), inEnd: go_(phStopped), inFail: go_(phFailed),
		inResume: go_(phBuilding), inReset: go_(phPausedReplaying), inRebuild: no(ErrRebuilding),
		inSwitch: go_(phPaused), inGiveUp: go_(phPaused),
	},
	phFailed: hasFailed.and(cells{inRun: go_(phRunning), inAwait: go_(phStandby),
		inResume: again(phFailed), inReset: again(phFailedReset)}),
	phFailedReset: hasFailed.and(cells{inRun: go_(phReplaying), inAwait: go_(phStandbyReset),
		inResume: again(phFailedReset), inReset: again(phFailedReset)}),
}

// errReplaying refuses a rebuild during the replay after a Reset: the
// builder would only race it.
var errReplaying = fmt.Errorf("%w (replaying after a reset)", ErrRebuilding)

// step is the cell of the table for in in ph.
func step(ph phase, in input) edge {
	if e, ok := transitions[ph][in]; ok {
		return e
	}
	return go_(ph)
}

// machine is the projector's state and what it holds of its checkpoint.
type machine struct {
	ph phase
	// loaded: gen, position and parked hold the stored checkpoint.
	loaded   bool
	gen      uint64          // the active generation
	position annals.Position // the checkpoint held
	parked   uint64
	// replayUntil: events up to here were handled before a Reset (they
	// are replays).
	replayUntil annals.Position
	// runs counts the runs begun, so that a retry can tell that its run
	// has begun.
	runs        uint64
	lastError   string
	lastErrorAt time.Time
	rate        rate
}

// on applies in: the core moves to the table's next phase, or refuses
// in (and changes nothing).
func (m *machine) on(in input) edge {
	e := step(m.ph, in)
	if e.refused() {
		return e
	}
	m.ph = e.to
	if in == inRun || in == inAwait {
		m.runs++
	}
	return e
}

// check is the refusal of in in the current phase, if any, without
// applying it: an action checks before its I/O and applies after it.
func (m *machine) check(in input) error { return step(m.ph, in).refuse }

// paused reports whether the applier must apply nothing.
func (m *machine) paused() bool {
	return m.ph == phPaused || m.ph == phPausedReplaying || m.ph == phPausedBuilding
}

// failed reports a failed projector, reset or not.
func (m *machine) failed() bool { return m.ph == phFailed || m.ph == phFailedReset }

// load takes the stored checkpoint of generation gen.
func (m *machine) load(gen uint64, cp Checkpoint) {
	m.gen, m.position, m.parked, m.loaded = gen, cp.Position, cp.Parked, true
}

// committed takes a committed transaction: the checkpoint moved to pos,
// with parked events in all, applying applied events at now.
func (m *machine) committed(pos annals.Position, parked, applied uint64, now time.Time) {
	m.position, m.parked = pos, parked
	m.rate.add(now, applied)
}

// resetDone takes a committed reset (then inReset): the checkpoint is
// 0, and what was handled before is a replay.
func (m *machine) resetDone() {
	m.replayUntil = max(m.replayUntil, m.position)
	m.position, m.parked = 0, 0
}

// switched takes a committed switch to generation gen (then inSwitch):
// the new generation handled everything up to the checkpoint, as no
// replay.
func (m *machine) switched(gen uint64) {
	m.gen, m.replayUntil = gen, 0
}

// noteError records the last error.
func (m *machine) noteError(msg string, at time.Time) {
	m.lastError, m.lastErrorAt = truncate(msg), at
}

// work is what the applier of a session does next.
type work uint8

const (
	// workPaused: apply nothing; serve the writers' requests (a reset, a
	// replay of parked events) until the phase changes.
	workPaused work = iota
	// workIdle: nothing in hand; wait for a message, a request or, in
	// phBuilding, the rebuild's builder (the switch comes only here,
	// between two batches).
	workIdle
	// workApply: apply the messages in hand.
	workApply
)

// work decides the applier's next step, holding inHand messages.
func (m *machine) work(inHand int) work {
	switch {
	case m.paused():
		return workPaused
	case inHand == 0:
		return workIdle
	}
	return workApply
}

// awaitsBuilder reports whether an idle applier listens to the rebuild's
// builder (its catching up, its end).
func (m *machine) awaitsBuilder() bool { return m.ph == phBuilding }
