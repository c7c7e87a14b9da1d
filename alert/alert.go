package alert

import (
	"encoding/json"
	"time"
)

// BodyVersion is the "version" of the JSON body. It changes only if a
// field changes meaning or goes away; new fields and kinds may be added
// without changing it, so receivers should ignore what they do not know.
const BodyVersion = 1

// Kind names what an alert is about.
type Kind string

// The kinds of alert, as they appear in the body's "kind".
const (
	// ProjectionFailed: a projection entered the failed state (its error
	// policy gave up); details.lastError says why.
	ProjectionFailed Kind = "projection_failed"
	// ProjectionParked: a projection parked events since the last
	// snapshot.
	ProjectionParked Kind = "projection_parked"
	// ProjectionLag: a projection fell more than Rules.LagEvents behind
	// the head.
	ProjectionLag Kind = "projection_lag"
	// PersistentParked: a persistent subscription group parked events
	// since the last snapshot.
	PersistentParked Kind = "persistent_parked"
	// DiskNearlyFull: the store's filesystem has less than
	// Rules.DiskFreeBytes free.
	DiskNearlyFull Kind = "disk_nearly_full"
	// ProcessFailed: an instance of a process manager failed (after its
	// retries, and its compensation if it compensates); details.lastError
	// says why.
	ProcessFailed Kind = "process_failed"
)

// DiskSubject is the subject of DiskNearlyFull alerts.
const DiskSubject = "store"

// Alert is one thing worth telling an operator. Its JSON form (see
// MarshalJSON) is the body each webhook receives.
type Alert struct {
	Kind Kind `json:"kind"`
	// Subject is what the alert is about: the projection's name, the
	// group as "stream/group", or DiskSubject.
	Subject string `json:"subject"`
	// Message is a sentence for people; programs should read Details.
	Message string `json:"message"`
	// At is when the condition was seen (the snapshot's time).
	At      time.Time `json:"at"`
	Details Details   `json:"details"`
}

// Details are an alert's figures. Each kind sets its own; the others are
// nil and left out of the JSON.
type Details struct {
	// Position is the projection's checkpoint (projection_*).
	Position *uint64 `json:"position,omitempty"`
	// Lag is how far the projection is behind the head, in events;
	// Threshold the Rules.LagEvents it passed (projection_lag; Lag also
	// in projection_failed).
	Lag       *uint64 `json:"lag,omitempty"`
	Threshold *uint64 `json:"threshold,omitempty"`
	// Parked is the parked count now: a projection's events parked since
	// its last reset, a group's parked events not yet replayed;
	// NewlyParked how much it rose since the last snapshot
	// (projection_parked, persistent_parked; Parked also in
	// projection_failed).
	Parked      *uint64 `json:"parked,omitempty"`
	NewlyParked *uint64 `json:"newlyParked,omitempty"`
	// FreeBytes and UsedBytes are the filesystem's free space and the
	// store's own size; ThresholdBytes the Rules.DiskFreeBytes it fell
	// under (disk_nearly_full).
	FreeBytes      *int64 `json:"freeBytes,omitempty"`
	UsedBytes      *int64 `json:"usedBytes,omitempty"`
	ThresholdBytes *int64 `json:"thresholdBytes,omitempty"`
	// LastError is the projection's last error (projection_failed,
	// projection_parked), if it has one, or why the process instance
	// failed (process_failed).
	LastError string `json:"lastError,omitempty"`
}

// MarshalJSON writes the webhook body: {"version":1,"kind",...,"details"}
// with At in RFC 3339, UTC.
func (a Alert) MarshalJSON() ([]byte, error) {
	type fields Alert // without the method, so that Marshal does not recurse
	a.At = a.At.UTC()
	return json.Marshal(struct {
		Version int `json:"version"`
		fields
	}{BodyVersion, fields(a)})
}
