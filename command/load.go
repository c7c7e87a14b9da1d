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
	ID    uuid.UUID `json:"id"`
	First uint64    `json:"first"`
	Last  uint64    `json:"last"`
}

// load reads stream from the store, from its latest usable snapshot, and
// looks for command id on the way.
func (h *Handler[S, C, E]) load(ctx context.Context, stream string, id uuid.UUID) (loaded[S], error) {
	if h.Snapshots != nil {
		if snap, ok := h.readSnapshot(ctx, stream); ok {
			l, ok, err := h.fold(ctx, stream, id, &snap)
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

// fold folds stream's events into state, after snap if not nil. ok is
// false when snap does not match the stream: the event it names is not at
// the revision it names.
func (h *Handler[S, C, E]) fold(ctx context.Context, stream string, id uuid.UUID, snap *snapshot[S]) (_ loaded[S], ok bool, _ error) {
	l := loaded[S]{revision: annals.NoStream}
	from := annals.Start
	if snap != nil {
		l.state, from = snap.state, snap.Revision
		l.recent = slices.Clone(snap.Commands)
		for i := range snap.Commands {
			if id != (uuid.UUID{}) && snap.Commands[i].ID == id {
				r := snap.Commands[i]
				l.repeat = &r
			}
		}
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
	for ev, err := range h.Store.ReadStream(ctx, stream, annals.ReadStreamOptions{From: from}) {
		if errors.Is(err, annals.ErrStreamNotFound) {
			// No events: a stream never written, or deleted (then a
			// snapshot of it is of no use).
			return loaded[S]{state: h.Decider.Initial(), revision: annals.NoStream}, snap == nil, nil
		}
		if err != nil {
			return l, false, err
		}
		if first && snap != nil {
			first = false
			if ev.Revision != snap.Revision || ev.ID != snap.EventID {
				return l, false, nil
			}
			l.revision = annals.Exact(ev.Revision)
			continue // its state is the snapshot's
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
		l.revision = annals.Exact(ev.Revision)
	}
	endRun()
	if first && snap != nil {
		return l, false, nil // the snapshot names an event the stream does not show
	}
	return l, true, nil
}
