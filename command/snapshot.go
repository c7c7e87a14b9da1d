package command

import (
	"context"
	"encoding/json"

	"github.com/annals/annals"
	"github.com/google/uuid"
)

// Snapshot limits.
const (
	// DefaultSnapshotEvery is how many events a load may fold after the
	// latest snapshot before the handler writes a new one.
	DefaultSnapshotEvery = 100
	// MaxSnapshotBytes bounds a snapshot event; a larger one is not
	// written (loads then read more events, nothing else changes).
	MaxSnapshotBytes = 512 << 10
	// SnapshotCommands is how many of a stream's latest command ids a
	// snapshot remembers, so that loads from it still recognise a
	// repeated command.
	SnapshotCommands = 1000
	// SnapshotsKept is the max count set on a snapshot stream: older
	// snapshots are of no use.
	SnapshotsKept = 3
	// SnapshotEventType is the type of the events of snapshot streams.
	SnapshotEventType = "Snapshot"
)

// Snapshots say how the state of long streams is snapshotted.
//
// A snapshot is an event in a side stream (by default "snapshot-" and the
// stream's name) that holds the state, the revision it reflects, the id of
// the event at that revision, and the ids of the latest commands. A load
// reads the latest snapshot, then the stream from that revision: if the
// event there is not the one the snapshot names (the stream was deleted
// and written again, or truncated), the snapshot is ignored. The append
// after the decision states the stream's real revision, so a snapshot that
// is behind only costs reading; it cannot cause a wrong decision.
//
// What the snapshot cannot check is the program: change Version whenever
// the state type or Evolve changes meaning, and snapshots written by the
// old program are ignored. The state must survive Marshal and Unmarshal
// whole (with the default JSON: every field exported).
type Snapshots[S any] struct {
	// Every: a snapshot is written after a command whose load folded at
	// least Every events after the latest snapshot. 0 means
	// DefaultSnapshotEvery.
	Every uint64
	// Version of the state's encoding and meaning.
	Version int
	// Marshal and Unmarshal encode the state; nil means JSON.
	Marshal   func(S) ([]byte, error)
	Unmarshal func([]byte) (S, error)
	// Stream names the snapshot stream of a stream; nil means
	// "snapshot-" + stream.
	Stream func(stream string) string
}

// snapshotRecord is the payload of a snapshot event.
type snapshotRecord struct {
	Version  int             `json:"version"`
	Revision annals.Revision `json:"revision"`
	EventID  uuid.UUID       `json:"eventId"`
	State    json.RawMessage `json:"state"`
	Commands []commandRecord `json:"commands,omitempty"`
}

// snapshot is a decoded snapshot.
type snapshot[S any] struct {
	snapshotRecord
	state S
}

func (o *Snapshots[S]) stream(stream string) string {
	if o.Stream != nil {
		return o.Stream(stream)
	}
	return "snapshot-" + stream
}

// encodeState returns the state as JSON: the state's own, or Marshal's
// bytes as a JSON string.
func (o *Snapshots[S]) encodeState(s S) (json.RawMessage, error) {
	if o.Marshal == nil {
		return json.Marshal(s)
	}
	b, err := o.Marshal(s)
	if err != nil {
		return nil, err
	}
	return json.Marshal(b)
}

func (o *Snapshots[S]) decodeState(raw json.RawMessage) (S, error) {
	var s S
	if o.Unmarshal == nil {
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var b []byte
	if err := json.Unmarshal(raw, &b); err != nil {
		return s, err
	}
	return o.Unmarshal(b)
}

// readSnapshot returns the latest snapshot of stream, if there is a usable
// one. Any failure to read one means there is none: the load then reads
// every event.
func (h *Handler[S, C, E]) readSnapshot(ctx context.Context, stream string) (snapshot[S], bool) {
	o := h.Snapshots
	opts := annals.ReadStreamOptions{Direction: annals.Backwards, From: annals.End, Limit: 1}
	for ev, err := range h.Store.ReadStream(ctx, o.stream(stream), opts) {
		if err != nil || ev.Type != SnapshotEventType {
			return snapshot[S]{}, false
		}
		var snap snapshot[S]
		if json.Unmarshal(ev.Data, &snap.snapshotRecord) != nil || snap.Version != o.Version {
			return snapshot[S]{}, false
		}
		s, err := o.decodeState(snap.State)
		if err != nil {
			return snapshot[S]{}, false
		}
		snap.state = s
		return snap, true
	}
	return snapshot[S]{}, false
}

// maybeSnapshot writes a snapshot of state, which reflects the stream up
// to revision last (event lastID), if the load read enough events. A
// failure only means the next loads read more: it is not reported.
func (h *Handler[S, C, E]) maybeSnapshot(ctx context.Context, stream string, l loaded[S], state S, last annals.Revision, lastID uuid.UUID, rec commandRecord, appended uint64) {
	o := h.Snapshots
	every := o.Every
	if every == 0 {
		every = DefaultSnapshotEvery
	}
	if l.read+appended < every {
		return
	}
	raw, err := o.encodeState(state)
	if err != nil {
		return
	}
	commands := l.recent
	if rec.ID != (uuid.UUID{}) {
		commands = append(commands, rec)
	}
	if len(commands) > SnapshotCommands {
		commands = commands[len(commands)-SnapshotCommands:]
	}
	data, err := json.Marshal(snapshotRecord{Version: o.Version, Revision: last, EventID: lastID, State: raw, Commands: commands})
	if err != nil || len(data) > MaxSnapshotBytes {
		return
	}
	name := o.stream(stream)
	ar, err := h.Store.Append(ctx, name, annals.Any, annals.EventData{ID: uuid.New(), Type: SnapshotEventType, Data: data})
	if err == nil && ar.NextExpected == annals.Exact(0) {
		h.Store.SetStreamMetadata(ctx, name, annals.NoStream, annals.StreamMetadata{MaxCount: SnapshotsKept})
	}
}
