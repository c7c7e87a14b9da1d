package command

import (
	"context"
	"errors"
	"slices"

	"github.com/annals/annals"
	"github.com/google/uuid"
)

// loaded is a stream as a command sees it.
type loaded[S any] struct {
	state    S
	revision annals.ExpectedRevision // NoStream or Exact(last revision)
	// lastID is the id of the event at revision.
	lastID uuid.UUID
	// repeat is where the command's id was found, if it was.
	repeat *commandRecord
	// read is the number of events folded after the snapshot the load
	// started from (all of them without one).
	read uint64
	// recent are the latest commands of the stream, kept for the next
	// snapshot (only with snapshots).
	recent []commandRecord
}

// commandRecord says which revisions a command's events hold.
type commandRecord struct {
	ID    uuid.UUID       `json:"id"`
	First annals.Revision `json:"first"`
	Last  annals.Revision `json:"last"`
}

// resume is where a fold starts instead of the start of the stream: a
// state that reflects the stream up to revision, whose event there has id
// eventID. The fold checks that event before it trusts the state.
type resume[S any] struct {
	state    S
	revision annals.Revision
	eventID  uuid.UUID
	recent   []commandRecord
	repeat   *commandRecord
	read     uint64
}

// load reads stream from the store and looks for command id on the way:
// after a conflict, only the events since prev; else from the latest
// usable snapshot; else from the start.
func (h *Handler[S, C, E]) load(ctx context.Context, stream string, id uuid.UUID, prev *loaded[S]) (loaded[S], error) {
	if prev != nil {
		if r, ok := prev.revision.Revision(); ok {
			from := resume[S]{state: prev.state, revision: r, eventID: prev.lastID,
				recent: prev.recent, repeat: prev.repeat, read: prev.read}
			l, ok, err := h.fold(ctx, stream, id, &from)
			if err != nil || ok {
				return l, err
			}
			// The stream was deleted or truncated since: load it anew.
		}
	}
	if h.Snapshots != nil {
		if snap, ok := h.readSnapshot(ctx, stream); ok {
			from := resume[S]{state: snap.state, revision: snap.Revision, eventID: snap.EventID,
				recent: slices.Clone(snap.Commands)}
			for i := range snap.Commands {
				if id != (uuid.UUID{}) && snap.Commands[i].ID == id {
					r := snap.Commands[i]
					from.repeat = &r
				}
			}
			l, ok, err := h.fold(ctx, stream, id, &from)
			if err != nil || ok {
				return l, err
			}
			// The snapshot does not describe the stream as it is (deleted
			// and written again, truncated): ignore it.
		}
	}
	l, _, err := h.fold(ctx, stream, id, nil)
	return l, err
}

// fold folds stream's events into state, after from if not nil. ok is
// false when from does not match the stream: the event it names is not at
// the revision it names.
func (h *Handler[S, C, E]) fold(ctx context.Context, stream string, id uuid.UUID, from *resume[S]) (_ loaded[S], ok bool, _ error) {
	l := loaded[S]{revision: annals.NoStream}
	var start annals.Revision = annals.Start
	if from != nil {
		l.state, start = from.state, from.revision
		l.recent, l.repeat, l.read = from.recent, from.repeat, from.read
	} else {
		l.state = h.Decider.Initial()
	}

	// run is the command whose events are being read.
	var run commandRecord
	inRun := false
	endRun := func() {
		if !inRun {
			return
		}
		inRun = false
		if id != (uuid.UUID{}) && run.ID == id {
			r := run
			l.repeat = &r
		}
		if h.Snapshots != nil {
			l.recent = append(l.recent, run)
			if len(l.recent) > 2*SnapshotCommands {
				l.recent = slices.Clone(l.recent[len(l.recent)-SnapshotCommands:])
			}
		}
	}

	first := true
	for ev, err := range h.Store.ReadStream(ctx, stream, annals.ReadStreamOptions{From: start}) {
		if errors.Is(err, annals.ErrStreamNotFound) {
			// No events: a stream never written, or deleted (then what
			// was folded before is of no use).
			return loaded[S]{state: h.Decider.Initial(), revision: annals.NoStream}, from == nil, nil
		}
		if err != nil {
			return l, false, err
		}
		if first && from != nil {
			first = false
			if ev.Revision != from.revision || ev.ID != from.eventID {
				return l, false, nil
			}
			l.revision, l.lastID = annals.Exact(ev.Revision), ev.ID
			continue // already in the state
		}
		first = false

		cid, has := CommandID(ev.Metadata)
		if has && inRun && run.ID == cid && run.Last+1 == ev.Revision {
			run.Last = ev.Revision
		} else {
			endRun()
			if has {
				run, inRun = commandRecord{ID: cid, First: ev.Revision, Last: ev.Revision}, true
			}
		}

		e, ok, err := h.Codec.Decode(ev)
		if err != nil {
			return l, false, err
		}
		if ok {
			l.state = h.Decider.Evolve(l.state, e)
		}
		l.read++
		l.revision, l.lastID = annals.Exact(ev.Revision), ev.ID
	}
	endRun()
	if first && from != nil {
		return l, false, nil // from names an event the stream does not show
	}
	return l, true, nil
}
