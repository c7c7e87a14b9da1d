package persistent

import (
	"fmt"

	"github.com/annals/annals"
)

// Strategy names how a group shares events among its consumers, with
// KurrentDB's names.
type Strategy string

const (
	// RoundRobin hands each event to the next consumer with room.
	RoundRobin Strategy = "RoundRobin"
	// DispatchToSingle fills the longest-connected consumer first, and
	// the next ones only when it is full.
	DispatchToSingle Strategy = "DispatchToSingle"
	// Pinned sends every event of a stream to the same consumer (the
	// stream name's hash picks it among the connected consumers), so a
	// stream's events are handled in order by one consumer while the
	// consumers stay the same.
	Pinned Strategy = "Pinned"
	// PinnedByCorrelation pins by the $correlationId of the event's JSON
	// metadata, or by stream name when it has none.
	PinnedByCorrelation Strategy = "PinnedByCorrelation"
)

// Settings of a group, as KurrentDB has them. DefaultSettings gives
// KurrentDB's defaults.
type Settings struct {
	// StartFrom is where a new group starts: a stream revision or an $all
	// position, annals.Start or annals.End (resolved when the group is
	// created: the events appended after it). It only matters until the
	// group writes its first checkpoint.
	StartFrom uint64 `json:"startFrom"`
	// FromEnd records that the group was asked to start at the end:
	// StartFrom holds where the end was when the group was created or
	// updated, and the group is reported as starting at the end, as
	// KurrentDB reports it. Set by the Manager.
	FromEnd bool `json:"fromEnd,omitempty"`
	// ResolveLinkTos is recorded and reported. Annals writes no link
	// events of its own, so there is nothing to resolve: a link event a
	// client appended is delivered as it is.
	ResolveLinkTos bool `json:"resolveLinkTos"`
	// ExtraStatistics is recorded and reported; no extra statistics are
	// kept.
	ExtraStatistics bool `json:"extraStatistics"`
	// MessageTimeoutMs is how long a consumer may hold an event without
	// acknowledging it before it is retried; 0 never times out.
	MessageTimeoutMs int64 `json:"messageTimeoutMs"`
	// MaxRetryCount is how many times an event is retried (timeouts and
	// retry nacks) before it is parked.
	MaxRetryCount int `json:"maxRetryCount"`
	// LiveBufferSize and HistoryBufferSize: the group's read buffer holds
	// the larger of them, clamped to MaxBufferMessages.
	LiveBufferSize    int `json:"liveBufferSize"`
	HistoryBufferSize int `json:"historyBufferSize"`
	// ReadBatchSize is recorded and reported; the store's subscriptions
	// read in their own pages.
	ReadBatchSize int `json:"readBatchSize"`
	// CheckpointAfterMs: a checkpoint is written at most this often once
	// CheckpointLowerBound events were finished since the last one, and
	// at once when CheckpointUpperBound were.
	CheckpointAfterMs    int64 `json:"checkpointAfterMs"`
	CheckpointLowerBound int   `json:"minCheckpointCount"`
	CheckpointUpperBound int   `json:"maxCheckpointCount"`
	// MaxSubscriberCount caps the consumers; 0 means MaxConsumersPerGroup.
	MaxSubscriberCount int `json:"maxSubscriberCount"`
	// Strategy shares the events among the consumers.
	Strategy Strategy `json:"strategy"`
}

// DefaultSettings returns KurrentDB's defaults for a group starting at
// the end.
func DefaultSettings() Settings {
	return Settings{
		StartFrom:            annals.End,
		MessageTimeoutMs:     30_000,
		MaxRetryCount:        10,
		LiveBufferSize:       500,
		HistoryBufferSize:    500,
		ReadBatchSize:        20,
		CheckpointAfterMs:    2_000,
		CheckpointLowerBound: 10,
		CheckpointUpperBound: 1_000,
		Strategy:             RoundRobin,
	}
}

// Validate reports settings the engine refuses. Nothing is clamped here:
// bad input is an error, not a guess.
func (s Settings) Validate() error {
	switch s.Strategy {
	case RoundRobin, DispatchToSingle, Pinned, PinnedByCorrelation:
	default:
		return invalid("strategy", "unknown consumer strategy %q (RoundRobin, DispatchToSingle, Pinned, PinnedByCorrelation)", s.Strategy)
	}
	checks := []struct {
		field    string
		value    int64
		min, max int64
	}{
		{"messageTimeoutMs", s.MessageTimeoutMs, 0, MaxMessageTimeoutMs},
		{"maxRetryCount", int64(s.MaxRetryCount), 0, MaxRetryCountLimit},
		{"liveBufferSize", int64(s.LiveBufferSize), 1, 1 << 30},
		{"historyBufferSize", int64(s.HistoryBufferSize), 1, 1 << 30},
		{"readBatchSize", int64(s.ReadBatchSize), 1, 1 << 30},
		{"checkpointAfterMs", s.CheckpointAfterMs, 0, MaxCheckpointAfterMs},
		{"minCheckpointCount", int64(s.CheckpointLowerBound), 0, MaxCheckpointCount},
		{"maxCheckpointCount", int64(s.CheckpointUpperBound), 0, MaxCheckpointCount},
		{"maxSubscriberCount", int64(s.MaxSubscriberCount), 0, 1 << 30},
	}
	for _, c := range checks {
		if c.value < c.min || c.value > c.max {
			return invalid(c.field, "is %d, must be from %d to %d", c.value, c.min, c.max)
		}
	}
	// An upper bound below the lower one is KurrentDB's too: a checkpoint
	// then comes at the upper bound.
	return nil
}

// bufferCap is the read buffer's size in messages.
func (s Settings) bufferCap() int {
	return min(max(s.LiveBufferSize, s.HistoryBufferSize, 1), MaxBufferMessages)
}

// consumerCap is how many consumers the group takes.
func (s Settings) consumerCap() int {
	if s.MaxSubscriberCount <= 0 {
		return MaxConsumersPerGroup
	}
	return min(s.MaxSubscriberCount, MaxConsumersPerGroup)
}

func invalid(field, format string, args ...any) error {
	return &annals.InvalidInputError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
