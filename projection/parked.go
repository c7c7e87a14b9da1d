package projection

import (
	"context"
	"errors"
	"fmt"

	"github.com/annals/annals"
)

// ReplayParked handles the parked events again, oldest first (up to
// MaxParkedListed per call), once their cause is fixed: each in a
// transaction of its own that applies it, forgets it and keeps the
// checkpoint where it is. It stops at the first event that fails again
// (it stays parked) and returns how many were applied, with that error.
//
// A parked event is handled out of order: after the events that followed
// it. A handler whose result depends on order must be written for that
// (or the projection rebuilt instead). It runs as the projection's
// writer: in the running projector's applier, or here if none runs; a
// standby refuses it (ErrStandby).
func (p *Projector[M]) ReplayParked(ctx context.Context) (int, error) {
	if err := p.check(inReplayParked); err != nil {
		return 0, err // ErrStandby: the instance that runs is the writer
	}
	n, err := p.asWriter(ctx, request[M]{in: inReplayParked})
	if err != nil && ctx.Err() != nil {
		return 0, err // what the applier applied meanwhile is not known
	}
	return n, err
}

// replayParked runs as the only writer.
func (p *Projector[M]) replayParked(ctx context.Context) (int, error) {
	slot := p.slot()
	parked, err := p.target.ParkedEvents(ctx, slot, MaxParkedListed)
	if err != nil {
		return 0, err
	}
	for i, pe := range parked {
		if err := p.replayOne(ctx, slot, pe); err != nil {
			return i, err
		}
	}
	return len(parked), nil
}

func (p *Projector[M]) replayOne(ctx context.Context, slot string, pe ParkedEvent) error {
	e, err := p.eventAt(ctx, pe)
	if err != nil {
		return err
	}
	tx, err := p.target.Begin(ctx, slot)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if err := p.def().Handle(ctx, tx.Model(), e); err != nil {
		err = &HandlerError{Position: e.Position, Stream: e.Stream, Type: e.Type, Err: err}
		p.noteError(err)
		return err
	}
	if err := tx.Unpark(ctx, pe.Position); err != nil {
		return err
	}
	p.mu.Lock()
	pos, parked := p.m.position, p.m.parked
	p.mu.Unlock()
	if parked > 0 {
		parked--
	}
	// The checkpoint stays; saving it checks that no other writer moved
	// it, as every transaction of the projection does.
	if err := tx.SaveCheckpoint(ctx, pos, Checkpoint{Position: pos, Parked: parked}); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		// Its outcome is unknown: hold what is stored.
		if lerr := p.load(ctx); lerr != nil {
			return errors.Join(err, lerr)
		}
		return err
	}
	p.mu.Lock()
	p.m.parked = parked
	p.mu.Unlock()
	return nil
}

// eventAt reads the parked event back from the store.
func (p *Projector[M]) eventAt(ctx context.Context, pe ParkedEvent) (annals.Event, error) {
	for e, err := range p.store.ReadAll(ctx, annals.ReadAllOptions{From: pe.Position, Limit: 1}) {
		if err != nil {
			return annals.Event{}, err
		}
		if e.Position == pe.Position && e.ID == pe.EventID {
			return e, nil
		}
		break
	}
	return annals.Event{}, fmt.Errorf("projection %s: parked event %s at position %d is no longer in the store", p.name, pe.EventID, pe.Position)
}
